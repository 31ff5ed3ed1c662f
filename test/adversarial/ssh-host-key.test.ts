// The SSH host key file is not a way to read or plant a key: a symlink (to a file of someone else's, or
// dangling, where a first start would write through it), a file another user owns, or one that group or
// others may read is refused with a message that says what to do, and nothing is written or changed.
import { chmodSync, chownSync, existsSync, lstatSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { loadOrCreateHostKey } from '../../services/node-manager/ssh/host-key.js';
import { startNodeManager, tempDir } from '../helpers/node-manager.js';

const isRoot = process.getuid?.() === 0;

describe('ssh host key file', () => {
  it('makes a key 0600 at the first start and loads it again', () => {
    const file = join(tempDir('fedlab-hk-'), 'k');
    const a = loadOrCreateHostKey(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(ssh2.utils.parseKey(readFileSync(file, 'utf8'))).not.toBeInstanceOf(Error);
    expect(loadOrCreateHostKey(file).fingerprint).toBe(a.fingerprint);
  });

  it('refuses a symlink to a key, and a dangling symlink (writing nothing through it)', () => {
    const dir = tempDir('fedlab-hk-');
    const real = join(dir, 'real');
    loadOrCreateHostKey(real);
    const link = join(dir, 'link');
    symlinkSync(real, link);
    expect(() => loadOrCreateHostKey(link)).toThrow(/is a symbolic link; give the key file itself/);
    const dangling = join(dir, 'dangling');
    const target = join(dir, 'planted');
    symlinkSync(target, dangling);
    expect(() => loadOrCreateHostKey(dangling)).toThrow(/symbolic link/);
    expect(existsSync(target)).toBe(false);
    expect(lstatSync(dangling).isSymbolicLink()).toBe(true);
  });

  it('refuses a key that group or others may read, saying to chmod it', () => {
    const file = join(tempDir('fedlab-hk-'), 'k');
    loadOrCreateHostKey(file);
    chmodSync(file, 0o644);
    expect(() => loadOrCreateHostKey(file)).toThrow(/mode 0644: group and others may use it; chmod 600 it/);
    expect(statSync(file).mode & 0o777).toBe(0o644);
  });

  it.skipIf(!isRoot)('refuses a key another user owns, saying to chown it', () => {
    const file = join(tempDir('fedlab-hk-'), 'k');
    loadOrCreateHostKey(file);
    chownSync(file, 1234, 1234);
    expect(() => loadOrCreateHostKey(file)).toThrow(/owned by uid 1234, not by this process's uid 0; chown it/);
  });

  it('a node manager given a symlinked key file does not start, and says why', async () => {
    const dir = tempDir('fedlab-hk-');
    writeFileSync(join(dir, 'elsewhere'), 'not a key\n', { mode: 0o600 });
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'k'));
    await expect(
      startNodeManager({ driver: 'process', config: { ssh: { listen: '127.0.0.1:0', host_key_file: join(dir, 'k') } } }),
    ).rejects.toThrow(/symbolic link/);
  });
});
