// The certificate tooling as a library: CAs, issuance, bundles, inspection, all-or-nothing writes.
import { spawnSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCa, loadCa, readCaState } from '../../certs/ca.js';
import { issueCertificate, signLeafCertificate } from '../../certs/issue.js';
import { buildBundle, writeBundle } from '../../certs/bundle.js';
import { inspectFile } from '../../certs/inspect.js';
import { FileTransaction, withDirLock } from '../../certs/files.js';
import { x509 } from '../../certs/x509-provider.js';
import { AbortedError, FailedPreconditionError, InvalidArgumentError } from '../../services/core/errors.js';
import { identityFromCertificate } from '../../services/core/identity/certificate.js';
import { describePublicKey, privateKeyToPem } from '../../services/core/identity/keys.js';
import { bundleFingerprint, parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { snapshotTree } from '../helpers/pki.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'fedlab-certs-unit-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
const fresh = (name: string) => join(root, `${name}-${(n += 1)}`);
const mode = (p: string) => statSync(p).mode & 0o777;
const DAY = 86_400_000;

/** openssl's own verdict, strict X.509 checks, for the TLS purpose asked. */
function opensslVerify(caPath: string, certPath: string, purpose?: 'sslserver' | 'sslclient') {
  const args = ['verify', '-x509_strict', ...(purpose ? ['-purpose', purpose] : []), '-CAfile', caPath, certPath];
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: r.status === 0 && /: OK\s*$/.test(r.stdout), out: `${r.stdout}${r.stderr}` };
}

describe('initCa', () => {
  it.each(['p256', 'ed25519'] as const)('makes a self-signed %s CA with the right extensions and files', async (alg) => {
    const dir = fresh('ca');
    const now = new Date();
    const r = await initCa({ domain: 'plc.test', outDir: dir, alg, now });
    expect(r.domain).toBe('plc.test');
    expect(mode(join(dir, 'ca.key'))).toBe(0o600);
    expect(mode(dir)).toBe(0o700);
    const pem = readFileSync(join(dir, 'ca.pem'), 'utf8');
    expect(pem).toBe(r.certPem);
    const cert = new x509.X509Certificate(pem);
    expect(cert.subject).toBe('CN=Fedlab CA plc.test');
    expect(cert.issuer).toBe(cert.subject);
    expect(await cert.verify({ signatureOnly: true })).toBe(true);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    expect(bc?.ca).toBe(true);
    expect(bc?.critical).toBe(true);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    expect(ku?.critical).toBe(true);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);
    // Ten years by default.
    expect(Math.round((cert.notAfter.getTime() - now.getTime()) / DAY)).toBe(3650);
    const state = await readCaState(dir);
    expect(state).toMatchObject({ v: 1, domain: 'plc.test', alg, issued: [], bundle: null, serial: r.serial });
    expect(opensslVerify(join(dir, 'ca.pem'), join(dir, 'ca.pem')).ok).toBe(true);
    const loaded = await loadCa(dir);
    expect(loaded.alg).toBe(alg);
  });

  it('writes the key atomically: no temporary files are left behind', async () => {
    const dir = fresh('ca');
    await initCa({ domain: 'plc.test', outDir: dir, days: 30 });
    expect([...snapshotTree(dir).keys()].sort()).toEqual(['ca.json', 'ca.key', 'ca.pem']);
  });

  it('refuses, writing nothing, a directory that already holds a CA', async () => {
    const dir = fresh('ca');
    await initCa({ domain: 'plc.test', outDir: dir });
    const before = snapshotTree(dir);
    await expect(initCa({ domain: 'other.test', outDir: dir })).rejects.toThrow(InvalidArgumentError);
    await expect(initCa({ domain: 'plc.test', outDir: dir })).rejects.toThrow(/already holds a CA/);
    expect(snapshotTree(dir)).toEqual(before);
  });

  it.each([
    [{ domain: 'PLC.test' }, /not a lower-case DNS name/],
    [{ domain: 'plc..test' }, /not a lower-case DNS name/],
    [{ domain: 'plc.test', alg: 'rsa' }, /not a key algorithm/],
    [{ domain: 'plc.test', days: 0 }, /--days/],
  ])('refuses bad input %j without creating anything', async (bad, why) => {
    const dir = fresh('ca');
    await expect(initCa({ outDir: dir, ...(bad as { domain: string }) })).rejects.toThrow(why);
    expect(() => statSync(dir)).toThrow();
  });

  it('refuses an --out that is a file', async () => {
    const file = fresh('file');
    writeFileSync(file, 'x');
    await expect(initCa({ domain: 'plc.test', outDir: file })).rejects.toThrow(/not a directory/);
  });
});

describe('issueCertificate', () => {
  const cas: Record<string, string> = {};
  beforeAll(async () => {
    for (const alg of ['p256', 'ed25519'] as const) {
      cas[alg] = fresh(`ca-${alg}`);
      await initCa({ domain: 'plc.test', outDir: cas[alg], alg });
    }
  });

  it.each([
    ['p256', 'p256'],
    ['p256', 'ed25519'],
    ['ed25519', 'ed25519'],
    ['ed25519', 'p256'],
  ] as const)('a %s CA issues a %s leaf that openssl verifies strictly, as client and as server', async (caAlg, alg) => {
    const caDir = cas[caAlg] as string;
    const out = fresh('leaf');
    const urn = 'urn:fedlab:plc.test:authority:ma';
    const r = await issueCertificate({ caDir, urn, outDir: out, alg, dns: ['localhost', 'MA.plc.test'], ip: ['127.0.0.1', '::1'] });
    expect(r.alg).toBe(alg);
    for (const purpose of ['sslclient', 'sslserver'] as const) {
      const v = opensslVerify(join(out, 'ca.pem'), join(out, 'cert.pem'), purpose);
      expect(v.ok, v.out).toBe(true);
    }
    expect(mode(join(out, 'key.pem'))).toBe(0o600);
    expect(readFileSync(join(out, 'ca.pem'), 'utf8')).toBe(readFileSync(join(caDir, 'ca.pem'), 'utf8'));
    expect(readFileSync(join(caDir, 'issued', `${r.serial}.pem`), 'utf8')).toBe(r.certPem);

    const cert = new x509.X509Certificate(r.certPem);
    const ca = new x509.X509Certificate(readFileSync(join(caDir, 'ca.pem'), 'utf8'));
    expect(cert.subject).toBe('CN=ma');
    expect(cert.issuer).toBe(ca.subject);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    expect(bc?.ca).toBe(false);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(ku?.critical).toBe(true);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(ca.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);
    const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON();
    expect(names).toEqual([
      { type: 'url', value: urn },
      { type: 'dns', value: 'localhost' },
      { type: 'dns', value: 'ma.plc.test' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: '::1' },
    ]);
    // Positive, at most 128 bits, and what ca.json records.
    expect(BigInt(`0x${r.serial}`) > 0n).toBe(true);
    expect(r.serial.length).toBeLessThanOrEqual(32);
    const state = await readCaState(caDir);
    expect(state.issued.find((i) => i.serial === r.serial)).toMatchObject({
      urn,
      kind: 'authority',
      alg,
      kid: r.kid,
      not_after: r.notAfter.toISOString(),
    });

    // The identity the RPC layer reads from it is the URN and the key written beside it.
    const id = await identityFromCertificate(new X509Certificate(r.certPem));
    expect(id.urn).toBe(urn);
    expect(id.thumbprint).toBe((await describePublicKey(createPublicKey(readFileSync(join(out, 'key.pem'))))).thumbprint);
  });

  it('defaults to one year and never outlives the CA', async () => {
    const now = new Date();
    const caDir = fresh('ca-short');
    await initCa({ domain: 'plc.test', outDir: caDir, days: 30, now });
    const a = await issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:user:a', outDir: fresh('leaf'), now });
    const caNotAfter = new X509Certificate(readFileSync(join(caDir, 'ca.pem'))).validTo;
    expect(a.clipped).toBe(true);
    expect(a.notAfter.getTime()).toBe(Date.parse(caNotAfter));
    const b = await issueCertificate({ caDir: cas.p256 as string, urn: 'urn:fedlab:plc.test:user:b', outDir: fresh('leaf'), now });
    expect(b.clipped).toBe(false);
    expect(Math.round((b.notAfter.getTime() - now.getTime()) / DAY)).toBe(365);
    const c = await issueCertificate({ caDir: cas.p256 as string, urn: 'urn:fedlab:plc.test:user:c', outDir: fresh('leaf'), now, days: 7 });
    expect(Math.round((c.notAfter.getTime() - now.getTime()) / DAY)).toBe(7);
  });

  it('certifies an existing key and reuses the one already in --out', async () => {
    const { privateKey } = generateKeyPair('ed25519');
    const keyFile = join(fresh('k'));
    writeFileSync(keyFile, privateKeyToPem(privateKey), { mode: 0o600 });
    const out = fresh('leaf');
    const r = await issueCertificate({ caDir: cas.p256 as string, urn: 'urn:fedlab:plc.test:node:n1', outDir: out, keyFile });
    expect(r.kid).toBe((await describePublicKey(privateKey)).thumbprint);
    expect(r.alg).toBe('ed25519');
    // Renewal: the same key, from --out itself, needs no --force.
    const again = await issueCertificate({
      caDir: cas.p256 as string,
      urn: 'urn:fedlab:plc.test:node:n1',
      outDir: out,
      keyFile: join(out, 'key.pem'),
    });
    expect(again.kid).toBe(r.kid);
    expect(again.serial).not.toBe(r.serial);
    await expect(
      issueCertificate({ caDir: cas.p256 as string, urn: 'urn:fedlab:plc.test:node:n2', outDir: fresh('leaf'), keyFile, alg: 'p256' }),
    ).rejects.toThrow(/does not match the given key/);
  });

  it.each([
    [{ urn: 'urn:fedlab:other.test:sp:acme' }, /this CA is for plc.test/],
    [{ urn: 'urn:fedlab:plc.test:robot:r1' }, /kind "robot"/],
    [{ urn: 'not-a-urn' }, /malformed URN/],
    [{ dns: ['bad_name!'] }, /is not a DNS name/],
    [{ ip: ['300.1.1.1'] }, /not an IPv4 or IPv6/],
    [{ alg: 'rsa' }, /not a key algorithm/],
    [{ days: 100_000 }, /--days/],
    [{ keyFile: '/nonexistent/key.pem' }, /cannot read/],
  ])('refuses %j and writes nothing anywhere', async (bad, why) => {
    const caDir = cas.p256 as string;
    const out = fresh('leaf');
    const before = snapshotTree(caDir);
    const err = await issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:sp:acme', outDir: out, ...(bad as object) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(why);
    expect(snapshotTree(caDir)).toEqual(before);
    expect(() => statSync(out)).toThrow();
  });

  it('refuses a key file that holds no private key, without echoing it', async () => {
    const keyFile = fresh('notkey');
    writeFileSync(keyFile, 'SECRET-LOOKING-GARBAGE');
    const err = (await issueCertificate({
      caDir: cas.p256 as string,
      urn: 'urn:fedlab:plc.test:sp:x',
      outDir: fresh('leaf'),
      keyFile,
    }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).not.toMatch(/SECRET/);
  });

  it('refuses to overwrite key.pem unless forced', async () => {
    const caDir = cas.p256 as string;
    const out = fresh('leaf');
    await issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:sp:acme', outDir: out });
    const before = snapshotTree(out);
    const caBefore = snapshotTree(caDir);
    await expect(issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:sp:acme', outDir: out })).rejects.toThrow(/already exists.*--force/);
    expect(snapshotTree(out)).toEqual(before);
    expect(snapshotTree(caDir)).toEqual(caBefore);
    const forced = await issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:sp:acme', outDir: out, force: true });
    expect(readFileSync(join(out, 'cert.pem'), 'utf8')).toBe(forced.certPem);
    expect(mode(join(out, 'key.pem'))).toBe(0o600);
  });

  it('refuses --out equal to the CA directory and a directory that is not a CA', async () => {
    const caDir = cas.p256 as string;
    await expect(issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:sp:acme', outDir: caDir })).rejects.toThrow(
      /must not be the CA directory/,
    );
    const empty = fresh('empty');
    mkdirSync(empty);
    await expect(issueCertificate({ caDir: empty, urn: 'urn:fedlab:plc.test:sp:acme', outDir: fresh('leaf') })).rejects.toThrow(
      /not a usable Fedlab CA directory.*ca.json is missing/,
    );
  });

  it('refuses to use a CA whose key and certificate do not match', async () => {
    const a = fresh('ca');
    const b = fresh('ca');
    await initCa({ domain: 'plc.test', outDir: a });
    await initCa({ domain: 'plc.test', outDir: b });
    writeFileSync(join(a, 'ca.key'), readFileSync(join(b, 'ca.key')));
    await expect(loadCa(a)).rejects.toThrow(/ca.key is not the key of ca.pem/);
  });

  it('fails with FAILED_PRECONDITION once the CA has expired', async () => {
    const caDir = fresh('ca');
    const then = new Date(Date.now() - 10 * DAY);
    await initCa({ domain: 'plc.test', outDir: caDir, days: 2, now: then });
    await expect(issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:sp:acme', outDir: fresh('leaf') })).rejects.toThrow(
      FailedPreconditionError,
    );
  });

  it('serialises concurrent issuances: every one is recorded', async () => {
    const caDir = fresh('ca');
    await initCa({ domain: 'plc.test', outDir: caDir });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => issueCertificate({ caDir, urn: `urn:fedlab:plc.test:node:n${i}`, outDir: fresh('leaf') })),
    );
    const state = await readCaState(caDir);
    expect(state.issued.map((r) => r.serial).sort()).toEqual(results.map((r) => r.serial).sort());
    expect(new Set(results.map((r) => r.serial)).size).toBe(8);
  });

  it('signs in memory for a loaded CA and rejects a URN of another domain', async () => {
    const ca = await loadCa(cas.ed25519 as string);
    const { publicKey } = generateKeyPair('p256');
    const leaf = await signLeafCertificate(ca, { urn: 'urn:fedlab:plc.test:user:alice', publicKey });
    expect(leaf.cert.checkIssued(ca.cert)).toBe(true);
    expect(leaf.cert.verify(ca.cert.publicKey)).toBe(true);
    await expect(signLeafCertificate(ca, { urn: 'urn:fedlab:plc.testing:user:alice', publicKey })).rejects.toThrow(/domain plc.testing/);
  });
});

describe('FileTransaction and the directory lock', () => {
  it('rolls back: no temporaries, no new targets, no new directories', async () => {
    const base = fresh('tx');
    mkdirSync(base);
    const blocker = join(base, 'blocker');
    mkdirSync(join(blocker, 'inner'), { recursive: true }); // renaming a file onto a non-empty directory fails
    const before = snapshotTree(base);
    const tx = new FileTransaction();
    await tx.ensureDir(join(base, 'new', 'deep'));
    await tx.stage(join(base, 'new', 'deep', 'a'), 'a', 0o600);
    await tx.stage(join(base, 'b'), 'b', 0o644);
    await tx.stage(blocker, 'c', 0o644);
    await expect(tx.commit()).rejects.toThrow();
    expect(snapshotTree(base)).toEqual(before);
  });

  it('breaks a lock left by a dead process', async () => {
    const dir = fresh('lock');
    mkdirSync(dir);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(dir, '.lock'), dead.stdout);
    expect(await withDirLock(dir, async () => 'ran')).toBe('ran');
    expect(() => statSync(join(dir, '.lock'))).toThrow();
  });

  it('reports a busy directory as ABORTED after waiting', async () => {
    const dir = fresh('lock');
    mkdirSync(dir);
    // Our parent (the test runner) is alive, so its lock is honoured.
    writeFileSync(join(dir, '.lock'), String(process.ppid));
    await expect(withDirLock(dir, async () => 'ran', { waitMs: 200 })).rejects.toThrow(AbortedError);
  });
});

describe('bundles', () => {
  let caDir: string;
  let maCert: string;
  let saCert: string;
  beforeAll(async () => {
    caDir = fresh('ca');
    // Made three days ago, so that it can have issued a certificate that has expired since.
    await initCa({ domain: 'plc.test', outDir: caDir, now: new Date(Date.now() - 3 * DAY) });
    maCert = (await issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:authority:ma', outDir: fresh('ma') })).paths.cert;
    saCert = (await issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:authority:sa', outDir: fresh('sa'), alg: 'ed25519' })).paths.cert;
    await issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:sp:acme', outDir: fresh('sp') });
    // An authority whose certificate has expired no longer vouches for its key.
    await issueCertificate({
      caDir,
      urn: 'urn:fedlab:plc.test:authority:old',
      outDir: fresh('old'),
      days: 1,
      now: new Date(Date.now() - 2 * DAY),
    });
  });

  it('holds the CA and every unexpired authority the CA recorded, and parses strictly', async () => {
    const file = join(fresh('b'), 'bundle.json');
    const r = await writeBundle({ caDir, outFile: file });
    expect(r.bundle.serial).toBe(1);
    expect(r.bundle.revocation_version).toBe(0);
    expect(r.bundle.ca_certs).toEqual([readFileSync(join(caDir, 'ca.pem'), 'utf8')]);
    expect(r.bundle.authorities.map((a) => a.urn)).toEqual(['urn:fedlab:plc.test:authority:ma', 'urn:fedlab:plc.test:authority:sa']);
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(r.json);
    const parsed = await parseTrustBundle(text);
    expect(bundleFingerprint(parsed)).toBe(r.fingerprint);
    // The file is exactly the canonical JSON, so a plain SHA-256 of it is the fingerprint.
    const sha = spawnSync('openssl', ['dgst', '-sha256', '-r', file], { encoding: 'utf8' }).stdout.split(' ')[0];
    expect(`sha256:${sha}`).toBe(r.fingerprint);
    const ma = await identityFromCertificate(new X509Certificate(readFileSync(maCert)));
    expect(parsed.authorities[0]).toEqual({ urn: ma.urn, jwk: ma.jwk, kid: ma.thumbprint });
    expect((await readCaState(caDir)).bundle).toMatchObject({ serial: 1, fingerprint: r.fingerprint });
  });

  it('increases the serial, keeps the revocation version, and never lets either go back', async () => {
    const file = join(fresh('b'), 'bundle.json');
    const last = (await readCaState(caDir)).bundle?.serial ?? 0;
    const a = await writeBundle({ caDir, outFile: file, revocationVersion: 4 });
    expect(a.bundle.serial).toBe(last + 1);
    const b = await writeBundle({ caDir, outFile: file });
    expect(b.bundle.serial).toBe(last + 2);
    expect(b.bundle.revocation_version).toBe(4);
    const c = await writeBundle({ caDir, outFile: file, serial: last + 10 });
    expect(c.bundle.serial).toBe(last + 10);
    const before = snapshotTree(caDir);
    const fileBefore = readFileSync(file, 'utf8');
    await expect(writeBundle({ caDir, outFile: file, serial: last + 10 })).rejects.toThrow(/does not increase/);
    await expect(writeBundle({ caDir, outFile: file, revocationVersion: 3 })).rejects.toThrow(/never goes back/);
    expect(snapshotTree(caDir)).toEqual(before);
    expect(readFileSync(file, 'utf8')).toBe(fileBefore);
  });

  it('adds an explicit authority certificate of the domain (dedup by key)', async () => {
    const r = await buildBundle({ caDir, authorityFiles: [maCert, saCert] });
    expect(r.bundle.authorities).toHaveLength(2);
    const node = await issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:node:n1', outDir: fresh('n1') });
    const withNode = await buildBundle({ caDir, authorityFiles: [node.paths.cert] });
    expect(withNode.bundle.authorities.map((a) => a.urn)).toContain('urn:fedlab:plc.test:node:n1');
  });

  it('refuses, writing nothing, authority certificates that do not chain to this CA or are not of this domain', async () => {
    // Same domain and same CA name, different key: only the signature tells them apart.
    const evilDir = fresh('evil');
    await initCa({ domain: 'plc.test', outDir: evilDir });
    const evil = await issueCertificate({ caDir: evilDir, urn: 'urn:fedlab:plc.test:authority:ma', outDir: fresh('evil-ma') });
    const otherDir = fresh('other');
    await initCa({ domain: 'other.test', outDir: otherDir });
    const other = await issueCertificate({ caDir: otherDir, urn: 'urn:fedlab:other.test:authority:ma', outDir: fresh('other-ma') });
    const garbage = fresh('garbage');
    writeFileSync(garbage, 'not a certificate');
    const before = snapshotTree(caDir);
    const outDir = fresh('b');
    for (const [file, why] of [
      [evil.paths.cert, /not issued by the CA/],
      [other.paths.cert, /not issued by the CA/],
      [join(caDir, 'ca.pem'), /is a CA certificate/],
      [garbage, /not a PEM or DER X.509 certificate/],
      ['/nonexistent.pem', /cannot read/],
    ] as const) {
      const err = await writeBundle({ caDir, outFile: join(outDir, 'bundle.json'), authorityFiles: [file] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(why);
    }
    expect(snapshotTree(caDir)).toEqual(before);
    expect(() => statSync(outDir)).toThrow();
  });
});

describe('inspectFile', () => {
  it('describes a certificate the way openssl does', async () => {
    const caDir = fresh('ca');
    await initCa({ domain: 'plc.test', outDir: caDir, alg: 'ed25519' });
    const r = await issueCertificate({
      caDir,
      urn: 'urn:fedlab:plc.test:sp:acme',
      outDir: fresh('sp'),
      dns: ['localhost'],
      ip: ['127.0.0.1'],
    });
    const report = await inspectFile(r.paths.cert);
    if (report.type !== 'certificates') throw new Error('expected certificates');
    const c = report.certificates[0];
    const fp = spawnSync('openssl', ['x509', '-in', r.paths.cert, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' })
      .stdout.trim()
      .split('=')[1];
    expect(c).toEqual({
      type: 'certificate',
      subject: 'CN=acme',
      issuer: 'CN=Fedlab CA plc.test',
      urn: 'urn:fedlab:plc.test:sp:acme',
      serial: r.serial,
      not_before: r.notBefore.toISOString(),
      not_after: r.notAfter.toISOString(),
      key_alg: 'ES256',
      key_thumbprint: r.kid,
      sans: ['URI:urn:fedlab:plc.test:sp:acme', 'DNS:localhost', 'IP:127.0.0.1'],
      ca: false,
      fingerprint_sha256: fp,
    });
    const caReport = await inspectFile(join(caDir, 'ca.pem'));
    expect(caReport.type === 'certificates' && caReport.certificates[0]).toMatchObject({ ca: true, urn: null, key_alg: 'EdDSA', sans: [] });
  });

  it('describes a bundle with the fingerprint that peers pin', async () => {
    const caDir = fresh('ca');
    await initCa({ domain: 'plc.test', outDir: caDir });
    await issueCertificate({ caDir, urn: 'urn:fedlab:plc.test:authority:ma', outDir: fresh('ma') });
    const b = await writeBundle({ caDir, outFile: join(fresh('b'), 'bundle.json') });
    const report = await inspectFile(b.file);
    expect(report).toMatchObject({
      type: 'bundle',
      domain: 'plc.test',
      serial: 1,
      fingerprint: b.fingerprint,
      canonical: true,
      ca_subjects: ['CN=Fedlab CA plc.test'],
      authorities: [{ urn: 'urn:fedlab:plc.test:authority:ma', kid: b.bundle.authorities[0]?.kid }],
      revocation_version: 0,
    });
    // Pretty-printed, the same bundle has the same fingerprint but is not canonical.
    const pretty = join(fresh('p'));
    writeFileSync(pretty, JSON.stringify(JSON.parse(b.json), null, 2));
    expect(await inspectFile(pretty)).toMatchObject({ fingerprint: b.fingerprint, canonical: false });
  });

  it('refuses keys, garbage and missing files', async () => {
    const { privateKey } = generateKeyPair('p256');
    const keyFile = fresh('key');
    writeFileSync(keyFile, privateKeyToPem(privateKey));
    const err = (await inspectFile(keyFile).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toMatch(/holds a private key/);
    expect(err.message).not.toMatch(/BEGIN/);
    const junk = fresh('junk');
    writeFileSync(junk, 'hello');
    await expect(inspectFile(junk)).rejects.toThrow(InvalidArgumentError);
    const badJson = fresh('json');
    writeFileSync(badJson, '{"v":2}');
    await expect(inspectFile(badJson)).rejects.toThrow(/invalid trust bundle/);
    await expect(inspectFile('/nonexistent/file.pem')).rejects.toThrow(/cannot read/);
  });
});
