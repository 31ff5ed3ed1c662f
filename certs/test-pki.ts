/**
 * A whole PKI in a temporary directory in one call, for tests of any
 * component: a domain CA, then certificates issued on demand through the same
 * code paths as `fedlab certs`, so what tests use is what admins get. Also
 * fine for local demos; never for real domains (keys live in the temp dir).
 */
import type { KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { describePublicKey, privateKeyToPem, type KeyAlgName } from '../services/core/identity/keys.js';
import { parseUrn } from '../services/core/identity/urn.js';
import { initCa } from './ca.js';
import { writeBundle, type BuiltBundle } from './bundle.js';
import { exists } from './files.js';
import { issueCertificate } from './issue.js';

/** Options of {@link createTestPki}. */
export interface TestPkiOptions {
  /** The domain; `plc.test` by default. */
  readonly domain?: string;
  /** The CA's key algorithm (p256 by default). */
  readonly alg?: KeyAlgName;
  /** Directory to create the PKI in; a fresh temporary directory by default. */
  readonly dir?: string;
  /** The CA's validity in days (10 years by default). */
  readonly days?: number;
  /** The CA's clock (to make CAs in the past or future). */
  readonly now?: Date;
}

/** Options of {@link TestPki.issue}. */
export interface TestIssueOptions {
  readonly dns?: readonly string[];
  readonly ip?: readonly string[];
  /** Key algorithm of the principal (p256 by default). */
  readonly alg?: KeyAlgName;
  /** Certify this key instead of a new one. */
  readonly privateKey?: KeyObject;
  readonly days?: number;
  /** The issuing clock (issue with a past `now` and few `days` for an expired certificate). */
  readonly now?: Date;
}

/** A principal issued by a test PKI: files and PEM text. */
export interface TestIdentity {
  readonly urn: string;
  readonly alg: KeyAlgName;
  readonly serial: string;
  /** Public JWK and RFC 7638 thumbprint of the principal's key. */
  readonly jwk: JWK;
  readonly kid: string;
  readonly dir: string;
  readonly keyPath: string;
  readonly certPath: string;
  readonly caPath: string;
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
  readonly privateKey: KeyObject;
  readonly notAfter: Date;
}

/** A CA in a temporary directory and what it issues. */
export interface TestPki {
  readonly domain: string;
  readonly alg: KeyAlgName;
  /** Root directory of this PKI (removed by {@link TestPki.cleanup}). */
  readonly dir: string;
  /** The CA directory (usable with `fedlab certs ... --ca`). */
  readonly caDir: string;
  readonly caCertPath: string;
  readonly caKeyPath: string;
  readonly caPem: string;
  readonly caKeyPem: string;
  /** Issues a certificate for `urn` (which must be in this domain) into its own directory. */
  issue(urn: string, options?: TestIssueOptions): Promise<TestIdentity>;
  /** Issues a server certificate valid for localhost, 127.0.0.1 and ::1 (plus any names given). */
  issueServer(urn: string, options?: TestIssueOptions): Promise<TestIdentity>;
  /** Writes the domain's next trust bundle (into `<dir>/bundle.json` by default). */
  bundle(options?: {
    readonly file?: string;
    readonly authorityPems?: readonly string[];
    readonly revocationVersion?: number;
  }): Promise<BuiltBundle & { readonly file: string }>;
  /** Removes the whole directory. */
  cleanup(): Promise<void>;
}

/** Makes a CA for `options.domain` in a temporary directory, ready to issue. */
export async function createTestPki(options: TestPkiOptions = {}): Promise<TestPki> {
  const domain = options.domain ?? 'plc.test';
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), `fedlab-pki-${domain}-`)));
  const caDir = join(dir, 'ca');
  const ca = await initCa({ domain, outDir: caDir, alg: options.alg ?? 'p256', days: options.days, now: options.now });
  const caKeyPem = await readFile(ca.paths.key, 'utf8');

  async function freshDir(urn: string): Promise<string> {
    const { kind, name } = parseUrn(urn);
    const base = join(dir, 'ids', `${kind}.${name}`);
    let candidate = base;
    for (let n = 2; await exists(candidate); n += 1) candidate = `${base}-${n}`;
    return candidate;
  }

  async function issue(urn: string, o: TestIssueOptions = {}): Promise<TestIdentity> {
    const r = await issueCertificate({
      caDir,
      urn,
      outDir: await freshDir(urn),
      dns: o.dns,
      ip: o.ip,
      alg: o.privateKey ? undefined : o.alg,
      privateKey: o.privateKey,
      days: o.days,
      now: o.now,
    });
    const pub = await describePublicKey(r.privateKey);
    return {
      urn,
      alg: r.alg,
      serial: r.serial,
      jwk: pub.jwk,
      kid: pub.thumbprint,
      dir: r.dir,
      keyPath: r.paths.key,
      certPath: r.paths.cert,
      caPath: r.paths.ca,
      keyPem: privateKeyToPem(r.privateKey),
      certPem: r.certPem,
      caPem: r.caPem,
      privateKey: r.privateKey,
      notAfter: r.notAfter,
    };
  }

  return {
    domain,
    alg: ca.alg,
    dir,
    caDir,
    caCertPath: ca.paths.cert,
    caKeyPath: ca.paths.key,
    caPem: ca.certPem,
    caKeyPem,
    issue,
    issueServer: (urn, o = {}) => issue(urn, { ...o, dns: ['localhost', ...(o.dns ?? [])], ip: ['127.0.0.1', '::1', ...(o.ip ?? [])] }),
    bundle: (o = {}) =>
      writeBundle({
        caDir,
        outFile: o.file ?? join(dir, 'bundle.json'),
        authorityPems: o.authorityPems,
        revocationVersion: o.revocationVersion,
      }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
