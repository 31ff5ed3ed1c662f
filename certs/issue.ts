/**
 * Issuing principals' certificates (docs/design.md §4): a leaf certificate signed by
 * the domain CA, naming the principal by its URN as the one `urn:fedlab` URI
 * subjectAltName, usable for both TLS server and client authentication, and
 * holding the same key the principal signs its credentials with.
 *
 * An issuance directory holds `key.pem` (0600), `cert.pem` and `ca.pem` (a
 * copy of the CA certificate); the CA records the issuance in its `ca.json`
 * and keeps the certificate as `issued/<serial>.pem`.
 */
import 'reflect-metadata';
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../services/core/errors.js';
import {
  describePublicKey,
  generateKeyPair,
  parsePrivateKeyPem,
  privateKeyToPem,
  type KeyAlgName,
} from '../services/core/identity/keys.js';
import { parseUrn, type Urn } from '../services/core/identity/urn.js';
import { CA_FILES, evenHex, loadCa, readCaState, stageState, type CaMaterial, type IssuedRecord } from './ca.js';
import { exists, inTransaction, PRIVATE_MODE, PUBLIC_MODE, withDirLock } from './files.js';
import { checkOutputFile } from './output-file.js';
import { addDays, BACKDATE_MS, checkAlg, checkDays, checkDnsNames, checkIpAddresses, normalizeSerial, randomSerial } from './names.js';
import { algNameForKey, signingAlgorithm, toCryptoKeyPair, toCryptoPublicKey, x509 } from './x509-provider.js';

/** Default leaf validity: one year (never past the CA's own notAfter). */
export const DEFAULT_LEAF_DAYS = 365;

/** File names inside an issuance directory. */
export const ISSUED_FILES = { key: 'key.pem', cert: 'cert.pem', ca: 'ca.pem' } as const;

/** What to put into a leaf certificate. */
export interface LeafRequest {
  /** The principal's URN; its domain must be the CA's. */
  readonly urn: string;
  /** The principal's public (or private) key. */
  readonly publicKey: KeyObject;
  readonly dns?: readonly string[];
  readonly ip?: readonly string[];
  /** Validity in days; {@link DEFAULT_LEAF_DAYS} by default; cut to the CA's notAfter. */
  readonly days?: number;
  readonly now?: Date;
  /** Serial number (hex); random 128-bit by default. */
  readonly serial?: string;
}

/** A signed leaf certificate. */
export interface SignedLeaf {
  readonly certPem: string;
  readonly cert: X509Certificate;
  readonly urn: Urn;
  /** Lower-case hex without leading zeros. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** True when the validity asked for was cut to end with the CA's. */
  readonly clipped: boolean;
}

/**
 * Signs a leaf certificate for `req.urn` with the CA's key (in memory, no
 * files). Throws InvalidArgumentError for a malformed URN, a URN of another
 * domain or bad SANs, FailedPreconditionError when the CA is expired or not yet valid.
 */
export async function signLeafCertificate(ca: CaMaterial, req: LeafRequest): Promise<SignedLeaf> {
  const urn = parseUrn(req.urn);
  if (urn.domain !== ca.domain) {
    throw new InvalidArgumentError(
      `${req.urn} is in domain ${urn.domain}, but this CA is for ${ca.domain}; a CA only certifies its own domain's principals`,
      {
        rule: 'domain',
      },
    );
  }
  const dns = checkDnsNames(req.dns);
  const ip = checkIpAddresses(req.ip);
  const days = checkDays(req.days ?? DEFAULT_LEAF_DAYS);
  const now = req.now ?? new Date();
  const caFrom = new Date(ca.cert.validFrom);
  const caTo = new Date(ca.cert.validTo);
  if (now.getTime() >= caTo.getTime()) {
    throw new FailedPreconditionError(`the CA of ${ca.domain} expired on ${caTo.toISOString()}; make a new CA and reissue`);
  }
  if (now.getTime() < caFrom.getTime())
    throw new FailedPreconditionError(`the CA of ${ca.domain} is not valid before ${caFrom.toISOString()}`);
  const wanted = addDays(now, days);
  const clipped = wanted.getTime() > caTo.getTime();
  // Whole seconds, as X.509 stores them, so that what is returned and recorded is what the certificate says.
  const notAfter = wholeSeconds(clipped ? caTo : wanted);
  // Backdate a little for clock skew, but never before the CA itself is valid.
  const notBefore = wholeSeconds(new Date(Math.max(now.getTime() - BACKDATE_MS, caFrom.getTime())));
  const publicKey = req.publicKey.type === 'private' ? createPublicKey(req.publicKey) : req.publicKey;
  algNameForKey(publicKey);
  const caX509 = new x509.X509Certificate(ca.certPem);
  const caSki = caX509.getExtension(x509.SubjectKeyIdentifierExtension);
  const caKeys = await toCryptoKeyPair(ca.privateKey);
  const subjectKey = await toCryptoPublicKey(publicKey);
  const serial = normalizeSerial(req.serial ?? randomSerial());
  const sans: { type: 'url' | 'dns' | 'ip'; value: string }[] = [
    { type: 'url', value: req.urn },
    ...dns.map((value) => ({ type: 'dns' as const, value })),
    ...ip.map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: evenHex(serial),
    subject: [{ CN: [urn.name] }],
    issuer: caX509.subjectName,
    notBefore,
    notAfter,
    publicKey: subjectKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: signingAlgorithm(ca.alg),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // Signing only: TLS 1.3 and ECDHE suites never use a certified key for key agreement.
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      await x509.SubjectKeyIdentifierExtension.create(subjectKey),
      // Point at the CA's own key identifier so that chains build even for a CA not made by this tooling.
      caSki ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId) : await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
      new x509.SubjectAlternativeNameExtension(sans),
    ],
  });
  const certPem = `${cert.toString('pem').trimEnd()}\n`;
  return { certPem, cert: new X509Certificate(certPem), urn, serial, notBefore, notAfter, clipped };
}

function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** Options of {@link issueCertificate}. */
export interface IssueOptions {
  /** The CA directory (made by {@link initCa}). */
  readonly caDir: string;
  readonly urn: string;
  /** Where to write key.pem, cert.pem and ca.pem; created if missing. */
  readonly outDir: string;
  readonly dns?: readonly string[];
  readonly ip?: readonly string[];
  readonly days?: number;
  /** Algorithm of a generated key; p256 by default. With `keyFile` or `privateKey`, it must match the key. */
  readonly alg?: KeyAlgName;
  /** An existing PEM private key to certify instead of generating one. */
  readonly keyFile?: string;
  /** An existing private key to certify (library callers). */
  readonly privateKey?: KeyObject;
  /** Overwrite an existing key.pem in `outDir`. */
  readonly force?: boolean;
  readonly now?: Date;
}

/** What {@link issueCertificate} wrote. */
export interface IssueResult {
  readonly urn: string;
  readonly serial: string;
  readonly alg: KeyAlgName;
  /** RFC 7638 thumbprint of the certified key. */
  readonly kid: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly clipped: boolean;
  readonly dir: string;
  readonly paths: { readonly key: string; readonly cert: string; readonly ca: string; readonly issued: string };
  readonly certPem: string;
  readonly caPem: string;
  /** The certified key (never printed; callers that need PEM export it). */
  readonly privateKey: KeyObject;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    return (await realpath(a)) === (await realpath(b));
  } catch {
    return false;
  }
}

async function readKeyFile(file: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`--key ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parsePrivateKeyPem(pem, `--key ${file}`);
}

/**
 * Issues a certificate for `urn` from the CA in `caDir` into `outDir`
 * (key.pem 0600, cert.pem, ca.pem) and records it in the CA's ca.json and
 * issued/ directory, all or nothing. Refuses an existing key.pem unless `force`.
 */
export async function issueCertificate(options: IssueOptions): Promise<IssueResult> {
  parseUrn(options.urn);
  checkDnsNames(options.dns);
  checkIpAddresses(options.ip);
  if (options.days !== undefined) checkDays(options.days);
  const askedAlg = options.alg === undefined ? undefined : checkAlg(options.alg);
  const outDir = resolve(options.outDir);
  const keyPath = join(outDir, ISSUED_FILES.key);
  const reusesOutKey = options.keyFile !== undefined && (await sameFile(options.keyFile, keyPath));
  // A symbolic link at key.pem is refused even with --force, and called what it is.
  if (!reusesOutKey) checkOutputFile(keyPath, { replace: true });
  if (!options.force && !reusesOutKey && (await exists(keyPath))) {
    throw new InvalidArgumentError(`${keyPath} already exists; choose another --out, or pass --force to replace it`, { rule: 'exists' });
  }
  if (options.privateKey && options.privateKey.type !== 'private')
    throw new InvalidArgumentError('privateKey must be a private key (the key written to key.pem)');
  const privateKey =
    options.privateKey ??
    (options.keyFile !== undefined ? await readKeyFile(options.keyFile) : generateKeyPair(askedAlg ?? 'p256').privateKey);
  const alg = algNameForKey(privateKey);
  if (askedAlg !== undefined && askedAlg !== alg)
    throw new InvalidArgumentError(`--alg ${askedAlg} does not match the given key, which is ${alg}`);
  const key = await describePublicKey(privateKey);
  // Fail on a directory that is no CA before creating a lock file in it.
  await readCaState(options.caDir);

  return withDirLock(options.caDir, async () => {
    // Loaded under the lock, so the ca.json this issuance extends is the latest one.
    const ca = await loadCa(options.caDir);
    if (ca.dir === outDir) throw new InvalidArgumentError('--out must not be the CA directory');
    // Again under the lock: another issuance into the same directory may have finished meanwhile.
    if (!options.force && !reusesOutKey && (await exists(keyPath))) {
      throw new InvalidArgumentError(`${keyPath} already exists; choose another --out, or pass --force to replace it`, { rule: 'exists' });
    }
    const taken = new Set(ca.state.issued.map((r) => r.serial));
    taken.add(ca.state.serial);
    let serial = randomSerial();
    while (taken.has(serial)) serial = randomSerial();
    const leaf = await signLeafCertificate(ca, { ...options, publicKey: privateKey, serial });
    const issuedRel = `${CA_FILES.issuedDir}/${leaf.serial}.pem`;
    const record: IssuedRecord = {
      urn: options.urn,
      kind: leaf.urn.kind,
      serial: leaf.serial,
      alg,
      kid: key.thumbprint,
      issued_at: (options.now ?? new Date()).toISOString(),
      not_before: leaf.notBefore.toISOString(),
      not_after: leaf.notAfter.toISOString(),
      file: issuedRel,
    };
    const paths = {
      key: keyPath,
      cert: join(outDir, ISSUED_FILES.cert),
      ca: join(outDir, ISSUED_FILES.ca),
      issued: join(ca.dir, issuedRel),
    };
    await inTransaction(async (tx) => {
      await tx.ensureDir(outDir);
      // Without --force a key.pem made meanwhile is refused, not overwritten; with it, a new file (never the old one's mode).
      if (!reusesOutKey) await tx.stage(paths.key, privateKeyToPem(privateKey), PRIVATE_MODE, { exclusive: options.force !== true });
      await tx.stage(paths.cert, leaf.certPem, PUBLIC_MODE);
      await tx.stage(paths.ca, ca.certPem, PUBLIC_MODE);
      await tx.ensureDir(join(ca.dir, CA_FILES.issuedDir));
      await tx.stage(paths.issued, leaf.certPem, PUBLIC_MODE);
      // Last, so that ca.json never records a certificate whose files are not all in place.
      await stageState(tx, ca.dir, { ...ca.state, issued: [...ca.state.issued, record] });
    });
    return {
      urn: options.urn,
      serial: leaf.serial,
      alg,
      kid: key.thumbprint,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      clipped: leaf.clipped,
      dir: outDir,
      paths,
      certPem: leaf.certPem,
      caPem: ca.certPem,
      privateKey,
    };
  });
}
