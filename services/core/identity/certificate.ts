/**
 * Reading X.509 certificates: the principal's URN (its URI subjectAltName)
 * and its public key. Used on every call to identify the TLS peer, and by the
 * credential verifier to check the caller holds the leaf credential.
 */
import { X509Certificate } from 'node:crypto';
import { DerError, uriSansFromDer } from './der-san.js';
import { describePublicKey, type PublicKeyInfo } from './keys.js';
import { parseUrn, type Urn } from './urn.js';
import { FedlabError, InvalidArgumentError, UnauthenticatedError } from '../errors.js';

/** Who a certificate names and which key it holds. */
export interface CertIdentity extends PublicKeyInfo {
  /** The URN from the certificate's single `urn:fedlab:` URI SAN. */
  readonly urn: string;
  readonly parsedUrn: Urn;
  readonly certificate: X509Certificate;
  /** The certificate's validity period in ms since the epoch, read once (NaN when unreadable: every check then fails). */
  readonly validFromMs: number;
  readonly validToMs: number;
}

/**
 * Lists the URI subjectAltNames of a DER certificate, decoded from the
 * extension's ASN.1 (der-san.ts) — never by splitting Node's printed SAN text,
 * in which a DNS name holding `, URI:` would pass for a URI of its own.
 */
export function uriSansOfDer(der: Uint8Array): string[] {
  try {
    return uriSansFromDer(der);
  } catch (err) {
    if (err instanceof DerError) throw new UnauthenticatedError('the certificate could not be decoded');
    throw err;
  }
}

/** Lists the URI subjectAltNames of a certificate. */
export function uriSans(cert: X509Certificate): string[] {
  return uriSansOfDer(cert.raw);
}

/** The `urn:fedlab:` URIs among a certificate's subjectAltNames (a TLS peer certificate or any with `raw` DER). */
export function fedlabUrnsOf(cert: { readonly raw: Uint8Array }): string[] {
  return uriSansOfDer(cert.raw).filter((u) => u.startsWith('urn:fedlab:'));
}

/** Extracts the Fedlab identity of a certificate; throws if it has no (or more than one) Fedlab URN. */
export async function identityFromCertificate(cert: X509Certificate): Promise<CertIdentity> {
  const urns = uriSans(cert).filter((u) => u.startsWith('urn:fedlab:'));
  if (urns.length !== 1) {
    throw new UnauthenticatedError(
      urns.length === 0
        ? 'the certificate has no urn:fedlab URI subjectAltName; issue it with `fedlab certs issue --urn ...`'
        : 'the certificate has more than one urn:fedlab URI subjectAltName; a certificate names exactly one principal',
    );
  }
  const urn = urns[0] as string;
  let parsedUrn: Urn;
  try {
    parsedUrn = parseUrn(urn);
  } catch (err) {
    throw new UnauthenticatedError(`the certificate's URN is malformed: ${(err as Error).message}`);
  }
  const key = await describePublicKey(cert.publicKey);
  return { ...key, urn, parsedUrn, certificate: cert, validFromMs: Date.parse(cert.validFrom), validToMs: Date.parse(cert.validTo) };
}

/**
 * The identity of a certificate sent in a request field (a provider's, a member's, a slice
 * authority's): a certificate that does not parse, or whose key cannot be read, is the caller's
 * mistake — INVALID_ARGUMENT naming the field — never INTERNAL.
 */
export async function identityOfField(pem: string, field: string): Promise<CertIdentity> {
  const cert = parseCertificate(pem, field);
  try {
    return await identityFromCertificate(cert);
  } catch (err) {
    if (err instanceof FedlabError) throw err;
    throw new InvalidArgumentError(`${field}: its public key cannot be read (${(err as Error).message})`, { field });
  }
}

/** Parses one PEM or DER certificate. */
export function parseCertificate(data: string | Buffer, source = 'certificate'): X509Certificate {
  try {
    return new X509Certificate(data);
  } catch {
    throw new InvalidArgumentError(`${source} is not a PEM or DER X.509 certificate`);
  }
}

/** Splits a PEM file holding several certificates. */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((p) => `${p}\n`) ?? [];
}
