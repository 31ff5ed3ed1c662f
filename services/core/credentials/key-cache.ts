/**
 * Public keys known by their exact bytes: each strict JWK's RFC 7638 thumbprint and, once a signature
 * is checked with it, its node:crypto KeyObject. Importing a JWK costs more than a signature check, and
 * the same few principals sign most links a service sees, so keys are imported once.
 *
 * A hit is the presented key being the cached one member for member (kty, crv, x and y), never a
 * match on a `kid` a token claims: a different key that claims the same `kid` is a miss and gets its
 * own KeyObject. Skipping the import skips no check: the KeyObject is a pure function of those bytes.
 * Bounded; least recently used out first, approximately (second chance: a hit only sets a flag, so it
 * costs no map writes; eviction passes over a flagged entry once).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { thumbprintOfMembers } from '../identity/keys.js';
import type { PublicJwk } from './keys.js';

/** One key known by its exact bytes. */
export interface KnownKey {
  readonly jwk: PublicJwk;
  /** RFC 7638 SHA-256 thumbprint of `jwk`. */
  readonly kid: string;
}

interface Entry extends KnownKey {
  /** Imported on first use (most keys only hold a leaf and never sign). */
  key: KeyObject | undefined;
  used: boolean;
}

function sameKey(a: PublicJwk, b: PublicJwk): boolean {
  if (a.kty !== b.kty || a.crv !== b.crv || a.x !== b.x) return false;
  return a.kty !== 'EC' || a.y === (b as typeof a).y;
}

/** Bounded cache of public keys by their exact bytes. */
export class PublicKeyCache {
  // Keyed by x: 43 characters, whose hash V8 keeps on the string; the rest of the key is compared on a hit.
  private readonly entries = new Map<string, Entry>();

  /** @param maxEntries most keys kept */
  constructor(readonly maxEntries = 4096) {}

  /** The thumbprint of exactly this key (a strict public JWK), from the cache when it is there. */
  known(jwk: PublicJwk): KnownKey {
    return this.entry(jwk);
  }

  /** The KeyObject of exactly this key, imported once. Throws when it is not a valid key (e.g. a point off the curve). */
  keyObject(jwk: PublicJwk): KeyObject {
    const e = this.entry(jwk);
    // A key that fails to import throws here every time: nothing invalid is kept.
    return (e.key ??= createPublicKey({ key: jwk as never, format: 'jwk' }));
  }

  /** Number of keys kept. */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets every key. */
  clear(): void {
    this.entries.clear();
  }

  private entry(jwk: PublicJwk): Entry {
    const hit = this.entries.get(jwk.x);
    if (hit !== undefined && sameKey(hit.jwk, jwk)) {
      hit.used = true;
      return hit;
    }
    // A copy of exactly the key's members: the caller's object may be mutable.
    const own: PublicJwk = jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y } : { kty: 'OKP', crv: jwk.crv, x: jwk.x };
    const e: Entry = { jwk: own, kid: thumbprintOfMembers(own), key: undefined, used: false };
    if (hit !== undefined) this.entries.delete(jwk.x);
    this.entries.set(jwk.x, e);
    this.evict();
    return e;
  }

  private evict(): void {
    let passes = this.entries.size;
    while (this.entries.size > this.maxEntries) {
      const [x, e] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(x);
      if (e.used && passes-- > 0) {
        // Second chance: used since it was last passed, so it goes to the back once.
        e.used = false;
        this.entries.set(x, e);
      }
    }
  }
}

/** The process-wide key cache of the credential code. */
export const publicKeys = new PublicKeyCache();
