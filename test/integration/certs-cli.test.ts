// `fedlab certs` end to end through the real CLI from sources (tsx, no build): outputs, file modes,
// exit codes 0/2, nothing written on failure, no key material printed, and bundle fingerprints that
// `inspect` agrees with.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFingerprint, parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { snapshotTree } from '../helpers/pki.js';

const REPO = join(import.meta.dirname, '..', '..');

type Run = CliResult;

const outputs: string[] = [];

/** Runs `fedlab ...` from the TypeScript sources (the shared helper: tsx as a loader, no build), keeping its output. */
async function fedlab(...args: string[]): Promise<Run> {
  const r = await runCli(args, { cwd: REPO, env: { FEDLAB_DEBUG: '' }, timeoutMs: 60_000 });
  outputs.push(r.stdout, r.stderr);
  return r;
}

function openssl(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** A failed command prints exactly one line, `fedlab: ...`. */
function expectOneLineError(r: Run, code: number, why: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(/^fedlab: [^\n]+\n$/);
  expect(r.stderr).toMatch(why);
}

const mode = (p: string) => statSync(p).mode & 0o777;

let dir: string;
let ca: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-certs-cli-'));
  ca = join(dir, 'ca');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fedlab certs', { timeout: 120_000 }, () => {
  it('init-ca creates a CA with a 0600 key and refuses to make a second one in the same place', async () => {
    const r = await fedlab('certs', 'init-ca', '--domain', 'plc.test', '--out', ca, '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { domain: string; alg: string; files: { key: string; cert: string; state: string } };
    expect(out).toMatchObject({ domain: 'plc.test', alg: 'p256', files: { key: join(ca, 'ca.key'), cert: join(ca, 'ca.pem') } });
    expect(mode(join(ca, 'ca.key'))).toBe(0o600);
    const text = openssl('x509', '-in', join(ca, 'ca.pem'), '-noout', '-text').out;
    expect(text).toMatch(/Subject: CN ?= ?Fedlab CA plc.test/);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);

    const before = snapshotTree(ca);
    expectOneLineError(await fedlab('certs', 'init-ca', '--domain', 'plc.test', '--out', ca), 2, /already holds a CA/);
    expect(snapshotTree(ca)).toEqual(before);
  });

  it('init-ca refuses a bad domain or algorithm and creates nothing', async () => {
    const cases = [
      [['--domain', 'PLC.Test'], /not a lower-case DNS name/],
      [['--domain', 'plc.test', '--alg', 'rsa2048'], /not a key algorithm/],
      [['--domain', 'plc.test', '--days', 'ten'], /--days must be a positive whole number/],
    ] as const;
    await Promise.all(
      cases.map(async ([args, why], i) => {
        const out = join(dir, `bad-ca-${i}`);
        expectOneLineError(await fedlab('certs', 'init-ca', ...args, '--out', out), 2, why);
        expect(() => statSync(out)).toThrow();
      }),
    );
  });

  it('init-ca --alg ed25519 and issue an Ed25519 certificate that openssl verifies', async () => {
    const edCa = join(dir, 'ed-ca');
    expect((await fedlab('certs', 'init-ca', '--domain', 'ed.test', '--out', edCa, '--alg', 'ed25519')).code).toBe(0);
    const out = join(dir, 'ed-node');
    const r = await fedlab('certs', 'issue', '--ca', edCa, '--urn', 'urn:fedlab:ed.test:node:n1', '--out', out, '--alg', 'ed25519');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/issued urn:fedlab:ed.test:node:n1/);
    const v = openssl('verify', '-CAfile', join(out, 'ca.pem'), join(out, 'cert.pem'));
    expect(v.ok, v.out).toBe(true);
    expect(openssl('x509', '-in', join(out, 'cert.pem'), '-noout', '-text').out).toMatch(/Public Key Algorithm: ED25519/);
  });

  it('issue writes key (0600), certificate and CA copy; inspect shows the URN and names', async () => {
    const out = join(dir, 'ma');
    const r = await fedlab(
      'certs',
      'issue',
      '--ca',
      ca,
      '--urn',
      'urn:fedlab:plc.test:authority:ma',
      '--out',
      out,
      '--dns',
      'localhost',
      '--ip',
      '127.0.0.1',
      '--ip',
      '::1',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(mode(join(out, 'key.pem'))).toBe(0o600);
    expect(readFileSync(join(out, 'ca.pem'), 'utf8')).toBe(readFileSync(join(ca, 'ca.pem'), 'utf8'));
    const v = openssl('verify', '-CAfile', join(ca, 'ca.pem'), join(out, 'cert.pem'));
    expect(v.ok, v.out).toBe(true);

    const i = await fedlab('certs', 'inspect', join(out, 'cert.pem'), '--json');
    expect(i.code, i.stderr).toBe(0);
    const report = JSON.parse(i.stdout) as {
      type: string;
      certificates: { urn: string; sans: string[]; ca: boolean; subject: string; key_alg: string; fingerprint_sha256: string }[];
    };
    const c = report.certificates[0];
    expect(c).toMatchObject({ urn: 'urn:fedlab:plc.test:authority:ma', subject: 'CN=ma', ca: false, key_alg: 'ES256' });
    expect(c?.sans).toEqual(['URI:urn:fedlab:plc.test:authority:ma', 'DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);
    expect(`sha256 Fingerprint=${c?.fingerprint_sha256}`).toBe(
      openssl('x509', '-in', join(out, 'cert.pem'), '-noout', '-fingerprint', '-sha256').out.trim(),
    );
    const text = await fedlab('certs', 'inspect', join(out, 'cert.pem'));
    expect(text.stdout).toMatch(/^urn: +urn:fedlab:plc.test:authority:ma$/m);
    expect(text.stdout).toMatch(/^key: +ES256, thumbprint [A-Za-z0-9_-]{43}$/m);
  });

  it('issue refuses, writing nothing, a URN of another domain, a bad URN, bad names, and an existing key', async () => {
    const caBefore = snapshotTree(ca);
    const ma = join(dir, 'ma');
    const maBefore = snapshotTree(ma);
    const cases = [
      [['--ca', ca, '--urn', 'urn:fedlab:other.test:sp:acme'], /this CA is for plc.test/],
      [['--ca', ca, '--urn', 'urn:fedlab:plc.test:sp:Acme'], /malformed URN/],
      [['--ca', ca, '--urn', 'urn:fedlab:plc.test:sp:acme', '--dns', 'no spaces'], /not a DNS name/],
      [['--ca', ca, '--urn', 'urn:fedlab:plc.test:sp:acme', '--ip', '1.2.3'], /not an IPv4 or IPv6/],
      [['--ca', ca, '--urn', 'urn:fedlab:plc.test:sp:acme', '--alg', 'dsa'], /not a key algorithm/],
      [['--ca', ca, '--urn', 'urn:fedlab:plc.test:sp:acme', '--days', '0'], /--days must be a positive whole number/],
      [['--ca', join(dir, 'nope'), '--urn', 'urn:fedlab:plc.test:sp:acme'], /not a usable Fedlab CA directory: ca.json is missing/],
    ] as const;
    await Promise.all([
      ...cases.map(async ([args, why], i) => {
        const out = join(dir, `bad-issue-${i}`);
        expectOneLineError(await fedlab('certs', 'issue', ...args, '--out', out), 2, why);
        expect(() => statSync(out)).toThrow();
      }),
      (async () => {
        expectOneLineError(
          await fedlab('certs', 'issue', '--ca', ca, '--urn', 'urn:fedlab:plc.test:authority:ma', '--out', ma),
          2,
          /already exists.*--force/,
        );
      })(),
    ]);
    expect(snapshotTree(ma)).toEqual(maBefore);
    expect(snapshotTree(ca)).toEqual(caBefore);
    expect(() => statSync(join(dir, 'nope'))).toThrow();
  });

  it('issue --key certifies an existing key; --force replaces key.pem', async () => {
    const out = join(dir, 'acme');
    expect((await fedlab('certs', 'issue', '--ca', ca, '--urn', 'urn:fedlab:plc.test:sp:acme', '--out', out)).code).toBe(0);
    const first = JSON.parse((await fedlab('certs', 'inspect', join(out, 'cert.pem'), '--json')).stdout) as {
      certificates: { key_thumbprint: string }[];
    };
    const keyCopy = join(dir, 'acme-key.pem');
    writeFileSync(keyCopy, readFileSync(join(out, 'key.pem')), { mode: 0o600 });

    const other = join(dir, 'acme-renewed');
    const r = await fedlab(
      'certs',
      'issue',
      '--ca',
      ca,
      '--urn',
      'urn:fedlab:plc.test:sp:acme',
      '--out',
      other,
      '--key',
      keyCopy,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { kid: string }).kid).toBe(first.certificates[0]?.key_thumbprint);

    const keyBefore = readFileSync(join(out, 'key.pem'), 'utf8');
    expect((await fedlab('certs', 'issue', '--ca', ca, '--urn', 'urn:fedlab:plc.test:sp:acme', '--out', out, '--force')).code).toBe(0);
    expect(readFileSync(join(out, 'key.pem'), 'utf8')).not.toBe(keyBefore);
    expect(mode(join(out, 'key.pem'))).toBe(0o600);
  });

  it('bundle writes a bundle that parses, whose fingerprint inspect prints; serials increase', async () => {
    const file = join(dir, 'pub', 'bundle.json');
    const r = await fedlab('certs', 'bundle', '--ca', ca, '--out', file);
    expect(r.code, r.stderr).toBe(0);
    const printed = /^fingerprint: +(sha256:[0-9a-f]{64})$/m.exec(r.stdout)?.[1];
    const bundle = await parseTrustBundle(readFileSync(file, 'utf8'));
    expect(bundle).toMatchObject({ domain: 'plc.test', serial: 1, revocation_version: 0 });
    // Only authorities are vouched for: the MA, not the service provider.
    expect(bundle.authorities.map((a) => a.urn)).toEqual(['urn:fedlab:plc.test:authority:ma']);
    expect(printed).toBe(bundleFingerprint(bundle));
    const i = await fedlab('certs', 'inspect', file);
    expect(i.code, i.stderr).toBe(0);
    expect(/^fingerprint: +(sha256:[0-9a-f]{64})$/m.exec(i.stdout)?.[1]).toBe(printed);
    expect(i.stdout).toMatch(/^authority: +urn:fedlab:plc.test:authority:ma \(kid /m);
    const j = JSON.parse((await fedlab('certs', 'inspect', file, '--json')).stdout) as { fingerprint: string; serial: number };
    expect(j).toMatchObject({ fingerprint: printed, serial: 1 });

    const r2 = JSON.parse((await fedlab('certs', 'bundle', '--ca', ca, '--out', file, '--revocation-version', '3', '--json')).stdout) as {
      serial: number;
      revocation_version: number;
      fingerprint: string;
    };
    expect(r2).toMatchObject({ serial: 2, revocation_version: 3 });
    expect(bundleFingerprint(await parseTrustBundle(readFileSync(file, 'utf8')))).toBe(r2.fingerprint);
  });

  it('bundle refuses, writing nothing, a foreign authority certificate or a serial that does not increase', async () => {
    const foreignCa = join(dir, 'foreign-ca');
    expect((await fedlab('certs', 'init-ca', '--domain', 'plc.test', '--out', foreignCa)).code).toBe(0);
    const foreign = join(dir, 'foreign-ma');
    expect((await fedlab('certs', 'issue', '--ca', foreignCa, '--urn', 'urn:fedlab:plc.test:authority:ma', '--out', foreign)).code).toBe(0);
    const file = join(dir, 'pub', 'bundle.json');
    const caBefore = snapshotTree(ca);
    const fileBefore = readFileSync(file, 'utf8');
    const [foreignRun, serialRun, negativeRun] = await Promise.all([
      fedlab('certs', 'bundle', '--ca', ca, '--out', file, '--authority', join(foreign, 'cert.pem')),
      fedlab('certs', 'bundle', '--ca', ca, '--out', file, '--serial', '2'),
      fedlab('certs', 'bundle', '--ca', ca, '--out', join(dir, 'new', 'b.json'), '--serial=-1'),
    ]);
    expectOneLineError(foreignRun, 2, /not issued by the CA of plc.test/);
    expectOneLineError(serialRun, 2, /does not increase/);
    expectOneLineError(negativeRun, 2, /--serial must be a non-negative whole number/);
    expect(snapshotTree(ca)).toEqual(caBefore);
    expect(readFileSync(file, 'utf8')).toBe(fileBefore);
    expect(() => statSync(join(dir, 'new'))).toThrow();
  });

  it('inspect exits 2 on an unreadable file, garbage, or a private key (without printing it)', async () => {
    const junk = join(dir, 'junk.txt');
    writeFileSync(junk, 'not a certificate');
    const [missing, garbage, key] = await Promise.all([
      fedlab('certs', 'inspect', join(dir, 'missing.pem')),
      fedlab('certs', 'inspect', junk),
      fedlab('certs', 'inspect', join(ca, 'ca.key')),
    ]);
    expectOneLineError(missing, 2, /cannot read/);
    expectOneLineError(garbage, 2, /not a PEM or DER X.509 certificate/);
    expectOneLineError(key, 2, /holds a private key/);
  });

  it('a missing required flag is a usage error', async () => {
    const r = await fedlab('certs', 'issue', '--ca', ca, '--out', join(dir, 'x'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--urn/);
  });

  it('never printed key material', async () => {
    const keys = [join(ca, 'ca.key'), join(dir, 'ma', 'key.pem'), join(dir, 'acme', 'key.pem'), join(dir, 'ed-node', 'key.pem')].map((p) =>
      readFileSync(p, 'utf8'),
    );
    const all = outputs.join('\n');
    expect(all).not.toMatch(/PRIVATE KEY/);
    for (const pem of keys) {
      const body = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      expect(all).not.toContain(body.slice(0, 40));
    }
  });
});
