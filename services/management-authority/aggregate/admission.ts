/**
 * Admission, as pure functions of their inputs: whether a node can take a
 * sliver, which node the site picks for a sliver it may place anywhere, how
 * long a sliver may live, and what a slice authority may hold at this site.
 * Nothing here reads the ledger, the registry or a clock itself: callers pass
 * what is committed, the revoked credential ids and the time, so the rules
 * are tested without a server.
 */
import { status as Status } from '@grpc/grpc-js';
import type { Grant } from '../../core/credentials/index.js';
import { ResourceExhaustedError } from '../../core/errors.js';
import type { LiveNode } from '../node-registry.js';
import { imagesOfNode } from '../node-resources.js';
import { addResources, freeOf, shortfall, type Resources, type SliverRecord } from '../records.js';
import type { WantedSliver } from '../requests.js';
import { SUCCESS, failure } from '../../core/rpc/outcome.js';
import { type Outcome } from './outcome.js';
import type { AuthorityUse, NodeUse } from './slice-ledger.js';

/** What is committed at the site, as admission reads it (the slice ledger is one). */
export interface CommittedAtSite {
  /** What is committed on a node. */
  use(nodeUrn: string): Pick<NodeUse, 'committed' | 'slivers' | 'slices'>;
  /** The slice holding a node whole, if any. */
  exclusiveHolder(nodeUrn: string): string | undefined;
}

/** What one admission decides on: what is committed, the site's revoked credential ids, and the time (ms). */
export interface AdmissionInputs {
  readonly site: CommittedAtSite;
  /** jti of every credential on this site's own revocation list (node owners' credentials are checked against it). */
  readonly revoked: ReadonlySet<string> | undefined;
  readonly now: number;
}

/** A sliver admission places: a new one from a request, or one of a swapped-out slice coming back. */
export type Placement = WantedSliver | SliverRecord;

/** A node in the order the site picks from, with its free CPU when the order was made. */
export interface PickCandidate {
  readonly urn: string;
  readonly node: LiveNode;
  readonly cpu: number;
}

/** Whether a node's owner credential still lets the MA use it (unexpired, not revoked), and if not why. */
export function ownerProblem(node: LiveNode, now: number, revoked: ReadonlySet<string> | undefined): string | undefined {
  if (node.record.ownerChainExpiresAt <= now)
    return `the owner credential of ${node.record.urn} expired; its owner must give the MA a new one (re-enrol the node)`;
  if (revoked && node.record.ownerJtis.some((j) => revoked.has(j)))
    return `the owner credential of ${node.record.urn} is revoked at this site`;
  return undefined;
}

/** Whether a node can take a new sliver now (for advertisements). */
export function isAllocatable(input: AdmissionInputs, node: LiveNode): boolean {
  if (!node.up || ownerProblem(node, input.now, input.revoked)) return false;
  const use = input.site.use(node.record.urn);
  if (node.record.exclusive && use.slivers > 0) return false;
  if (input.site.exclusiveHolder(node.record.urn)) return false;
  const free = freeOf(node.capacity, use.committed);
  return free.cpuMillis > 0 && free.memMb > 0;
}

/**
 * Whether a node can take a sliver of `sliceUrn` now: success, or the failure with its gRPC code. `pending`
 * holds what this admission already placed on the node.
 */
export function nodeFit(
  input: AdmissionInputs,
  node: LiveNode | undefined,
  nodeUrn: string,
  sliceUrn: string,
  want: Placement,
  pending?: Resources,
): Outcome {
  if (!node) return failure(Status.NOT_FOUND, `node ${nodeUrn} is not enrolled at this site; see ListResources`);
  if (!node.up && node.unheard)
    return failure(
      Status.UNAVAILABLE,
      `node ${nodeUrn} has not sent a heartbeat since this management authority restarted; try again shortly`,
    );
  if (!node.up) {
    const last = node.lastHeartbeatAt ? new Date(node.lastHeartbeatAt).toISOString() : 'never';
    return failure(Status.UNAVAILABLE, `node ${nodeUrn} is DOWN (last heartbeat: ${last}); choose another node`);
  }
  const owner = ownerProblem(node, input.now, input.revoked);
  if (owner) return failure(Status.FAILED_PRECONDITION, owner);
  const image = want.image ?? 'host';
  const offered = imagesOfNode(node);
  if (!offered.includes(image))
    return failure(
      Status.FAILED_PRECONDITION,
      `node ${nodeUrn} does not offer image ${image} (it offers ${offered.join(', ') || 'none'}); see ListResources`,
    );
  const use = input.site.use(nodeUrn);
  const holder = input.site.exclusiveHolder(nodeUrn);
  if (holder && holder !== sliceUrn)
    return failure(Status.RESOURCE_EXHAUSTED, `node ${nodeUrn} is held whole by another slice; choose another node`);
  const exclusive = want.exclusive || node.record.exclusive;
  if (exclusive) {
    const others = [...use.slices.keys()].filter((s) => s !== sliceUrn).length;
    if (others > 0)
      return failure(
        Status.RESOURCE_EXHAUSTED,
        `node ${nodeUrn} cannot be given whole to ${sliceUrn}: ${others} other slice(s) use it; choose another node`,
      );
  }
  const committed = pending ? addResources(use.committed, pending) : use.committed;
  const free = freeOf(node.capacity, committed);
  const short = shortfall(free, want.resources);
  if (short)
    return failure(
      Status.RESOURCE_EXHAUSTED,
      `node ${nodeUrn} has ${short.have} ${short.field} free, the sliver needs ${short.want}; ask for less or choose another node`,
    );
  if ('minFree' in want) {
    const lacking = shortfall(free, want.minFree);
    if (lacking)
      return failure(
        Status.RESOURCE_EXHAUSTED,
        `node ${nodeUrn} has ${lacking.have} ${lacking.field} free, less than min_free ${lacking.want}`,
      );
  }
  return SUCCESS;
}

/**
 * The nodes a chain covers, most free CPU first (ties in the order given), computed once per
 * admission: what is committed does not change until it commits, so picking from this list gives
 * what a scan of every node per sliver would, without a scan per sliver.
 */
export function pickOrder(nodes: Iterable<LiveNode>, covers: (nodeUrn: string) => boolean, site: CommittedAtSite): PickCandidate[] {
  const out: PickCandidate[] = [];
  for (const node of nodes) {
    const urn = node.record.urn;
    if (!covers(urn)) continue;
    out.push({ urn, node, cpu: freeOf(node.capacity, site.use(urn).committed).cpuMillis });
  }
  return out.sort((a, b) => b.cpu - a.cpu);
}

/** Picks a node for a sliver the site may place anywhere: the first of {@link pickOrder} not taken that can take it. */
export function pickNode(
  input: AdmissionInputs,
  order: readonly PickCandidate[],
  sliceUrn: string,
  want: WantedSliver,
  taken: ReadonlySet<string>,
): string | undefined {
  for (const c of order) {
    if (taken.has(c.urn)) continue;
    if (nodeFit(input, c.node, c.urn, sliceUrn, want).ok) return c.urn;
  }
  return undefined;
}

/** What bounds a sliver's lifetime. */
export interface LifetimeQuery {
  /** The site maximum (s from now). */
  readonly maxLifetimeS: number;
  /** The verified MA → SA chain: its expiry and its `ttl_s`. */
  readonly grant: Pick<Grant, 'exp' | 'limits'>;
  /** When the sliver was created (ms). */
  readonly createdAt: number;
  readonly now: number;
  /** The sliver's node, whose owner credential also bounds it (absent while it has none). */
  readonly node?: LiveNode | undefined;
}

/** The latest expiry allowed for a sliver (ms), and which rule sets it. */
export function lifetimeCap(q: LifetimeQuery): { at: number; rule: string } {
  const caps: { at: number; rule: string }[] = [
    { at: q.now + q.maxLifetimeS * 1000, rule: `the site maximum (${q.maxLifetimeS} s from now)` },
    { at: q.grant.exp * 1000, rule: 'the expiry of the MA → SA chain' },
  ];
  const ttl = q.grant.limits.ttl_s;
  if (ttl !== undefined) caps.push({ at: q.createdAt + ttl * 1000, rule: `the chain's ttl_s (${ttl} s from creation)` });
  if (q.node) {
    caps.push({ at: q.node.record.ownerChainExpiresAt, rule: `the expiry of ${q.node.record.urn}'s owner credential` });
    const ownerTtl = q.node.record.ownerLimits.ttl_s;
    if (ownerTtl !== undefined)
      caps.push({ at: q.createdAt + ownerTtl * 1000, rule: `the ttl_s of ${q.node.record.urn}'s owner credential` });
  }
  return caps.reduce((a, b) => (b.at < a.at ? b : a));
}

/** What a quota check compares: the slice authority, its MA → SA credential's caps, what it holds here and what it would add. */
export interface QuotaQuery {
  readonly sliceAuthorityUrn: string;
  readonly limits: Grant['limits'];
  readonly held: AuthorityUse;
  readonly adding: readonly Resources[];
}

/** Throws RESOURCE_EXHAUSTED when the MA → SA credential's caps on what its holder may hold at this site would be exceeded. */
export function checkQuota(q: QuotaQuery): void {
  let total = q.held.committed;
  for (const r of q.adding) total = addResources(total, r);
  const count = q.held.slivers + q.adding.length;
  const over = (key: string, have: number, cap: number | undefined): void => {
    if (cap !== undefined && have > cap) {
      throw new ResourceExhaustedError(
        `the MA → SA credential of ${q.sliceAuthorityUrn} allows ${cap} ${key} at this site; this request would make it ${have} — delete slivers or ask the site for a larger delegation`,
        { rule: 'lim', resource: key },
      );
    }
  };
  over('slivers', count, q.limits.slivers);
  over('cpu_millis', total.cpuMillis, q.limits.cpu_millis);
  over('mem_mb', total.memMb, q.limits.mem_mb);
  over('disk_mb', total.diskMb, q.limits.disk_mb);
}
