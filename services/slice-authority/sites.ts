/**
 * The sites a slice authority uses: for each, a client of its Aggregate
 * (pinned to the management authority's URN), the `MA → SA` chain shown on
 * every call, what that chain allows (expiry, ttl), and the site's GetVersion
 * (style, maximum sliver lifetime), fetched once and kept for a while.
 */
import { readFileSync } from 'node:fs';
import { effectiveLimits, parseCredential, type Limits } from '../core/credentials/index.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { createClient, type PromiseClient } from '../core/rpc/client.js';
import type { TlsMaterial } from '../core/rpc/server.js';
import type { TransportTrust } from '../core/rpc/trust.js';
import { AggregateService, type AggregateGetVersionResponse } from '../generated/fedlab/v1/aggregate.js';
import type { SaSiteConfig } from './config.js';

/** How long a site's GetVersion answer is reused (ms). */
const VERSION_TTL_MS = 5 * 60_000;

/** One configured site. */
export interface Site {
  readonly domain: string;
  readonly endpoint: string;
  readonly maUrn: string;
  /** The `MA → SA` chain, root first. */
  readonly chain: readonly string[];
  /** When the chain stops being valid (ms): nothing at the site may outlive it. */
  readonly chainExpiresAt: number;
  /** The chain's effective `lim` (e.g. `ttl_s`, counted from a sliver's creation). */
  readonly limits: Limits;
  readonly client: PromiseClient<typeof AggregateService>;
}

/** What the SA needs to know about itself to check its chains. */
export interface SelfKey {
  readonly urn: string;
  readonly kid: string;
}

/** Reads a chain file: one compact JWS per line, root first; blank lines ignored. */
export function readChainFile(file: string, where: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`${where}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const links = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (links.length === 0)
    throw new InvalidArgumentError(
      `${where}: ${file} holds no credential; put the MA → SA chain there, one compact JWS per line, root first`,
    );
  return links;
}

/** Checks an `MA → SA` chain's shape: rooted at the site's MA, held by this SA. Returns its expiry and limits. */
export function checkSiteChain(
  chain: readonly string[],
  site: { domain: string; maUrn: string },
  self: SelfKey,
  where: string,
): { expiresAt: number; limits: Limits } {
  let limits: Limits | undefined;
  let exp = Infinity;
  const links = chain.map((t, i) => {
    try {
      return parseCredential(t, i);
    } catch (err) {
      throw new InvalidArgumentError(`${where}: link ${i} of the chain is not a credential: ${(err as Error).message}`);
    }
  });
  for (const l of links) {
    limits = effectiveLimits(limits, l.claims.lim);
    exp = Math.min(exp, l.claims.exp * 1000);
  }
  const root = links[0]?.claims;
  const leaf = links[links.length - 1];
  if (!root || !leaf) throw new InvalidArgumentError(`${where}: the chain is empty`);
  if (root.iss !== site.maUrn)
    throw new InvalidArgumentError(
      `${where}: the chain is rooted at ${root.iss}, not at the site's MA ${site.maUrn}; ask ${site.domain}'s admin for a chain from its MA`,
    );
  if (root.sub !== self.urn)
    throw new InvalidArgumentError(`${where}: the chain was issued to ${root.sub}, not to this slice authority ${self.urn}`);
  if (leaf.claims.sub !== self.urn || leaf.holderKid !== self.kid) {
    throw new InvalidArgumentError(
      `${where}: the chain's last link is not held by this slice authority's key (${self.kid}); it must be issued to the key of tls.cert`,
    );
  }
  return { expiresAt: exp, limits: limits ?? {} };
}

/** The sites of a slice authority. */
export class Sites {
  private readonly byDomain = new Map<string, Site>();
  private readonly versions = new Map<string, { at: number; value: AggregateGetVersionResponse }>();

  constructor(
    sites: readonly Site[],
    private readonly now: () => number,
  ) {
    for (const s of sites) this.byDomain.set(s.domain, s);
  }

  /** Loads the configured sites: reads and checks every chain file, makes the clients (no connection yet). */
  static load(
    configs: readonly SaSiteConfig[],
    options: {
      tls: TlsMaterial;
      trust?: TransportTrust;
      self: SelfKey;
      deadlineMs: number;
      now: () => number;
      log: Logger;
      /** Told of every finished call to a site (for metrics; the site is bounded by this config). */
      observe?: (site: string, method: string, code: string, seconds: number) => void;
    },
  ): Sites {
    const sites = configs.map((c, i): Site => {
      const where = `sites[${i}] (${c.domain})`;
      const chain = readChainFile(c.chain_file, `${where}.chain_file`);
      const { expiresAt, limits } = checkSiteChain(chain, { domain: c.domain, maUrn: c.ma_urn }, options.self, where);
      if (expiresAt <= options.now())
        options.log.warn(
          { site: c.domain },
          "the site's MA → SA chain has expired; slices there will be refused until its admin issues a new one",
        );
      // The site's server is verified with the CAs the config names for it, or else with the federation's
      // trust (this domain's CA and the peered domains' bundles).
      let explicit: string | undefined;
      if (c.ca) {
        try {
          explicit = readFileSync(c.ca, 'utf8');
        } catch (err) {
          throw new InvalidArgumentError(
            `${where}.ca: cannot read ${c.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          );
        }
      }
      const client = createClient(AggregateService, {
        address: c.endpoint,
        tls: { ...options.tls, caCerts: explicit ?? options.tls.caCerts },
        ...(explicit === undefined && options.trust ? { trust: options.trust } : {}),
        serverUrn: c.ma_urn,
        deadlineMs: options.deadlineMs,
        ...(options.observe
          ? { observe: (method: string, code: string, seconds: number) => options.observe?.(c.domain, method, code, seconds) }
          : {}),
      });
      return { domain: c.domain, endpoint: c.endpoint, maUrn: c.ma_urn, chain, chainExpiresAt: expiresAt, limits, client };
    });
    return new Sites(sites, options.now);
  }

  /** The site of a domain, if configured. */
  get(domain: string): Site | undefined {
    return this.byDomain.get(domain);
  }

  /** Every configured domain. */
  domains(): string[] {
    return [...this.byDomain.keys()].sort();
  }

  /** The site's GetVersion (kept for a few minutes). */
  async version(site: Site, deadlineMs: number): Promise<AggregateGetVersionResponse> {
    const hit = this.versions.get(site.domain);
    if (hit && this.now() - hit.at < VERSION_TTL_MS) return hit.value;
    const value = await site.client.getVersion({}, { deadlineMs });
    this.versions.set(site.domain, { at: this.now(), value });
    return value;
  }

  /**
   * The latest expiry the site can grant for a sliver created at `createdAt`,
   * and which rule sets it: the site maximum from now, the chain's expiry, the
   * chain's ttl_s from creation.
   */
  latest(site: Site, version: AggregateGetVersionResponse | undefined, createdAt: number): { at: number; rule: string } {
    const now = this.now();
    const caps = [{ at: site.chainExpiresAt, rule: `the expiry of ${site.domain}'s MA → SA chain` }];
    if (version && version.maxSliverLifetimeS > 0)
      caps.push({
        at: now + version.maxSliverLifetimeS * 1000,
        rule: `${site.domain}'s maximum sliver lifetime (${version.maxSliverLifetimeS} s from now)`,
      });
    if (site.limits.ttl_s !== undefined)
      caps.push({
        at: createdAt + site.limits.ttl_s * 1000,
        rule: `the ttl_s of ${site.domain}'s chain (${site.limits.ttl_s} s from creation)`,
      });
    return caps.reduce((a, b) => (b.at < a.at ? b : a));
  }

  /** Closes every client. */
  close(): void {
    for (const s of this.byDomain.values()) s.client.close();
  }
}
