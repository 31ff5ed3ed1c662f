// `fedlab cred` as a user runs it (a real process from the TypeScript sources): the owner → MA → SA → SP
// chain of the README, inspect, verify (exit 0 / 1), refusals (exit 1) and bad input (exit 2).
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeTestPki, type TestIdentity } from '../helpers/pki.js';

let dir: string;
let bundle: string;
let owner: TestIdentity;
let ma: TestIdentity;
let sa: TestIdentity;
let sp: TestIdentity;
let alice: TestIdentity;
const NODE = 'urn:fedlab:plc.test:node:n1';
const anchor = () => `${owner.certPath}=${NODE}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-cred-cli-'));
  const pki = await makeTestPki('plc.test');
  owner = await pki.issue('urn:fedlab:plc.test:owner:olivia');
  ma = await pki.issue('urn:fedlab:plc.test:authority:ma');
  sa = await pki.issue('urn:fedlab:plc.test:authority:sa', { alg: 'ed25519' });
  sp = await pki.issue('urn:fedlab:plc.test:sp:acme');
  alice = await pki.issue('urn:fedlab:plc.test:user:alice');
  bundle = (await pki.bundle({ file: join(dir, 'bundle.json') })).file;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const chainFile = (name: string) => join(dir, name);

// Each run starts a process from the TypeScript sources (seconds each on a busy machine), so tests get room.
describe('fedlab cred', { timeout: 120_000 }, () => {
  it('issues and delegates owner → MA → SA → SP, inspects and verifies the chain', async () => {
    const root = await runCli([
      'cred',
      'issue',
      '--key',
      owner.keyPath,
      '--subject-cert',
      ma.certPath,
      '--target',
      NODE,
      '--priv',
      'sliver.create,sliver.delete,node.read',
      '--dlg',
      '2',
      '--ttl',
      '30d',
      '--lim',
      'slivers=10,mem_mb=4096',
      '--out',
      chainFile('owner-ma.chain'),
    ]);
    expect(root.code, root.stderr).toBe(0);
    expect(root.stdout).toContain('wrote a chain of 1 link');

    const toSa = await runCli([
      'cred',
      'delegate',
      '--chain',
      chainFile('owner-ma.chain'),
      '--key',
      ma.keyPath,
      '--subject-cert',
      sa.certPath,
      '--lim',
      'slivers=5',
    ]);
    expect(toSa.code, toSa.stderr).toBe(0);
    expect(toSa.stdout.trim().split('\n')).toHaveLength(2);
    writeFileSync(chainFile('ma-sa.chain'), toSa.stdout);

    // The parent chain can come on standard input.
    const toSp = await runCli(
      ['cred', 'delegate', '--chain', '-', '--key', sa.keyPath, '--subject-cert', sp.certPath, '--priv', 'sliver.create', '--ttl', '7d'],
      {
        input: toSa.stdout,
      },
    );
    expect(toSp.code, toSp.stderr).toBe(0);
    writeFileSync(chainFile('sp.chain'), toSp.stdout);

    const inspect = await runCli(['cred', 'inspect', chainFile('sp.chain')]);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout).toContain('link 0 (root)');
    expect(inspect.stdout).toContain(`issuer      ${owner.urn}`);
    expect(inspect.stdout).toContain(`holder      ${sp.urn}`);
    expect(inspect.stdout).toContain('limits      slivers=5 (absent ones inherited)');
    expect(inspect.stdout).not.toContain(sp.jwk.x as string);

    const json = await runCli(['cred', 'inspect', chainFile('sp.chain'), '--json']);
    const links = JSON.parse(json.stdout) as { issuer: string; holder: string; dlg: number; privileges: string[] }[];
    expect(links.map((l) => [l.issuer, l.holder, l.dlg])).toEqual([
      [owner.urn, ma.urn, 2],
      [ma.urn, sa.urn, 1],
      [sa.urn, sp.urn, 0],
    ]);

    const ok = await runCli([
      'cred',
      'verify',
      chainFile('sp.chain'),
      '--trust',
      bundle,
      '--anchor',
      anchor(),
      '--holder-cert',
      sp.certPath,
      '--priv',
      'sliver.create',
      '--target',
      NODE,
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`valid: ${sp.urn} holds a chain of 3 links rooted at ${owner.urn}`);
    expect(ok.stdout).toContain('limits      slivers=5 mem_mb=4096');

    const okJson = await runCli([
      'cred',
      'verify',
      chainFile('sp.chain'),
      '--trust',
      dir,
      '--anchor',
      anchor(),
      '--holder-cert',
      sp.certPath,
      '--json',
    ]);
    expect(okJson.code, okJson.stderr).toBe(0);
    expect(JSON.parse(okJson.stdout)).toMatchObject({
      valid: true,
      holder: sp.urn,
      root_issuer: owner.urn,
      privileges: ['sliver.create'],
      delegations_left: 0,
    });
  });

  it('exit 1 naming link and rule for an invalid chain or a call it does not grant', async () => {
    const untrusted = await runCli(['cred', 'verify', chainFile('sp.chain'), '--trust', bundle, '--holder-cert', sp.certPath]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/credential link 0 fails rule trust-anchor/);

    const notHolder = await runCli([
      'cred',
      'verify',
      chainFile('sp.chain'),
      '--trust',
      bundle,
      '--anchor',
      anchor(),
      '--holder-cert',
      alice.certPath,
      '--json',
    ]);
    expect(notHolder.code).toBe(1);
    expect(JSON.parse(notHolder.stdout)).toMatchObject({ valid: false, link: 2, rule: 'holder-key' });

    const denied = await runCli([
      'cred',
      'verify',
      chainFile('sp.chain'),
      '--trust',
      bundle,
      '--anchor',
      anchor(),
      '--holder-cert',
      sp.certPath,
      '--priv',
      'sliver.delete',
    ]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/credential link 2 fails rule grant-privilege/);

    const later = await runCli([
      'cred',
      'verify',
      chainFile('sp.chain'),
      '--trust',
      bundle,
      '--anchor',
      anchor(),
      '--holder-cert',
      sp.certPath,
      '--at',
      '2099-01-01T00:00:00Z',
    ]);
    expect(later.code).toBe(1);
    expect(later.stderr).toMatch(/credential link 0 fails rule expired/);

    const lines = readFileSync(chainFile('sp.chain'), 'utf8').trim().split('\n');
    writeFileSync(chainFile('reordered.chain'), `${[lines[0], lines[2], lines[1]].join('\n')}\n`);
    const reordered = await runCli([
      'cred',
      'verify',
      chainFile('reordered.chain'),
      '--trust',
      bundle,
      '--anchor',
      anchor(),
      '--holder-cert',
      sp.certPath,
    ]);
    expect(reordered.code).toBe(1);
    expect(reordered.stderr).toMatch(/credential link 1 fails rule prf/);
  });

  it('refuses a delegation wider than its parent (exit 1, nothing printed)', async () => {
    const r = await runCli([
      'cred',
      'delegate',
      '--chain',
      chainFile('ma-sa.chain'),
      '--key',
      sa.keyPath,
      '--subject-cert',
      sp.certPath,
      '--priv',
      'sliver.exec',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/delegation refused \(would be link 2\), rule priv/);
    const wrongKey = await runCli([
      'cred',
      'delegate',
      '--chain',
      chainFile('ma-sa.chain'),
      '--key',
      sp.keyPath,
      '--subject-cert',
      alice.certPath,
    ]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/rule signer/);
  });

  it('exit 2 for bad input', async () => {
    const base = ['cred', 'issue', '--key', owner.keyPath, '--subject-cert', ma.certPath, '--target', NODE];
    for (const args of [
      [...base, '--priv', 'sliver.fly'],
      [...base, '--priv', 'node.read', '--ttl', '3 days'],
      [...base, '--priv', 'node.read', '--lim', 'gpus=1'],
      ['cred', 'verify', join(dir, 'missing.chain'), '--trust', bundle, '--holder-cert', sp.certPath],
      ['cred', 'verify', chainFile('sp.chain'), '--trust', bundle, '--holder-cert', sp.certPath, '--priv', 'root'],
      ['cred', 'issue', '--key', owner.keyPath, '--subject-cert', ma.certPath, '--priv', 'node.read'],
    ]) {
      const r = await runCli(args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
    }
  });

  it('needs the issuer certificate when it is not beside the key', async () => {
    const lone = join(dir, 'lone.key');
    copyFileSync(owner.keyPath, lone);
    const r = await runCli(['cred', 'issue', '--key', lone, '--subject-cert', ma.certPath, '--target', NODE, '--priv', 'node.read']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--issuer-cert/);
    const ok = await runCli([
      'cred',
      'issue',
      '--key',
      lone,
      '--issuer-cert',
      owner.certPath,
      '--subject-cert',
      ma.certPath,
      '--target',
      NODE,
      '--priv',
      'node.read',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('revokes into a signed list that verify consults', async () => {
    const links = JSON.parse((await runCli(['cred', 'inspect', chainFile('sp.chain'), '--json'])).stdout) as { jti: string }[];
    const list = join(dir, 'ma-revocations.jws');
    const r = await runCli([
      'cred',
      'revoke',
      '--jti',
      links[1]?.jti as string,
      '--list',
      list,
      '--key',
      ma.keyPath,
      '--reason',
      'SA retired',
      '--issuer',
      ma.urn,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/is now version 1 with 1 entry/);

    const v = await runCli([
      'cred',
      'verify',
      chainFile('sp.chain'),
      '--trust',
      bundle,
      '--anchor',
      anchor(),
      '--holder-cert',
      sp.certPath,
      '--revocations',
      list,
    ]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/credential link 1 fails rule revoked/);

    const other = await runCli(['cred', 'revoke', '--jti', links[2]?.jti as string, '--list', list, '--key', sa.keyPath]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/sign it with that key/);

    const text = readFileSync(list, 'utf8');
    const [h, p, s] = text.trim().split('.');
    const altered = JSON.parse(Buffer.from(p as string, 'base64url').toString()) as { entries: unknown[] };
    altered.entries = [];
    writeFileSync(join(dir, 'altered.jws'), `${h}.${Buffer.from(JSON.stringify(altered)).toString('base64url')}.${s}\n`);
    const tampered = await runCli([
      'cred',
      'verify',
      chainFile('sp.chain'),
      '--trust',
      bundle,
      '--anchor',
      anchor(),
      '--holder-cert',
      sp.certPath,
      '--revocations',
      join(dir, 'altered.jws'),
    ]);
    expect(tampered.code).toBe(2);
    expect(tampered.stderr).toMatch(/does not verify/);
  });
});
