/**
 * Describing certificates and trust bundles for people and scripts
 * (`fedlab certs inspect`). Reports hold public data only: a file holding a
 * private key is refused rather than described.
 */
import 'reflect-metadata';
import type { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../services/core/errors.js';
import { describePublicKey } from '../services/core/identity/keys.js';
import { parseCertificate, splitPemCertificates, uriSans } from '../services/core/identity/certificate.js';
import { bundleFingerprint, parseTrustBundle, serializeTrustBundle } from '../services/core/identity/trust-bundle.js';
import { isUrn } from '../services/core/identity/urn.js';
import { normalizeSerial } from './names.js';
import { x509 } from './x509-provider.js';

/** What `inspect` says about one certificate. */
export interface CertificateReport {
  readonly type: 'certificate';
  readonly subject: string;
  readonly issuer: string;
  /** The single `urn:fedlab` URI SAN, or null when there is none (or more than one). */
  readonly urn: string | null;
  /** Lower-case hex. */
  readonly serial: string;
  readonly not_before: string;
  readonly not_after: string;
  /** `ES256`, `EdDSA`, or the key type of a key Fedlab does not accept. */
  readonly key_alg: string;
  /** RFC 7638 thumbprint of the public key (null for key types Fedlab does not accept). */
  readonly key_thumbprint: string | null;
  /** subjectAltNames as `URI:...`, `DNS:...`, `IP:...`. */
  readonly sans: readonly string[];
  readonly ca: boolean;
  /** SHA-256 of the DER, colon-separated upper-case hex (as `openssl x509 -fingerprint -sha256` prints it). */
  readonly fingerprint_sha256: string;
}

/** What `inspect` says about a trust bundle. */
export interface BundleReport {
  readonly type: 'bundle';
  readonly domain: string;
  readonly serial: number;
  readonly issued_at: string;
  /** `sha256:<hex>` over the canonical JSON: the value peers pin. */
  readonly fingerprint: string;
  /** True when the file's bytes are exactly the canonical JSON. */
  readonly canonical: boolean;
  readonly ca_subjects: readonly string[];
  readonly authorities: readonly { readonly urn: string; readonly kid: string }[];
  readonly revocation_version: number;
}

/** What `inspect` says about a file: a bundle, or the certificates it holds. */
export type InspectReport = BundleReport | { readonly type: 'certificates'; readonly certificates: readonly CertificateReport[] };

const SAN_PREFIX: Record<string, string> = {
  url: 'URI',
  dns: 'DNS',
  ip: 'IP',
  email: 'email',
  dn: 'DirName',
  guid: 'GUID',
  upn: 'UPN',
  id: 'RID',
};

/** Describes one certificate. */
export async function inspectCertificate(cert: X509Certificate): Promise<CertificateReport> {
  const parsed = new x509.X509Certificate(cert.raw);
  const sanExt = parsed.getExtension(x509.SubjectAlternativeNameExtension);
  const sans = (sanExt?.names.toJSON() ?? []).map((n) => `${SAN_PREFIX[n.type] ?? n.type}:${n.value}`);
  const urns = uriSans(cert).filter((u) => u.startsWith('urn:fedlab:'));
  const only = urns.length === 1 ? urns[0] : undefined;
  const urn = only !== undefined && isUrn(only) ? only : null;
  let keyAlg: string;
  let thumbprint: string | null = null;
  try {
    const info = await describePublicKey(cert.publicKey);
    keyAlg = info.alg;
    thumbprint = info.thumbprint;
  } catch {
    keyAlg = String(cert.publicKey.asymmetricKeyType ?? 'unknown');
  }
  return {
    type: 'certificate',
    subject: parsed.subject,
    issuer: parsed.issuer,
    urn,
    serial: normalizeSerial(cert.serialNumber),
    not_before: new Date(cert.validFrom).toISOString(),
    not_after: new Date(cert.validTo).toISOString(),
    key_alg: keyAlg,
    key_thumbprint: thumbprint,
    sans,
    ca: cert.ca,
    fingerprint_sha256: cert.fingerprint256,
  };
}

/** Describes a trust bundle given as JSON text (strictly parsed). */
export async function inspectBundle(text: string): Promise<BundleReport> {
  const bundle = await parseTrustBundle(text);
  return {
    type: 'bundle',
    domain: bundle.domain,
    serial: bundle.serial,
    issued_at: bundle.issued_at,
    fingerprint: bundleFingerprint(bundle),
    canonical: text === serializeTrustBundle(bundle),
    ca_subjects: bundle.ca_certs.map((pem) => new x509.X509Certificate(pem).subject),
    authorities: bundle.authorities.map((a) => ({ urn: a.urn, kid: a.kid })),
    revocation_version: bundle.revocation_version,
  };
}

/**
 * Describes a file: a trust bundle (JSON) or one or more certificates (PEM
 * or DER). Throws InvalidArgumentError for an unreadable file, anything else,
 * and for a file holding a private key.
 */
export async function inspectFile(path: string): Promise<InspectReport> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const text = data.toString('utf8');
  if (text.trimStart().startsWith('{')) return inspectBundle(text);
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new InvalidArgumentError(`${path} holds a private key; inspect describes certificates and trust bundles, and never prints keys`);
  }
  const pems = splitPemCertificates(text);
  const certs =
    pems.length > 0 ? pems.map((p, i) => parseCertificate(p, `${path} (certificate ${i + 1})`)) : [parseCertificate(data, path)];
  const certificates: CertificateReport[] = [];
  for (const c of certs) certificates.push(await inspectCertificate(c));
  return { type: 'certificates', certificates };
}
