/**
 * The key work of credentials, done with node:crypto directly so that the
 * verifier is strict and fast: strict public JWKs (exactly the public members),
 * RFC 7638 thumbprints computed synchronously, KeyObjects built once per key
 * and cached by the key's exact bytes, and signature checks that accept exactly one
 * encoding per algorithm (ES256: 64-byte IEEE P1363 r||s; EdDSA: Ed25519).
 */
import { createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { algForKey, isCoordinate, publicJwkMembers, thumbprintOfMembers, type KeyAlg } from '../identity/keys.js';
import { InvalidArgumentError } from '../errors.js';
import { publicKeys } from './key-cache.js';
import { transientLatin1 } from './scratch.js';

/** A public JWK exactly as credentials carry it (no other members). */
export type PublicJwk =
  | { readonly kty: 'EC'; readonly crv: 'P-256'; readonly x: string; readonly y: string }
  | { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string };

/** Why a value is not a strict public JWK, or undefined when it is one. */
export function publicJwkProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be a JWK object';
  const jwk = value as Record<string, unknown>;
  const keys = Object.keys(jwk);
  if (jwk.kty === 'EC') {
    if (keys.length !== 4 || !('crv' in jwk) || !('x' in jwk) || !('y' in jwk)) return 'an EC JWK must have exactly kty, crv, x and y';
    if (jwk.crv !== 'P-256') return 'an EC JWK must be on P-256';
    if (!isCoordinate(jwk.x) || !isCoordinate(jwk.y)) return 'x and y must be canonical base64url of 32 bytes';
    return undefined;
  }
  if (jwk.kty === 'OKP') {
    if (keys.length !== 3 || !('crv' in jwk) || !('x' in jwk)) return 'an OKP JWK must have exactly kty, crv and x';
    if (jwk.crv !== 'Ed25519') return 'an OKP JWK must be Ed25519';
    if (!isCoordinate(jwk.x)) return 'x must be canonical base64url of 32 bytes';
    return undefined;
  }
  return 'kty must be EC (P-256) or OKP (Ed25519)';
}

/** RFC 7638 SHA-256 thumbprint (base64url) of a strict public JWK, computed synchronously. */
export function thumbprintOf(jwk: PublicJwk): string {
  return thumbprintOfMembers(jwk);
}

/** The JWS alg a key of this JWK signs with. */
export function algOfJwk(jwk: PublicJwk): KeyAlg {
  return jwk.kty === 'EC' ? 'ES256' : 'EdDSA';
}

/** Public JWK of a public or private KeyObject, or of a JWK (reduced to its public members). */
export function toPublicJwk(key: KeyObject | Record<string, unknown>): PublicJwk {
  let jwk: Record<string, unknown>;
  if (isKeyObject(key)) {
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    algForKey(pub);
    jwk = pub.export({ format: 'jwk' }) as Record<string, unknown>;
  } else {
    jwk = key;
  }
  const reduced = publicJwkMembers(jwk as never) as Record<string, unknown>;
  const problem = publicJwkProblem(reduced);
  if (problem) throw new InvalidArgumentError(`not an accepted public key: ${problem}`);
  return reduced as unknown as PublicJwk;
}

function isKeyObject(v: unknown): v is KeyObject {
  return typeof v === 'object' && v !== null && typeof (v as KeyObject).export === 'function' && typeof (v as KeyObject).type === 'string';
}

/**
 * The public KeyObject of a strict JWK, imported once and cached by the key's exact bytes (key-cache.ts):
 * `_kid`, what a token claims the key to be, plays no part in the lookup. Throws when the JWK is not a
 * valid key (e.g. a point off the curve).
 */
export function keyObjectFor(jwk: PublicJwk, _kid?: string): KeyObject {
  return publicKeys.keyObject(jwk);
}

/** Why a signature's bytes are unacceptable before any curve arithmetic, or undefined. */
export function signatureShapeProblem(alg: KeyAlg, sig: Buffer): string | undefined {
  if (sig.length !== 64) {
    return alg === 'ES256'
      ? `an ES256 signature is 64 bytes (r||s, IEEE P1363), this one is ${sig.length}; DER-encoded signatures are not accepted`
      : `an EdDSA signature is 64 bytes, this one is ${sig.length}`;
  }
  if (alg === 'ES256' && (isZero(sig, 0, 32) || isZero(sig, 32, 64))) return 'r or s is zero';
  return undefined;
}

function isZero(b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

/** Verifies a JWS signature over `signingInput` (ASCII) with node:crypto; false for any bad signature. */
export function verifySignature(alg: KeyAlg, key: KeyObject, signingInput: string, sig: Buffer): boolean {
  if (signatureShapeProblem(alg, sig)) return false;
  // node:crypto is done with the bytes when it returns, so they need no buffer of their own.
  const data = transientLatin1(signingInput);
  try {
    return alg === 'ES256' ? cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig) : cryptoVerify(null, data, key, sig);
  } catch {
    return false;
  }
}

/** Signs `signingInput` with a private key in the JWS encoding of its alg. */
export function signBytes(alg: KeyAlg, key: KeyObject, signingInput: string): Buffer {
  const data = Buffer.from(signingInput, 'latin1');
  return alg === 'ES256' ? cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }) : cryptoSign(null, data, key);
}
