/**
 * An authority's signing key: the key of its own TLS certificate, which must
 * name the authority. Every role that signs (MA, SA, SP) reads it this way at
 * start, so a misconfigured key or certificate stops start-up with one message.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { thumbprintOf, toPublicJwk, type PublicJwk } from '../credentials/keys.js';
import { InvalidArgumentError } from '../errors.js';
import type { TlsMaterial } from '../rpc/server.js';
import { identityFromCertificate, parseCertificate, type CertIdentity } from './certificate.js';
import { parsePrivateKeyPem } from './keys.js';

/** The key, its public JWK and the JWK's RFC 7638 thumbprint, with the certificate's identity. */
export interface SigningKey {
  readonly key: KeyObject;
  readonly jwk: PublicJwk;
  readonly kid: string;
  readonly self: CertIdentity;
}

/**
 * Reads `urn`'s key from its TLS material; INVALID_ARGUMENT when the certificate names another URN
 * or holds another key. `what` names the role in messages (e.g. `this slice authority`).
 */
export async function signingKeyOf(tls: Pick<TlsMaterial, 'cert' | 'key'>, urn: string, what: string): Promise<SigningKey> {
  const key = parsePrivateKeyPem(tls.key, 'tls.key');
  const self = await identityFromCertificate(parseCertificate(tls.cert, 'tls.cert'));
  if (self.urn !== urn) throw new InvalidArgumentError(`tls.cert names ${self.urn}, but ${what} is ${urn}`);
  if (!createPublicKey(key).equals(self.certificate.publicKey)) throw new InvalidArgumentError('tls.key is not the key of tls.cert');
  const jwk = toPublicJwk(key);
  return { key, jwk, kid: thumbprintOf(jwk), self };
}
