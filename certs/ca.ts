/**
 * A domain's certificate authority (docs/design.md §4): a self-signed CA certificate,
 * its private key, and a record (`ca.json`) of what it issued and which trust
 * bundle serial it last published. Layout of a CA directory:
 *
 * ```
 * DIR/ca.key             PKCS#8 PEM, mode 0600
 * DIR/ca.pem             the CA certificate
 * DIR/ca.json            CaState: domain, alg, created, issued certificates, last bundle
 * DIR/issued/<serial>.pem  every certificate issued (for bundles and audits)
 * ```
 */
import 'reflect-metadata';
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { InvalidArgumentError } from '../services/core/errors.js';
import { generateKeyPair, parsePrivateKeyPem, privateKeyToPem, type KeyAlgName } from '../services/core/identity/keys.js';
import { isValidDomain, URN_KINDS } from '../services/core/identity/urn.js';
import { parseCertificate } from '../services/core/identity/certificate.js';
import { DIR_MODE, exists, inTransaction, PRIVATE_MODE, PUBLIC_MODE, type FileTransaction } from './files.js';
import { addDays, BACKDATE_MS, checkAlg, checkDays, normalizeSerial, randomSerial } from './names.js';
import { algNameForKey, signingAlgorithm, toCryptoKeyPair, x509 } from './x509-provider.js';

/** Default CA validity: 10 years. */
export const DEFAULT_CA_DAYS = 3650;

/** File names inside a CA directory. */
export const CA_FILES = { key: 'ca.key', cert: 'ca.pem', state: 'ca.json', issuedDir: 'issued' } as const;

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an RFC 3339 time');
const hexSerial = z.string().regex(/^[0-9a-f]+$/, 'must be lower-case hex');

const issuedRecordSchema = z.strictObject({
  urn: z.string(),
  kind: z.enum(URN_KINDS),
  serial: hexSerial,
  alg: z.enum(['p256', 'ed25519']),
  /** RFC 7638 thumbprint of the certified key. */
  kid: z.string(),
  issued_at: isoTime,
  not_before: isoTime,
  not_after: isoTime,
  /** Path of the issued certificate, relative to the CA directory. */
  file: z.string().regex(/^issued\/[0-9a-f]+\.pem$/),
});

const caStateSchema = z.strictObject({
  v: z.literal(1),
  domain: z.string().refine(isValidDomain, 'must be a lower-case DNS name'),
  alg: z.enum(['p256', 'ed25519']),
  created: isoTime,
  serial: hexSerial,
  not_after: isoTime,
  issued: z.array(issuedRecordSchema),
  /** The last trust bundle made from this CA, or null before the first. */
  bundle: z
    .strictObject({
      serial: z.number().int().nonnegative(),
      revocation_version: z.number().int().nonnegative(),
      issued_at: isoTime,
      fingerprint: z.string(),
    })
    .nullable(),
});

/** One certificate a CA issued, as recorded in `ca.json`. */
export type IssuedRecord = z.infer<typeof issuedRecordSchema>;
/** The contents of `ca.json`. */
export type CaState = z.infer<typeof caStateSchema>;

/** A CA in memory: what signing needs. */
export interface CaMaterial {
  readonly domain: string;
  readonly alg: KeyAlgName;
  readonly certPem: string;
  readonly cert: X509Certificate;
  readonly privateKey: KeyObject;
}

/** A CA loaded from its directory. */
export interface LoadedCa extends CaMaterial {
  readonly dir: string;
  readonly state: CaState;
}

/** Options of {@link createCaMaterial}. */
export interface CreateCaOptions {
  readonly domain: string;
  readonly alg?: KeyAlgName;
  /** Validity in days from `now`; {@link DEFAULT_CA_DAYS} by default. */
  readonly days?: number;
  readonly now?: Date;
  /** Use this key instead of generating one. */
  readonly privateKey?: KeyObject;
}

/** Options of {@link initCa}. */
export interface InitCaOptions extends CreateCaOptions {
  /** The CA directory to create (or an existing directory without a CA in it). */
  readonly outDir: string;
}

/** What {@link initCa} made. */
export interface InitCaResult {
  readonly dir: string;
  readonly domain: string;
  readonly alg: KeyAlgName;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly certPem: string;
  readonly paths: { readonly key: string; readonly cert: string; readonly state: string };
}

/** Subject common name of a domain's CA. */
export function caCommonName(domain: string): string {
  return `Fedlab CA ${domain}`;
}

function checkDomain(domain: string): string {
  if (typeof domain !== 'string' || !isValidDomain(domain)) {
    throw new InvalidArgumentError(`--domain ${JSON.stringify(String(domain).slice(0, 80))} is not a lower-case DNS name (e.g. plc.test)`, {
      rule: 'domain',
    });
  }
  return domain;
}

/** Makes a self-signed CA certificate and key in memory (no files). */
export async function createCaMaterial(options: CreateCaOptions): Promise<CaMaterial> {
  const domain = checkDomain(options.domain);
  const now = options.now ?? new Date();
  const days = checkDays(options.days ?? DEFAULT_CA_DAYS);
  const privateKey = options.privateKey ?? generateKeyPair(checkAlg(options.alg)).privateKey;
  const alg = algNameForKey(privateKey);
  if (options.alg !== undefined && options.alg !== alg) throw new InvalidArgumentError(`the given key is ${alg}, not ${options.alg}`);
  const keys = await toCryptoKeyPair(privateKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: evenHex(randomSerial()),
    name: [{ CN: [caCommonName(domain)] }],
    // Whole seconds, as X.509 stores them; backdated a little for clock skew.
    notBefore: new Date(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000),
    notAfter: new Date(Math.floor(addDays(now, days).getTime() / 1000) * 1000),
    keys,
    signingAlgorithm: signingAlgorithm(alg),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = cert.toString('pem');
  return { domain, alg, certPem: `${certPem.trimEnd()}\n`, cert: new X509Certificate(certPem), privateKey };
}

/** Hex with an even number of digits, as the DER encoder reads it. */
export function evenHex(hex: string): string {
  return hex.length % 2 === 1 ? `0${hex}` : hex;
}

/** True when `dir` already holds any of a CA's files. */
export async function holdsCa(dir: string): Promise<boolean> {
  for (const f of [CA_FILES.key, CA_FILES.cert, CA_FILES.state]) if (await exists(join(dir, f))) return true;
  return false;
}

/**
 * Creates a domain CA in `outDir`: `ca.key` (0600), `ca.pem`, `ca.json`.
 * Refuses (InvalidArgumentError, nothing written) when the directory already
 * holds a CA, the domain is not a lower-case DNS name, or the algorithm is unknown.
 */
export async function initCa(options: InitCaOptions): Promise<InitCaResult> {
  checkDomain(options.domain);
  checkAlg(options.alg);
  if (options.days !== undefined) checkDays(options.days);
  const dir = resolve(options.outDir);
  if (await exists(dir)) {
    if (!(await stat(dir)).isDirectory()) throw new InvalidArgumentError(`--out ${options.outDir} exists and is not a directory`);
    if (await holdsCa(dir)) {
      throw new InvalidArgumentError(
        `--out ${options.outDir} already holds a CA; choose another directory (an existing CA is never overwritten)`,
        { rule: 'exists' },
      );
    }
  }
  const now = options.now ?? new Date();
  const ca = await createCaMaterial({ ...options, now });
  const serial = normalizeSerial(ca.cert.serialNumber);
  const notAfter = new Date(ca.cert.validTo);
  const state: CaState = {
    v: 1,
    domain: ca.domain,
    alg: ca.alg,
    created: now.toISOString(),
    serial,
    not_after: notAfter.toISOString(),
    issued: [],
    bundle: null,
  };
  const paths = { key: join(dir, CA_FILES.key), cert: join(dir, CA_FILES.cert), state: join(dir, CA_FILES.state) };
  await inTransaction(async (tx) => {
    await tx.ensureDir(dir, DIR_MODE);
    await tx.stage(paths.key, privateKeyToPem(ca.privateKey), PRIVATE_MODE, { exclusive: true });
    await tx.stage(paths.cert, ca.certPem, PUBLIC_MODE);
    await stageState(tx, dir, state);
  });
  return { dir, domain: ca.domain, alg: ca.alg, serial, notBefore: new Date(ca.cert.validFrom), notAfter, certPem: ca.certPem, paths };
}

/** Stages a new `ca.json` in a transaction. */
export async function stageState(tx: FileTransaction, dir: string, state: CaState): Promise<void> {
  await tx.stage(join(dir, CA_FILES.state), `${JSON.stringify(caStateSchema.parse(state), null, 2)}\n`, PUBLIC_MODE);
}

function notACa(dir: string, why: string): never {
  throw new InvalidArgumentError(`--ca ${dir} is not a usable Fedlab CA directory: ${why}; create one with \`fedlab certs init-ca\``, {
    rule: 'ca',
  });
}

async function readIn(dir: string, name: string): Promise<string> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    notACa(dir, code === 'ENOENT' ? `${name} is missing` : `cannot read ${name} (${code ?? 'error'})`);
  }
}

/** Reads only a CA directory's `ca.json` (strictly validated). */
export async function readCaState(dir: string): Promise<CaState> {
  const text = await readIn(dir, CA_FILES.state);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    notACa(dir, `${CA_FILES.state} is not JSON`);
  }
  const parsed = caStateSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    notACa(dir, `${CA_FILES.state} is invalid at ${issue?.path.join('.') || '(top)'}: ${issue?.message ?? 'unknown error'}`);
  }
  return parsed.data;
}

/**
 * Loads a CA directory: checks that `ca.json`, `ca.pem` and `ca.key` agree
 * (same domain and algorithm, the key is the certificate's, the certificate is a CA).
 */
export async function loadCa(caDir: string): Promise<LoadedCa> {
  const dir = resolve(caDir);
  const state = await readCaState(dir);
  const certPem = await readIn(dir, CA_FILES.cert);
  const cert = parseCertificate(certPem, `${caDir}/${CA_FILES.cert}`);
  if (!cert.ca) notACa(caDir, `${CA_FILES.cert} is not a CA certificate`);
  const privateKey = parsePrivateKeyPem(await readIn(dir, CA_FILES.key), `${caDir}/${CA_FILES.key}`);
  if (!createPublicKey(privateKey).equals(cert.publicKey)) notACa(caDir, `${CA_FILES.key} is not the key of ${CA_FILES.cert}`);
  const alg = algNameForKey(privateKey);
  if (alg !== state.alg) notACa(caDir, `${CA_FILES.state} says ${state.alg} but the key is ${alg}`);
  if (normalizeSerial(cert.serialNumber) !== state.serial)
    notACa(caDir, `${CA_FILES.cert} is not the certificate ${CA_FILES.state} records`);
  return { dir, domain: state.domain, alg, certPem, cert, privateKey, state };
}
