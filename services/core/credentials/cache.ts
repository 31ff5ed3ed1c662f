/**
 * Cache of verified chain prefixes (docs/design.md §5: "verified chain prefixes may
 * be cached by hash"). An entry records that a prefix passed the rules that
 * depend only on its own bytes: encoding, claims, signatures and attenuation.
 * The clock, the trust anchors, revocations, the caller and the grant are
 * checked again on every call, so a cached entry keeps its validity window
 * and can never outlive a revocation or a removed anchor.
 *
 * Entries are keyed by the exact text of their last link, which identifies
 * the prefix as well as its hash does (each link's `prf` pins its parent) and
 * costs no hashing on a hit. Bounded LRU by entries and by bytes.
 */
import type { VerifiedPrefix } from './grant.js';

/** Sizes of a {@link ChainCache}. */
export interface ChainCacheOptions {
  /** Most prefixes kept (default 10 000). */
  readonly maxEntries?: number;
  /** Most bytes of credential text kept, roughly (default 32 MiB). */
  readonly maxBytes?: number;
}

/** Bounded LRU of verified prefixes. */
export class ChainCache {
  private readonly entries = new Map<string, VerifiedPrefix>();
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
      const e = this.entries.get(chain[k] as string);
      if (!e || e.index !== k) continue;
      let ok = true;
      // The last link matched by key; its ancestors must be the presented links too.
      for (let i = k - 1; i >= 0; i--) {
        if ((e.links[i] as { token: string }).token !== chain[i]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (k === chain.length - 1) {
        this.stats.hits++;
        // Refresh recency of the entry used.
        this.entries.delete(chain[k] as string);
        this.entries.set(chain[k] as string, e);
      } else this.stats.partial++;
      return e;
    }
    this.stats.misses++;
    return undefined;
  }

  /** Records a verified prefix. */
  insert(prefix: VerifiedPrefix): void {
    const key = prefix.cred.token;
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.bytes;
      this.entries.delete(key);
    }
    this.entries.set(key, prefix);
    this.bytes += prefix.bytes;
    while (this.entries.size > this.maxEntries || (this.bytes > this.maxBytes && this.entries.size > 1)) {
      const oldest = this.entries.keys().next().value as string;
      this.bytes -= (this.entries.get(oldest) as VerifiedPrefix).bytes;
      this.entries.delete(oldest);
    }
  }

  /** Drops every prefix holding a link with this jti, or signed by or delegated to the key with this thumbprint. */
  evict(match: { readonly jti?: string; readonly kid?: string }): number {
    let n = 0;
    for (const [key, e] of this.entries) {
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
