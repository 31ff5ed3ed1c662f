// Issue 15, item 5: every file the CLI writes with a secret (keys, chains) is created exclusively with its
// mode, under an unpredictable temporary name, never through a symbolic link, and an existing file is
// refused unless --force — which writes a new file with the new mode, never keeping the old one's.
// The shared writer (certs/output-file.ts) first, then `fedlab cred` and `fedlab certs` as a user runs them.
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOutputFile, writeOutputFile } from '../../certs/output-file.js';
import { writeChainFile } from '../../cli/chain-file.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { makeTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';

let dir: string;
let pki: TestPki;
let owner: TestIdentity;
let ma: TestIdentity;
let n = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-secret-files-'));
  pki = await makeTestPki('files.test');
  owner = await pki.issue('urn:fedlab:files.test:owner:olivia');
  ma = await pki.issue('urn:fedlab:files.test:authority:ma');
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await pki?.cleanup();
});

const mode = (p: string) => statSync(p).mode & 0o777;
/** A fresh directory for one case. */
function fresh(): string {
  const d = join(dir, `case-${++n}`);
  mkdirSync(d);
  return d;
}
/** A file someone else owns, that a planted link points to: it must stay as it is. */
function victim(d: string): { path: string; text: string } {
  const path = join(d, 'victim.txt');
  writeFileSync(path, 'do not touch\n', { mode: 0o644 });
  return { path, text: 'do not touch\n' };
}
function expectVictimUntouched(v: { path: string; text: string }): void {
  expect(readFileSync(v.path, 'utf8')).toBe(v.text);
  expect(mode(v.path)).toBe(0o644);
}
function refused(r: CliResult, why: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(why);
}

describe('writeOutputFile', () => {
  it('creates the file with exactly its mode, whatever the umask', () => {
    const d = fresh();
    const old = process.umask(0);
    try {
      writeOutputFile(join(d, 'a.key'), 'secret');
      writeOutputFile(join(d, 'b.pem'), 'public', { mode: 0o644 });
    } finally {
      process.umask(old);
    }
    expect(mode(join(d, 'a.key'))).toBe(0o600);
    expect(mode(join(d, 'b.pem'))).toBe(0o644);
    expect(readFileSync(join(d, 'a.key'), 'utf8')).toBe('secret');
  });

  it('refuses a symbolic link at the path, even when replacing, and leaves the link and its target alone', () => {
    const d = fresh();
    const v = victim(d);
    const out = join(d, 'out.chain');
    symlinkSync(v.path, out);
    for (const replace of [false, true]) {
      expect(() => writeOutputFile(out, 'x.y.z\n', { replace })).toThrow(/symbolic link/);
      expect(() => checkOutputFile(out, { replace })).toThrow(/symbolic link/);
    }
    expectVictimUntouched(v);
    expect(lstatSync(out).isSymbolicLink()).toBe(true);
    // A dangling link is refused too, and nothing appears where it points.
    const dangling = join(d, 'dangling.key');
    symlinkSync(join(d, 'created-through-link'), dangling);
    expect(() => writeOutputFile(dangling, 'secret')).toThrow(/symbolic link/);
    expect(readdirSync(d)).not.toContain('created-through-link');
    expect(readdirSync(d).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses an existing file unless replace, which makes a new file with the new mode', () => {
    const d = fresh();
    const out = join(d, 'key.pem');
    writeFileSync(out, 'old\n', { mode: 0o644 });
    const before = statSync(out).ino;
    expect(() => writeOutputFile(out, 'new\n')).toThrow(/already exists.*--force/);
    expect(readFileSync(out, 'utf8')).toBe('old\n');
    writeOutputFile(out, 'new\n', { replace: true });
    expect(readFileSync(out, 'utf8')).toBe('new\n');
    expect(mode(out)).toBe(0o600);
    expect(statSync(out).ino).not.toBe(before);
  });

  it('uses no predictable temporary name: links planted at the old ones are not followed, and none is left', () => {
    const d = fresh();
    const v = victim(d);
    const out = join(d, 'member.chain');
    const planted = [`${out}.tmp`, join(d, `.member.chain.${process.pid}.tmp`), join(d, '.member.chain.tmp')];
    for (const p of planted) symlinkSync(v.path, p);
    writeChainFile(out, ['a.b.c', 'd.e.f']);
    expect(readFileSync(out, 'utf8')).toBe('a.b.c\nd.e.f\n');
    expect(mode(out)).toBe(0o600);
    expectVictimUntouched(v);
    expect(readdirSync(d).sort()).toEqual(['member.chain', 'victim.txt', ...planted.map((p) => p.slice(d.length + 1))].sort());
  });
});

// Each run starts a process from the TypeScript sources (seconds each on a busy machine).
describe('fedlab cred and fedlab certs writes', { timeout: 120_000 }, () => {
  const issue = (out: string, ...more: string[]) =>
    runCli([
      'cred',
      'issue',
      '--key',
      owner.keyPath,
      '--subject-cert',
      ma.certPath,
      '--target',
      'urn:fedlab:files.test:node:*',
      '--priv',
      'sliver.create',
      '--dlg',
      '1',
      '--out',
      out,
      ...more,
    ]);

  it('cred issue and delegate: a planted symlink is refused (its target unchanged), an existing file without --force', async () => {
    const d = fresh();
    const v = victim(d);
    const link = join(d, 'link.chain');
    symlinkSync(v.path, link);
    refused(await issue(link), /symbolic link/);
    refused(await issue(link, '--force'), /symbolic link/);
    expectVictimUntouched(v);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);

    const chain = join(d, 'owner-ma.chain');
    expect((await issue(chain)).code).toBe(0);
    expect(mode(chain)).toBe(0o600);
    const first = readFileSync(chain, 'utf8');
    refused(await issue(chain), /already exists.*--force/);
    expect(readFileSync(chain, 'utf8')).toBe(first);

    // --force: a new file, 0600, even over a file someone made world-readable.
    writeFileSync(chain, first, { mode: 0o644 });
    const again = await issue(chain, '--force');
    expect(again.code, again.stderr).toBe(0);
    expect(mode(chain)).toBe(0o600);
    expect(readFileSync(chain, 'utf8')).not.toBe(first);

    const child = join(d, 'ma-sa.chain');
    symlinkSync(v.path, child);
    const delegate = (...more: string[]) =>
      runCli(['cred', 'delegate', '--chain', chain, '--key', ma.keyPath, '--subject-cert', owner.certPath, '--out', child, ...more]);
    refused(await delegate(), /symbolic link/);
    expectVictimUntouched(v);
    rmSync(child);
    writeFileSync(child, 'mine\n', { mode: 0o640 });
    refused(await delegate(), /already exists.*--force/);
    expect(readFileSync(child, 'utf8')).toBe('mine\n');
    expect((await delegate('--force')).code).toBe(0);
    expect(mode(child)).toBe(0o600);
  });

  it('cred revoke never writes its list through a symlink', async () => {
    const d = fresh();
    const v = victim(d);
    const list = join(d, 'revoked.json');
    symlinkSync(v.path, list);
    refused(await runCli(['cred', 'revoke', '--key', owner.keyPath, '--list', list, '--jti', 'abc']), /symbolic link/);
    expectVictimUntouched(v);
  });

  it('certs issue: key.pem through a planted symlink is refused even with --force; --force replaces an existing key with a 0600 one', async () => {
    const d = fresh();
    const v = victim(d);
    const out = join(d, 'acme');
    mkdirSync(out);
    symlinkSync(v.path, join(out, 'key.pem'));
    const certs = (...more: string[]) =>
      runCli(['certs', 'issue', '--ca', pki.caDir, '--urn', 'urn:fedlab:files.test:sp:acme', '--out', out, ...more]);
    refused(await certs(), /symbolic link/);
    refused(await certs('--force'), /symbolic link/);
    expectVictimUntouched(v);
    expect(readdirSync(out)).toEqual(['key.pem']);

    rmSync(join(out, 'key.pem'));
    writeFileSync(join(out, 'key.pem'), 'old key\n', { mode: 0o644 });
    refused(await certs(), /already exists.*--force/);
    expect(readFileSync(join(out, 'key.pem'), 'utf8')).toBe('old key\n');
    const forced = await certs('--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(mode(join(out, 'key.pem'))).toBe(0o600);
    expect(readFileSync(join(out, 'key.pem'), 'utf8')).toMatch(/PRIVATE KEY/);
  });

  it('certs init-ca: a dangling symlink at ca.key is refused and nothing is created where it points', async () => {
    const d = fresh();
    const out = join(d, 'ca');
    mkdirSync(out);
    symlinkSync(join(d, 'stolen.key'), join(out, 'ca.key'));
    refused(await runCli(['certs', 'init-ca', '--domain', 'files.test', '--out', out]), /symbolic link/);
    expect(readdirSync(d).sort()).toEqual(['ca']);
    expect(readdirSync(out)).toEqual(['ca.key']);
  });
});
