/**
 * Reading X.509 certificates: the principal's URN (its URI subjectAltName)
 * and its public key. Used on every call to identify the TLS peer, and by the
 * credential verifier to check the caller holds the leaf credential.
 */
import { X509Certificate } from 'node:crypto';
import { describePublicKey, type PublicKeyInfo } from './keys.js';
import { parseUrn, type Urn } from './urn.js';
import { InvalidArgumentError, UnauthenticatedError } from '../errors.js';

/** Who a certificate names and which key it holds. */
export interface CertIdentity extends PublicKeyInfo {
  /** The URN from the certificate's single `urn:fedlab:` URI SAN. */
  readonly urn: string;
  readonly parsedUrn: Urn;
  readonly certificate: X509Certificate;
}

/** Lists the URI subjectAltNames of a certificate. */
export function uriSans(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  // Node formats SANs as "URI:a, DNS:b"; URN characters never need quoting, so a split is exact for them.
  return san
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
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
  return { ...key, urn, parsedUrn, certificate: cert };
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
