/**
 * Admission of a create: idempotency (per caller request id, and per sliver
 * URN), one authority per slice, exclusivity, the owner's per-slice caps and
 * the node's capacity; a new sliver is written with its request id and the
 * node's new committed totals (and its SSH users and login name, and on a node with a sliver network its
 * lease: eth0's address and forwarded ports) in one atomic batch. Callers serialise
 * admissions (one mutex), so the node is never over-committed.
 */
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
} from '../core/errors.js';
import type { SliceUserRecord } from '../core/identity/ssh-keys.js';
import type { SliverInterface } from '../generated/fedlab/v1/common.js';
import { describeShortfalls, shortfalls, type Capacity } from './capacity.js';
import type { DriverKind, SliverResources } from './drivers/driver.js';
import { addCommitted, type Allocation, type SliverRecord } from './records.js';
import { leaseOf, type NetworkPlan } from './network/network-plan.js';
import { allocateRange, type IdRangeSettings } from './runtime/id-ranges.js';
import { COMMITTED_KEY, requestKey, type SliverStore } from './sliver-store.js';
import type { CallFence } from './sliver-tombstones.js';

/** What admission needs to create a sliver (already validated and authorised). */
export interface CreateSpec {
  readonly requestId: string;
  /** Hash of the request's arguments: a retry must match it. */
  readonly fingerprint: string;
  /** URN of the caller (idempotency is per request id; the caller is kept for diagnostics). */
  readonly caller: string;
  readonly urn: string;
  readonly name: string;
  readonly sliceUrn: string;
  readonly sliceAuthorityUrn: string;
  readonly sliceAuthorityJwk: Record<string, unknown>;
  /** The slice's incarnation; absent for a slice made before incarnations. */
  readonly sliceIncarnation?: string;
  readonly providerUrn: string;
  readonly clientId: string;
  readonly resources: SliverResources;
  readonly exclusive: boolean;
  readonly interfaces: readonly SliverInterface[];
  readonly allocation: Allocation;
  readonly start: boolean;
  readonly expiresAt: number;
  /** Most the sliver's slice may hold on this node (owner policy and the chain's `lim`). */
  readonly sliceLimits: Partial<Capacity>;
  /** The image (`host` or `oci:<name>`), already known to exist here and to be allowed. */
  readonly image?: string;
  /** The call's signal and arrival: a call that has ended commits nothing, one a delete superseded is ABORTED. */
  readonly call?: CallFence;
  /** The slice's users (SSH keys) on this node: a new sliver is written with them; a promotion takes them. */
  readonly users?: readonly SliceUserRecord[];
  /** The login name a new sliver gets, picked under the admission mutex (see SliverManager.create). */
  readonly login?: string;
}

/** What admission decided: a new sliver was written, the sliver exists as asked, or an ALLOCATED one is to be promoted. */
export type Admitted = 'new' | 'existing' | 'promote';

/** The node-wide settings admission checks against. */
export interface AdmissionSettings {
  readonly capacity: Capacity;
  /** The node is given to one slice at a time. */
  readonly exclusiveNode: boolean;
  readonly driverKind: DriverKind;
  /** Container slivers' user namespace id ranges. */
  readonly idRanges: IdRangeSettings;
  /** The node's sliver network, when it has one: a container sliver's lease follows from its id range slot. */
  readonly network?: NetworkPlan;
  readonly now: number;
}

/** Checks a create against what is committed and, for a new sliver, writes it in one batch. Run under the admission mutex. */
export async function admit(state: SliverStore, spec: CreateSpec, o: AdmissionSettings): Promise<Admitted> {
  state.tombstones.refuseSuperseded(spec.urn, requestKey(spec.caller, spec.requestId), spec.call?.arrival);
  // From memory: the requests table holds exactly the live slivers' request keys (sliver-store.ts).
  const seen = state.requestOf(requestKey(spec.caller, spec.requestId));
  if (seen) {
    if (seen.fingerprint !== spec.fingerprint || seen.sliverUrn !== spec.urn) {
      throw new AlreadyExistsError(
        `request id ${spec.requestId} was already used for a different request; use a new request id for a new request`,
        {
          rule: 'request_id',
        },
      );
    }
    if (state.has(spec.urn)) return 'existing';
  }
  const existing = state.get(spec.urn);
  if (existing) {
    if (existing.requestFingerprint === spec.fingerprint) return 'existing';
    // Promotion happens under the sliver's lock (see checkPromotion), not here.
    if (existing.allocation === 'allocated' && spec.allocation === 'provisioned') return 'promote';
    throw new AlreadyExistsError(`sliver ${spec.urn} already exists with other parameters; delete it first or choose another sliver URN`, {
      rule: 'sliver_urn',
    });
  }

  const first = state.sliceRecords(spec.sliceUrn)[0];
  if (
    first &&
    (first.sliceAuthorityUrn !== spec.sliceAuthorityUrn ||
      JSON.stringify(first.sliceAuthorityJwk) !== JSON.stringify(spec.sliceAuthorityJwk))
  ) {
    throw new PermissionDeniedError(
      `slice ${spec.sliceUrn} already has slivers here under slice authority ${first.sliceAuthorityUrn} with another key; a slice has one authority`,
      { rule: 'slice_authority' },
    );
  }
  if (first && spec.sliceIncarnation !== undefined && first.sliceIncarnation !== spec.sliceIncarnation) {
    // A slice's slivers share one life: the earlier one's slivers go first (its credentials reach only them).
    // A create naming no incarnation (an aggregate that predates them) is admitted as before, bound to none.
    throw new FailedPreconditionError(
      `slice ${spec.sliceUrn} still has slivers here of ${first.sliceIncarnation ? `incarnation ${first.sliceIncarnation}` : 'an earlier life (made before incarnations)'}; a slice has one incarnation at a time — they must be deleted first`,
      { rule: 'slice_incarnation' },
    );
  }
  const others = state.count - state.sliceCount(spec.sliceUrn);
  if (others > 0) {
    const holder = state.exclusive().find((r) => r.sliceUrn !== spec.sliceUrn);
    if (holder)
      throw new ResourceExhaustedError(`the node is held exclusively by slice ${holder.sliceUrn}; try another node`, { rule: 'exclusive' });
    if (spec.exclusive || o.exclusiveNode) {
      throw new ResourceExhaustedError(
        `the node cannot be given ${spec.exclusive ? 'exclusively' : 'whole'} to slice ${spec.sliceUrn}: ${others} sliver(s) of other slices are on it; try another node`,
        { rule: 'exclusive' },
      );
    }
  }

  const perSlice = shortfalls(spec.sliceLimits, state.sliceCommitted(spec.sliceUrn), spec.resources);
  if (perSlice.length > 0) {
    throw new PermissionDeniedError(
      `owner policy per_slice: slice ${spec.sliceUrn} may not hold more on this node (${describeShortfalls(perSlice)})`,
      {
        rule: 'policy.per_slice',
        resource: perSlice[0]?.resource ?? '',
      },
    );
  }
  const short = shortfalls(o.capacity, state.committed, spec.resources);
  if (short.length > 0) {
    throw new ResourceExhaustedError(`the node cannot fit this sliver: ${describeShortfalls(short)}; ask for less or try another node`, {
      resource: short[0]?.resource ?? '',
      left: short[0]?.left ?? 0,
    });
  }

  // The id range is held by the record itself: written in this batch, freed with the record.
  const ids = o.driverKind === 'container' ? allocateRange(state.usedIdRanges(), o.idRanges) : undefined;
  // So is the network lease, a function of the range's slot (RESOURCE_EXHAUSTED, nothing written, when the network is full).
  const network = ids && o.network ? leaseOf(o.network, ids.slot) : undefined;
  const rec: SliverRecord = {
    urn: spec.urn,
    name: spec.name,
    sliceUrn: spec.sliceUrn,
    sliceAuthorityUrn: spec.sliceAuthorityUrn,
    sliceAuthorityJwk: spec.sliceAuthorityJwk,
    ...(spec.sliceIncarnation !== undefined ? { sliceIncarnation: spec.sliceIncarnation } : {}),
    providerUrn: spec.providerUrn,
    clientId: spec.clientId,
    resources: spec.resources,
    exclusive: spec.exclusive,
    interfaces: spec.interfaces,
    allocation: spec.allocation,
    operational: 'pending',
    wantRunning: spec.start,
    driver: o.driverKind,
    ...(ids ? { ids } : {}),
    ...(network ? { network } : {}),
    image: spec.image ?? 'host',
    createdAt: o.now,
    updatedAt: o.now,
    expiresAt: spec.expiresAt,
    error: '',
    requestId: spec.requestId,
    requestCaller: spec.caller,
    requestFingerprint: spec.fingerprint,
    // In the admission batch: a sliver is never on disk without the users who may log in, or its login name.
    users: [...(spec.users ?? [])],
    ...(spec.login !== undefined ? { login: spec.login } : {}),
  };
  const committed = addCommitted(state.committed, spec.resources, 1);
  await state.store
    .batch()
    .put(state.slivers, rec.urn, rec)
    .put(state.requests, requestKey(spec.caller, spec.requestId), {
      sliverUrn: spec.urn,
      fingerprint: spec.fingerprint,
      caller: spec.caller,
    })
    .put(state.meta, COMMITTED_KEY, committed)
    .write({ sync: true, signal: spec.call?.signal });
  state.put(rec);
  state.setCommitted(committed);
  return 'new';
}

/**
 * ALLOCATED → PROVISIONED for the same slice and resources: the promoted
 * record, or undefined when it is already provisioned as asked. Throws when
 * the request does not match the allocation.
 */
export function promotion(rec: SliverRecord | undefined, spec: CreateSpec, now: number): SliverRecord | undefined {
  if (!rec) throw new NotFoundError(`sliver ${spec.urn} is gone (its allocation expired or was deleted); allocate it again`);
  if (rec.allocation === 'provisioned') {
    if (rec.requestFingerprint === spec.fingerprint) return undefined;
    throw new AlreadyExistsError(`sliver ${spec.urn} is already provisioned with other parameters`, { rule: 'sliver_urn' });
  }
  if (
    rec.sliceUrn !== spec.sliceUrn ||
    rec.sliceIncarnation !== spec.sliceIncarnation ||
    JSON.stringify(rec.resources) !== JSON.stringify(spec.resources) ||
    rec.exclusive !== spec.exclusive ||
    (rec.image ?? 'host') !== (spec.image ?? 'host')
  ) {
    throw new AlreadyExistsError(
      `sliver ${spec.urn} is allocated for ${rec.sliceUrn} with other resources; provision it with the resources it was allocated with`,
      {
        rule: 'sliver_urn',
      },
    );
  }
  return {
    ...rec,
    allocation: 'provisioned',
    operational: 'pending',
    wantRunning: spec.start,
    expiresAt: spec.expiresAt,
    requestId: spec.requestId,
    requestCaller: spec.caller,
    requestFingerprint: spec.fingerprint,
    // The provision's users are the slice's users now (written with the promotion).
    ...(spec.users ? { users: [...spec.users] } : {}),
    updatedAt: now,
  };
}

/** Writes a promoted record and moves the request id from the allocation's to the provision's, in one batch. */
export async function writePromotion(
  state: SliverStore,
  before: SliverRecord,
  promoted: SliverRecord,
  signal?: AbortSignal,
): Promise<void> {
  await state.store
    .batch()
    .put(state.slivers, promoted.urn, promoted)
    .del(state.requests, requestKey(before.requestCaller, before.requestId))
    .put(state.requests, requestKey(promoted.requestCaller, promoted.requestId), {
      sliverUrn: promoted.urn,
      fingerprint: promoted.requestFingerprint,
      caller: promoted.requestCaller,
    })
    .write({ sync: true, signal });
  state.put(promoted);
}
