/**
 * Cache of verified chain prefixes (docs/design.md §5: "verified chain prefixes may
 * be cached by hash"). An entry records that a prefix passed the rules that
 * depend only on its own bytes: encoding, claims, signatures and attenuation.
 * The clock, the trust anchors, revocations, the caller and the grant are
 * checked again on every call, so a cached entry keeps its validity window
 * and can never outlive a revocation or a removed anchor.
 *
 * Entries are keyed by a number read from the last eight characters of
 * their last link (the end of its signature), so a lookup reads those few
 * characters, not the whole link: presented links arrive as new strings
 * whose hash V8 has not computed yet, and hashing a 1 KB link cost more than
 * the rest of a cached verification. A key only finds a candidate; the hit
 * is the presented links being, text for text, the cached ones, so a forged
 * link that reuses a cached signature is a miss and is verified in full (two
 * links whose ends collide only push each other out).
 * Bounded by entries and by bytes, evicting the least recently used
 * approximately (second chance: a hit only sets a flag, so it costs no map
 * writes; eviction passes over a flagged entry once).
 */
import type { VerifiedPrefix } from './grant.js';

/** Sizes of a {@link ChainCache}. */
export interface ChainCacheOptions {
  /** Most prefixes kept (default 10 000). */
  readonly maxEntries?: number;
  /** Most bytes of credential text kept, roughly (default 32 MiB). */
  readonly maxBytes?: number;
}

/** The cache key of a link: its last eight characters, six bits each (any text works; it is only a hint). */
function keyOf(token: string): number {
  let k = token.length & 15;
  // At most 4 + 48 bits: exact in a double.
  for (let i = Math.max(0, token.length - 8); i < token.length; i++) k = k * 64 + (token.charCodeAt(i) & 63);
  return k;
}

/** A cached prefix and whether it was used since eviction last passed it. */
interface Entry {
  readonly prefix: VerifiedPrefix;
  used: boolean;
}

/** Bounded cache of verified prefixes, least recently used out first (approximately). */
export class ChainCache {
  private readonly entries = new Map<number, Entry>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  /** Lookups that found the whole chain, part of it, or nothing. */
  readonly stats = { hits: 0, partial: 0, misses: 0 };

  constructor(options: ChainCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
  }

  /** The longest cached prefix of `chain` whose links are exactly the presented ones, or undefined. */
  longestPrefix(chain: readonly string[]): VerifiedPrefix | undefined {
    for (let k = chain.length - 1; k >= 0; k--) {
      const link = chain[k] as string;
      const entry = this.entries.get(keyOf(link));
      if (!entry) continue;
      const e = entry.prefix;
      if (e.index !== k || e.cred.token !== link) continue;
      let ok = true;
      // The last link matched; its ancestors must be the presented links too.
      for (let i = k - 1; i >= 0; i--) {
        if ((e.links[i] as { token: string }).token !== chain[i]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (k === chain.length - 1) this.stats.hits++;
      else this.stats.partial++;
      entry.used = true;
      return e;
    }
    this.stats.misses++;
    return undefined;
  }

  /** Records a verified prefix. */
  insert(prefix: VerifiedPrefix): void {
    const key = keyOf(prefix.cred.token);
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.prefix.bytes;
      this.entries.delete(key);
    }
    this.entries.set(key, { prefix, used: false });
    this.bytes += prefix.bytes;
    let passes = this.entries.size;
    while (this.entries.size > this.maxEntries || (this.bytes > this.maxBytes && this.entries.size > 1)) {
      const [oldest, e] = this.entries.entries().next().value as [number, Entry];
      this.entries.delete(oldest);
      if (e.used && passes-- > 0) {
        // Second chance: used since it was last passed, so it goes to the back once.
        e.used = false;
        this.entries.set(oldest, e);
        continue;
      }
      this.bytes -= e.prefix.bytes;
    }
  }

  /** Drops every prefix holding a link with this jti, or signed by or delegated to the key with this thumbprint. */
  evict(match: { readonly jti?: string; readonly kid?: string }): number {
    let n = 0;
    for (const [key, { prefix: e }] of this.entries) {
      const touched = e.links.some(
        (l) =>
          (match.jti !== undefined && l.claims.jti === match.jti) ||
          (match.kid !== undefined && (l.header.kid === match.kid || l.holderKid === match.kid)),
      );
      if (touched) {
        this.bytes -= e.bytes;
        this.entries.delete(key);
        n++;
      }
    }
    return n;
  }

  /** Empties the cache. */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  /** Number of cached prefixes. */
  get size(): number {
    return this.entries.size;
  }
}

/** The process-wide cache {@link verifyChain} uses unless given another. */
export const defaultChainCache = new ChainCache();
