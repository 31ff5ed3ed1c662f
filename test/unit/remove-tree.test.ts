// The node manager's removal of a sliver's tree: links are removed and never followed, and a mount
// left inside the tree is neither entered nor removed (the removal fails naming it).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTreeNoFollow } from '../../services/node-manager/runtime/no-follow.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../helpers/tmpfs.js';

describe('removeTreeNoFollow', () => {
  const made: string[] = [];
  let fs: Tmpfs | undefined;
  afterEach(() => {
    fs?.unmount();
    fs = undefined;
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'fedlab-rmtree-'));
    made.push(d);
    return d;
  };

  it('removes links without following them, and files and directories at any depth', async () => {
    const outside = dir();
    writeFileSync(join(outside, 'keep.txt'), 'host file');
    const tree = join(dir(), 'sliver');
    mkdirSync(join(tree, 'data/var/tmp/deep'), { recursive: true });
    writeFileSync(join(tree, 'data/var/tmp/deep/f'), 'x');
    symlinkSync(outside, join(tree, 'data/var/lib'));
    symlinkSync(join(outside, 'keep.txt'), join(tree, 'data/link-to-file'));
    await removeTreeNoFollow(tree);
    expect(existsSync(tree)).toBe(false);
    expect(readFileSync(join(outside, 'keep.txt'), 'utf8')).toBe('host file');
    await removeTreeNoFollow(tree); // gone already: nothing to do
  });

  const noMount = tmpfsUnavailable();
  it.skipIf(noMount !== undefined)('refuses to enter a mount inside the tree and leaves it whole', async () => {
    fs = mountTmpfs(1024);
    writeFileSync(join(fs.dir, 'inside.txt'), 'on the mount');
    const tree = join(dir(), 'sliver');
    mkdirSync(join(tree, 'upper'), { recursive: true });
    execFileSync('mount', ['--bind', fs.dir, join(tree, 'upper')]);
    try {
      await expect(removeTreeNoFollow(tree)).rejects.toThrow(/is (a mount point|another file system)/);
      expect(readFileSync(join(fs.dir, 'inside.txt'), 'utf8')).toBe('on the mount');
    } finally {
      execFileSync('umount', [join(tree, 'upper')]);
    }
    await removeTreeNoFollow(tree);
    expect(existsSync(tree)).toBe(false);
  });
});
