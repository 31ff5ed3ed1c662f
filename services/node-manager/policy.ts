/**
 * The node owner's policy: which slice authorities and providers may have
 * slivers here, how much one slice may hold, and how long a sliver may live.
 * It comes from the node's config and from the `lim` of the owner → MA chain a
 * request arrives with; the stricter of the two applies. A request outside it
 * is refused with PERMISSION_DENIED naming the rule.
 */
import { PermissionDeniedError } from '../core/errors.js';
import { parseUrn, targetCovers } from '../core/identity/urn.js';
import type { GrantLimits } from './access.js';
import type { Capacity } from './capacity.js';

/** The policy part of the node's config. */
export interface PolicyConfig {
  readonly slice_authority_domains: readonly string[];
  readonly providers: readonly string[];
  readonly max_lifetime_s: number;
  readonly per_slice: Partial<Record<'slivers' | 'cpu_millis' | 'mem_mb' | 'disk_mb', number>>;
  /** Images slices may use ("*": every image the node has); absent: every image. */
  readonly images?: readonly string[];
}

const minDefined = (...xs: (number | undefined)[]): number | undefined => {
  const d = xs.filter((x): x is number => x !== undefined);
  return d.length ? Math.min(...d) : undefined;
};

/** The owner's policy. */
export class OwnerPolicy {
  constructor(readonly config: PolicyConfig) {}

  /** Refuses slice authorities and providers the owner does not accept. */
  checkParties(sliceAuthorityUrn: string, providerUrn: string): void {
    const saDomain = parseUrn(sliceAuthorityUrn).domain;
    const domains = this.config.slice_authority_domains;
    if (!domains.includes('*') && !domains.includes(saDomain)) {
      throw new PermissionDeniedError(
        `owner policy slice_authority_domains: slices of ${saDomain} may not have slivers on this node (allowed: ${domains.join(', ') || 'none'})`,
        { rule: 'policy.slice_authority_domains' },
      );
    }
    const providers = this.config.providers;
    if (!providers.includes('*') && !providers.some((p) => targetCovers(p, providerUrn))) {
      throw new PermissionDeniedError(`owner policy providers: provider ${providerUrn} may not have slivers on this node`, {
        rule: 'policy.providers',
      });
    }
  }

  /** Refuses an image the owner does not list (the image is known to exist here). */
  checkImage(image: string): void {
    const allowed = this.config.images ?? ['*'];
    if (!allowed.includes('*') && !allowed.includes(image)) {
      throw new PermissionDeniedError(
        `owner policy images: image ${image} may not be used on this node (allowed: ${allowed.join(', ') || 'none'})`,
        {
          rule: 'policy.images',
        },
      );
    }
  }

  /** Most one slice may hold here: the config's per_slice and the chain's `lim`, whichever is less. */
  perSlice(lim: GrantLimits): Partial<Capacity> {
    const c = this.config.per_slice;
    const out: { -readonly [K in keyof Capacity]?: number } = {};
    const slivers = minDefined(c.slivers, lim.slivers);
    const cpu = minDefined(c.cpu_millis, lim.cpu_millis);
    const mem = minDefined(c.mem_mb, lim.mem_mb);
    const disk = minDefined(c.disk_mb, lim.disk_mb);
    if (slivers !== undefined) out.slivers = slivers;
    if (cpu !== undefined) out.cpuMillis = cpu;
    if (mem !== undefined) out.memMb = mem;
    if (disk !== undefined) out.diskMb = disk;
    return out;
  }

  /**
   * The latest expiry a sliver created at `createdAt` may have under this
   * policy and a grant, with the rule that sets it.
   */
  latestExpiry(createdAt: number, lim: GrantLimits, grantExpiresAt: number): { readonly at: number; readonly rule: string } {
    const candidates: { at: number; rule: string }[] = [
      { at: createdAt + this.config.max_lifetime_s * 1000, rule: `owner policy max_lifetime_s (${this.config.max_lifetime_s} s)` },
      { at: grantExpiresAt, rule: 'the credential chain expires then' },
    ];
    if (lim.ttl_s !== undefined) candidates.push({ at: createdAt + lim.ttl_s * 1000, rule: `the credential's lim.ttl_s (${lim.ttl_s} s)` });
    return candidates.reduce((a, b) => (b.at < a.at ? b : a));
  }
}
