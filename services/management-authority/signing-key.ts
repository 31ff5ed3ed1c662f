/** The management authority's signing key: the key of its TLS certificate, which must name the MA. */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { thumbprintOf, toPublicJwk, type PublicJwk } from '../core/credentials/index.js';
import { InvalidArgumentError } from '../core/errors.js';
import { identityFromCertificate, parseCertificate } from '../core/identity/certificate.js';
import { parsePrivateKeyPem } from '../core/identity/keys.js';
import type { TlsMaterial } from '../core/rpc/server.js';

/** The MA's key, its public JWK and the JWK's RFC 7638 thumbprint. */
export interface MaSigningKey {
  readonly key: KeyObject;
  readonly jwk: PublicJwk;
  readonly kid: string;
}

/** Reads the MA's key from its TLS material; INVALID_ARGUMENT when the certificate names another URN or holds another key. */
export async function maSigningKey(tls: TlsMaterial, maUrn: string): Promise<MaSigningKey> {
  const key = parsePrivateKeyPem(tls.key, 'tls.key');
  const self = await identityFromCertificate(parseCertificate(tls.cert, 'tls.cert'));
  if (self.urn !== maUrn) throw new InvalidArgumentError(`tls.cert names ${self.urn}, but this MA is ${maUrn}`);
  if (!createPublicKey(key).equals(self.certificate.publicKey)) throw new InvalidArgumentError('tls.key is not the key of tls.cert');
  const jwk = toPublicJwk(key);
  return { key, jwk, kid: thumbprintOf(jwk) };
}
