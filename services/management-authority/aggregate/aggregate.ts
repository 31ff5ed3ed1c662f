/**
 * The site's Aggregate API (GENI AM API v3 semantics, docs/design.md §2–§3, §6): the
 * facade the handlers and the role call. It holds the shared state and locks
 * ({@link AggregateState}) and hands each call to the module that does it:
 *
 * - Allocate holds capacity in the MA's own ledger only (allocate.ts), after
 *   an all-or-nothing admission (admission.ts) under one mutex, so no node is
 *   ever over-committed. Holds end after `allocation_hold_s` unless
 *   provisioned; a sweeper releases them (sweepers.ts).
 * - Work on node managers (Provision, Delete, swap-out/in: provision.ts,
 *   lifecycle.ts, swap.ts) is written first as an intent, with the slivers
 *   marked busy, in one batch; then the node calls run in parallel with
 *   deadlines; then one batch records the outcome. An intent still present at
 *   start-up is finished or undone (intents.ts): no node keeps a sliver the MA
 *   does not know of.
 */
import type { CallContext } from '../../core/rpc/context.js';
import type { SliverResult } from '../../generated/fedlab/v1/common.js';
import type {
  AggregateAllocateRequest,
  AggregateAllocateResponse,
  AggregateDescribeResponse,
  AggregateGetVersionResponse,
  AggregateListResourcesRequest,
  AggregateListResourcesResponse,
  AggregatePerformOperationalActionRequest,
  AggregateProvisionRequest,
  AggregateProvisionResponse,
  AggregateRenewRequest,
  AggregateShutdownRequest,
  AggregateStatusResponse,
} from '../../generated/fedlab/v1/aggregate.js';
import type { Peer } from '../access.js';
import type { Resources } from '../records.js';
import { performAction, shutdown } from './actions.js';
import { Advertiser } from './advertise.js';
import { AggregateState, type AggregateDeps } from './aggregate-state.js';
import { allocate } from './allocate.js';
import { recover, retryIntents } from './intents.js';
import { vnisInUse } from './vnis.js';
import { deleteSlivers, renew } from './lifecycle.js';
import { provision } from './provision.js';
import { relayToNode, updateRevocations } from './revocations.js';
import { describe, status } from './status.js';
import { Sweeper } from './sweepers.js';

/** The Aggregate domain. */
export class Aggregate {
  private readonly state: AggregateState;
  private readonly advertiser: Advertiser;
  private readonly sweeper: Sweeper;

  constructor(deps: AggregateDeps) {
    this.state = new AggregateState(deps);
    this.advertiser = new Advertiser(this.state);
    this.sweeper = new Sweeper(this.state);
    deps.registry.setCommittedOf((urn) => this.committedOn(urn));
  }

  // ---- start-up, background ------------------------------------------------------------------

  /**
   * After a restart: finishes or undoes every intent left by the previous
   * process and releases expired holds. Intents whose nodes cannot be reached
   * stay and are retried.
   */
  recover(): Promise<{ settled: number; pending: number }> {
    return recover(this.state, () => this.sweep());
  }

  /** Retries unfinished intents (e.g. a delete on a node that was down). */
  retryIntents(): Promise<void> {
    return retryIntents(this.state);
  }

  /** Releases expired holds, and forgets expired slivers and slices left with no sliver; returns how many slivers went. */
  sweep(): Promise<number> {
    return this.sweeper.sweep();
  }

  /** Forgets old Allocate request ids of slices gone here (the sweeper calls it); returns how many. */
  forgetAllocateRequests(): Promise<number> {
    return this.sweeper.forgetAllocateRequests();
  }

  /** Learns whether netem exists (once, at start-up). */
  probe(): Promise<void> {
    return this.advertiser.probe();
  }

  // ---- the Aggregate calls -------------------------------------------------------------------

  /** GetVersion. */
  getVersion(): Promise<AggregateGetVersionResponse> {
    return this.advertiser.getVersion();
  }

  /** ListResources. */
  listResources(req: AggregateListResourcesRequest): AggregateListResourcesResponse {
    return this.advertiser.listResources(req);
  }

  /** Allocate: all or nothing, idempotent on request_id. */
  allocate(ctx: CallContext, req: AggregateAllocateRequest): Promise<AggregateAllocateResponse> {
    return allocate(this.state, ctx, req);
  }

  /** Provision: instantiates allocated slivers on their nodes. */
  provision(ctx: CallContext, req: AggregateProvisionRequest): Promise<AggregateProvisionResponse> {
    return provision(this.state, ctx, req);
  }

  /** Delete: per sliver; what is already gone succeeds. */
  delete(ctx: CallContext, urns: readonly string[]): Promise<SliverResult[]> {
    return deleteSlivers(this.state, ctx, urns);
  }

  /** Renew. */
  renew(ctx: CallContext, req: AggregateRenewRequest): Promise<SliverResult[]> {
    return renew(this.state, ctx, req);
  }

  /** Status, refreshed from the node managers. */
  status(ctx: CallContext, urns: readonly string[]): Promise<AggregateStatusResponse> {
    return status(this.state, ctx, urns);
  }

  /** Describe, from the ledger. */
  describe(ctx: CallContext, urns: readonly string[]): AggregateDescribeResponse {
    return describe(this.state, ctx, urns);
  }

  /** PerformOperationalAction. */
  act(ctx: CallContext, req: AggregatePerformOperationalActionRequest): Promise<SliverResult[]> {
    return performAction(this.state, ctx, req);
  }

  /** Shutdown. */
  shutdown(peer: Peer, isAdmin: boolean, req: AggregateShutdownRequest, deadline: number): Promise<SliverResult[]> {
    return shutdown(this.state, peer, isAdmin, req, deadline);
  }

  /** UpdateRevocations: a slice authority's own list, relayed to the nodes of its slices. */
  updateRevocations(ctx: CallContext, jws: string): Promise<{ version: number; nodesUpdated: number; nodesPending: number }> {
    return updateRevocations(this.state, ctx, jws);
  }

  /** A node came (back) UP: it gets the slice authorities' revocation lists of its slivers again (never throws). */
  relayRevocationsTo(nodeUrn: string): Promise<void> {
    return relayToNode(this.state, nodeUrn);
  }

  // ---- diagnostics ---------------------------------------------------------------------------

  /** The VNI of each link of a slice, by link name (emulab; for site tools and tests); absent links hold none. */
  linkVnis(sliceUrn: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const l of this.state.ledger.slices.get(sliceUrn)?.links ?? []) if (l.vni !== undefined) out.set(l.name, l.vni);
    return out;
  }

  /** Every VNI the site's slices hold now (diagnostics and tests). */
  vnisInUse(): Set<number> {
    return vnisInUse(this.state.ledger.slices.values());
  }

  /** Counts for diagnostics and tests. */
  stats(): { slices: number; slivers: number; holds: number; intents: number } {
    const { ledger } = this.state;
    return { slices: ledger.slices.size, slivers: ledger.slivers.size, holds: ledger.holds.size, intents: ledger.intents.size };
  }

  /** The tombstones slices' Deletes left here, by slice URN (diagnostics and tests). */
  tombstones(): Map<string, { sliceAuthorityUrn: string; deletedAt: number }> {
    return new Map([...this.state.ledger.tombstones].map(([k, t]) => [k, t.record]));
  }

  /** What is committed on a node, and by how many slivers (reports and tests). */
  committedOn(nodeUrn: string): { committed: Resources; slivers: number } {
    const u = this.state.ledger.use(nodeUrn);
    return { committed: u.committed, slivers: u.slivers };
  }
}
