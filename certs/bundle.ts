/**
 * Building a domain's trust bundle (docs/design.md §4) from its CA directory: the CA
 * certificate, the public keys of the domain's authorities (every unexpired
 * `authority` certificate the CA recorded, plus certificates named
 * explicitly), and the revocation list's version. The bundle file holds
 * exactly the canonical JSON, so `sha256sum FILE` equals its fingerprint.
 */
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FedlabError, InvalidArgumentError } from '../services/core/errors.js';
import { identityFromCertificate, parseCertificate, splitPemCertificates } from '../services/core/identity/certificate.js';
import {
  bundleFingerprint,
  parseTrustBundle,
  serializeTrustBundle,
  type BundleAuthority,
  type TrustBundle,
} from '../services/core/identity/trust-bundle.js';
import { CA_FILES, loadCa, readCaState, stageState, type LoadedCa } from './ca.js';
import { normalizeSerial } from './names.js';
import { inTransaction, PUBLIC_MODE, withDirLock } from './files.js';

/** Where an authority in a bundle came from. */
export interface BundleAuthoritySource extends BundleAuthority {
  /** `ca.json` when recorded by the CA, else the file given. */
  readonly source: string;
  readonly serial: string;
}

/** Options of {@link buildBundle}. */
export interface BuildBundleOptions {
  /** The CA directory (made by `initCa`). */
  readonly caDir: string;
  /** More authority certificates (PEM or DER files); each must be issued by this CA, for this domain, and valid now. */
  readonly authorityFiles?: readonly string[];
  /** More authority certificates given as PEM text (library callers). */
  readonly authorityPems?: readonly string[];
  /** Bundle serial; the last bundle's serial + 1 by default (1 for the first). Must increase. */
  readonly serial?: number;
  /** Revocation list version; the last bundle's by default (0 for the first). Never goes back. */
  readonly revocationVersion?: number;
  readonly now?: Date;
}

/** A built bundle with its canonical bytes and fingerprint. */
export interface BuiltBundle {
  readonly bundle: TrustBundle;
  /** Canonical JSON (what is written and hashed). */
  readonly json: string;
  /** `sha256:<hex>` of `json`. */
  readonly fingerprint: string;
  readonly authorities: readonly BundleAuthoritySource[];
}

/** Options of {@link writeBundle}. */
export interface WriteBundleOptions extends BuildBundleOptions {
  /** The bundle file to write (replaced atomically). */
  readonly outFile: string;
}

function badAuthority(source: string, why: string): never {
  throw new InvalidArgumentError(`authority ${source}: ${why}`, { rule: 'authority' });
}

/** Checks one authority certificate against the CA and returns its bundle entry. */
async function authorityFrom(ca: LoadedCa, cert: X509Certificate, source: string, now: Date): Promise<BundleAuthoritySource> {
  if (cert.ca) badAuthority(source, "is a CA certificate, not a principal's");
  // Both checks: issuer name and a signature by this CA's key (a same-named foreign CA fails the second).
  if (!cert.checkIssued(ca.cert) || !cert.verify(ca.cert.publicKey))
    badAuthority(source, `is not issued by the CA of ${ca.domain} in ${ca.dir}`);
  if (now.getTime() >= Date.parse(cert.validTo)) badAuthority(source, `expired on ${new Date(cert.validTo).toISOString()}`);
  if (now.getTime() < Date.parse(cert.validFrom)) badAuthority(source, `is not valid before ${new Date(cert.validFrom).toISOString()}`);
  let id;
  try {
    id = await identityFromCertificate(cert);
  } catch (err) {
    badAuthority(source, err instanceof FedlabError ? err.message : 'has an unreadable key or URN');
  }
  if (id.parsedUrn.domain !== ca.domain) badAuthority(source, `${id.urn} is not in the domain ${ca.domain}`);
  return { urn: id.urn, jwk: id.jwk, kid: id.thumbprint, source, serial: normalizeSerial(cert.serialNumber) };
}

async function readCertFile(file: string): Promise<X509Certificate> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    throw new InvalidArgumentError(`--authority ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const text = data.toString('utf8');
  if (text.includes('-----BEGIN') && splitPemCertificates(text).length !== 1) {
    throw new InvalidArgumentError(`--authority ${file} must hold exactly one certificate`);
  }
  return parseCertificate(data, `--authority ${file}`);
}

/** Builds the next trust bundle of the CA in `caDir`, without writing anything. */
export async function buildBundle(options: BuildBundleOptions): Promise<BuiltBundle> {
  return buildFrom(await loadCa(options.caDir), options);
}

async function buildFrom(ca: LoadedCa, options: BuildBundleOptions): Promise<BuiltBundle> {
  const now = options.now ?? new Date();
  const last = ca.state.bundle;
  const serial = options.serial ?? (last ? last.serial + 1 : 1);
  if (!Number.isSafeInteger(serial) || serial < 0)
    throw new InvalidArgumentError(`--serial must be a non-negative whole number, got ${String(serial)}`);
  if (last && serial <= last.serial) {
    throw new InvalidArgumentError(
      `--serial ${serial} does not increase: the last bundle of ${ca.domain} had serial ${last.serial}; peers would not take it as newer`,
      {
        rule: 'serial',
      },
    );
  }
  const revocationVersion = options.revocationVersion ?? last?.revocation_version ?? 0;
  if (!Number.isSafeInteger(revocationVersion) || revocationVersion < 0) {
    throw new InvalidArgumentError(`--revocation-version must be a non-negative whole number, got ${String(revocationVersion)}`);
  }
  if (last && revocationVersion < last.revocation_version) {
    throw new InvalidArgumentError(
      `--revocation-version ${revocationVersion} is older than the last bundle's ${last.revocation_version}; it never goes back`,
      {
        rule: 'revocation_version',
      },
    );
  }

  const found: BundleAuthoritySource[] = [];
  for (const r of ca.state.issued) {
    // An expired authority certificate no longer vouches for its key.
    if (r.kind !== 'authority' || Date.parse(r.not_after) <= now.getTime()) continue;
    let pem: string;
    try {
      pem = await readFile(join(ca.dir, r.file), 'utf8');
    } catch {
      throw new InvalidArgumentError(
        `${join(ca.dir, r.file)} (issued to ${r.urn}) is missing; restore it or pass the certificate with --authority`,
      );
    }
    const entry = await authorityFrom(ca, parseCertificate(pem, r.file), `${r.file} (ca.json)`, now);
    if (entry.urn !== r.urn || entry.kid !== r.kid)
      throw new InvalidArgumentError(`${r.file} does not match its record in ca.json (${r.urn})`);
    found.push(entry);
  }
  for (const file of options.authorityFiles ?? []) found.push(await authorityFrom(ca, await readCertFile(file), file, now));
  for (const [i, pem] of (options.authorityPems ?? []).entries()) {
    found.push(await authorityFrom(ca, parseCertificate(pem, `authority certificate ${i}`), `authority certificate ${i}`, now));
  }

  // One entry per key: a renewed certificate for the same key adds nothing, but one key under two URNs is an error.
  const byKid = new Map<string, BundleAuthoritySource>();
  for (const a of found) {
    const seen = byKid.get(a.kid);
    if (seen && seen.urn !== a.urn) {
      throw new InvalidArgumentError(
        `one key (${a.kid}) is certified for both ${seen.urn} and ${a.urn}; an authority key belongs to one authority`,
      );
    }
    if (!seen) byKid.set(a.kid, a);
  }
  const authorities = [...byKid.values()].sort((a, b) => (a.urn === b.urn ? (a.kid < b.kid ? -1 : 1) : a.urn < b.urn ? -1 : 1));

  // Round-trip through the strict parser, so that a bundle this tool writes is always one every site reads.
  const bundle = await parseTrustBundle({
    v: 1,
    domain: ca.domain,
    serial,
    issued_at: now.toISOString(),
    ca_certs: [ca.certPem],
    authorities: authorities.map((a) => ({ urn: a.urn, jwk: a.jwk, kid: a.kid })),
    revocation_version: revocationVersion,
  });
  return { bundle, json: serializeTrustBundle(bundle), fingerprint: bundleFingerprint(bundle), authorities };
}

/**
 * Builds the next trust bundle, writes it to `outFile` (canonical JSON) and
 * records its serial, revocation version and fingerprint in the CA's ca.json, all or nothing.
 */
export async function writeBundle(options: WriteBundleOptions): Promise<BuiltBundle & { readonly file: string }> {
  const file = resolve(options.outFile);
  // Fail on a directory that is no CA before creating a lock file in it.
  await readCaState(options.caDir);
  return withDirLock(options.caDir, async () => {
    const ca = await loadCa(options.caDir);
    if (Object.values(CA_FILES).some((f) => join(ca.dir, f) === file))
      throw new InvalidArgumentError(`--out ${options.outFile} would replace one of the CA's own files`);
    const built = await buildFrom(ca, options);
    await inTransaction(async (tx) => {
      await tx.ensureDir(dirname(file), 0o755);
      await tx.stage(file, built.json, PUBLIC_MODE);
      await stageState(tx, ca.dir, {
        ...ca.state,
        bundle: {
          serial: built.bundle.serial,
          revocation_version: built.bundle.revocation_version,
          issued_at: built.bundle.issued_at,
          fingerprint: built.fingerprint,
        },
      });
    });
    return { ...built, file };
  });
}
