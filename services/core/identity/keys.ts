/**
 * Key pairs of principals. Every principal has one key pair (P-256 by default,
 * Ed25519 accepted) that both signs its credentials and authenticates its TLS
 * connections. Keys live in PEM files (PKCS#8 private, SPKI public) with mode 0600.
 */
import { createECDH, createPrivateKey, createPublicKey, hash, KeyObject, randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { isCanonicalBase64url } from '../credentials/base64url.js';
import { InvalidArgumentError } from '../errors.js';

/** Key algorithms Fedlab accepts, named as in JWS. */
export type KeyAlg = 'ES256' | 'EdDSA';

/** The user-facing names of key algorithms (`--alg`). */
export type KeyAlgName = 'p256' | 'ed25519';

/** A public key as Fedlab uses it: the JWK (only the public members), its JWS alg and RFC 7638 thumbprint. */
export interface PublicKeyInfo {
  readonly jwk: JWK;
  readonly alg: KeyAlg;
  readonly thumbprint: string;
}

/** PKCS#8 DER of an Ed25519 private key up to its 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Generates a new key pair of the given algorithm.
 *
 * Not with node:crypto's generateKeyPair(Sync): on Node 20 its key generation job shares the new key's
 * mutex, and when the garbage collector destroys the job while an export of that key (`export({ format:
 * 'jwk' })`, which describing a key does) holds the mutex and allocates, the destructor waits for the
 * mutex on the same thread and the process hangs for good. Seen in the unit suite; reproduced alone, a
 * loop of generations and later JWK exports hung 2 runs out of 3 within 15 s, and none with keys made
 * here. So the key's bytes come from OpenSSL by a path with no such job (ECDH for P-256, random bytes as
 * an Ed25519 seed) and are imported as a key object of their own.
 */
export function generateKeyPair(alg: KeyAlgName = 'p256'): { privateKey: KeyObject; publicKey: KeyObject } {
  let privateKey: KeyObject;
  if (alg === 'p256') {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    // The point uncompressed (0x04 || x || y); d left-padded to 32 bytes (OpenSSL drops leading zeros).
    const point = ecdh.getPublicKey();
    const d = Buffer.alloc(32);
    const raw = ecdh.getPrivateKey();
    raw.copy(d, 32 - raw.length);
    const jwk = {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33, 65).toString('base64url'),
      d: d.toString('base64url'),
    };
    privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  } else if (alg === 'ed25519') {
    privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, randomBytes(32)]), format: 'der', type: 'pkcs8' });
  } else {
    throw new InvalidArgumentError(`unknown key algorithm ${JSON.stringify(alg)}: use p256 or ed25519`);
  }
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The JWS alg for a key, or an error for key types Fedlab does not accept. */
export function algForKey(key: KeyObject): KeyAlg {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return 'ES256';
    throw new InvalidArgumentError(`EC keys must be on P-256, this one is on ${String(curve)}`);
  }
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  throw new InvalidArgumentError(`key type ${String(key.asymmetricKeyType)} is not accepted: use P-256 (ES256) or Ed25519`);
}

/**
 * 32 bytes in canonical base64url (43 characters, the spare bits zero): one spelling per key, so one key has one
 * thumbprint (Node would import other spellings as the same key).
 */
export function isCoordinate(v: unknown): v is string {
  return typeof v === 'string' && v.length === 43 && isCanonicalBase64url(v);
}

/** Reduces a JWK to its public members in a stable order (what `cnf.jwk` and bundles carry). */
export function publicJwkMembers(jwk: JWK): JWK {
  if (jwk.kty === 'EC') {
    if (jwk.crv !== 'P-256' || !isCoordinate(jwk.x) || !isCoordinate(jwk.y)) {
      throw new InvalidArgumentError('EC JWK must be P-256 with x and y, each canonical base64url of 32 bytes');
    }
    return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
  }
  if (jwk.kty === 'OKP') {
    if (jwk.crv !== 'Ed25519' || !isCoordinate(jwk.x)) {
      throw new InvalidArgumentError('OKP JWK must be Ed25519 with x, canonical base64url of 32 bytes');
    }
    return { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
  }
  throw new InvalidArgumentError(`JWK kty ${String(jwk.kty)} is not accepted: use EC P-256 or OKP Ed25519`);
}

/** Public JWK, alg and thumbprint of a public or private key. */
export async function describePublicKey(key: KeyObject): Promise<PublicKeyInfo> {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const alg = algForKey(pub);
  const jwk = publicJwkMembers(pub.export({ format: 'jwk' }) as JWK);
  return { jwk, alg, thumbprint: thumbprintOfMembers(jwk) };
}

/** RFC 7638 SHA-256 thumbprint (base64url) of a public JWK; throws if its members are not a public key's. */
export function jwkThumbprint(jwk: JWK): string {
  return thumbprintOfMembers(publicJwkMembers(jwk));
}

/**
 * RFC 7638 SHA-256 thumbprint (base64url) of a public JWK whose members {@link publicJwkMembers} checked: the
 * required members in lexicographic order, no white space, hashed synchronously (jose's goes through
 * WebCrypto's promise, ~0.1 ms a key, and a key is described on every new connection).
 */
export function thumbprintOfMembers(jwk: { readonly kty?: string; readonly x?: string; readonly y?: string }): string {
  const input =
    jwk.kty === 'EC' ? `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}` : `{"crv":"Ed25519","kty":"OKP","x":"${jwk.x}"}`;
  return hash('sha256', input, 'base64url');
}

/** Reads a PEM private key; errors never echo the key. */
export function parsePrivateKeyPem(pem: string | Buffer, source = 'key'): KeyObject {
  try {
    const key = createPrivateKey(pem);
    algForKey(key);
    return key;
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`${source}: ${err.message}`);
    throw new InvalidArgumentError(`${source} is not a PEM private key (PKCS#8 P-256 or Ed25519)`);
  }
}

/** Serialises a private key as PKCS#8 PEM. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Serialises a public key as SPKI PEM. */
export function publicKeyToPem(key: KeyObject): string {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'pem', type: 'spki' }).toString();
}
