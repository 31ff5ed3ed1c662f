/**
 * Provision, and the instantiation swap-in shares: the intent and the busy
 * marks in one batch, the node managers' CreateSliver calls in parallel with
 * deadlines (emulab: each carries the sliver's interfaces, which its node
 * wires), then one batch with the outcome; what did not make it is undone on
 * its nodes. Both
 * batches are fenced by the call: once it has ended nothing more is committed,
 * and what the nodes made is undone.
 */
import { status as Status } from '@grpc/grpc-js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import type { CallContext } from '../../core/rpc/context.js';
import { AllocationState, type Sliver } from '../../generated/fedlab/v1/common.js';
import type { AggregateProvisionRequest, AggregateProvisionResponse } from '../../generated/fedlab/v1/aggregate.js';
import type { ChainAccess } from '../access.js';
import type { NodeResult } from '../node-clients.js';
import { toSpec } from '../node-resources.js';
import type { IntentRecord, SliceRecord, SliverRecord } from '../records.js';
import { lifetimeCap, ownerProblem } from './admission.js';
import type { AggregateState } from './aggregate-state.js';
import { requireOwnSlice, resolveTargets } from './call-targets.js';
import { newIntent, settle } from './intents.js';
import { interfacesToWire, linkInterfaces, withApplied } from './links.js';
import { vniBase, vnisInUse, withVnis } from './vnis.js';
import { withPeerPoints } from './stitches.js';
import { SUCCESS, failure } from '../../core/rpc/outcome.js';
import { throwFailures, type Outcome } from './outcome.js';
import { relayTo } from './revocations.js';
import { incarnationOf } from './slice-incarnation.js';
import { manifestDocument, operationalFromWire, usersToWire } from './to-wire.js';
import { duringGrace } from './grace.js';
import { refuseSuperseded } from './tombstones.js';

/** How an instantiation runs. */
export interface InstantiateOptions {
  readonly kind: 'provision' | 'swap-in';
  /** Start the slivers once made. */
  readonly start: boolean;
  /** The expiry asked for (ms), if any. */
  readonly asked: number | undefined;
  readonly deadline: number;
  /** Undo every sliver when one fails. */
  readonly allOrNothing: boolean;
  /** The intent, when the caller already wrote it and marked the slivers (swap-in). */
  readonly marked?: IntentRecord;
  /** The call's signal: once it aborts, nothing more is committed and what the nodes made is undone. */
  readonly signal?: AbortSignal;
}

/** Provision: instantiates allocated slivers on their nodes. */
export async function provision(
  state: AggregateState,
  ctx: CallContext,
  req: AggregateProvisionRequest,
): Promise<AggregateProvisionResponse> {
  const { ledger, deps } = state;
  const arrival = state.arrive();
  const access = deps.access.chain(ctx, 'sliver.create');
  const { slice, slivers } = resolveTargets(ledger, req.urns);
  requireOwnSlice(access, slice, slivers);
  const asked = req.expiresAt?.getTime();
  if (asked !== undefined && (!Number.isFinite(asked) || asked <= state.now))
    throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });

  return state.sliceLocks.run(slice.urn, async () => {
    refuseSuperseded(ledger, { sliceUrn: slice.urn, sliceAuthorityUrn: access.sliceAuthority.urn, arrival }, 'Provision');
    let cur = ledger.slices.get(slice.urn);
    if (!cur) throw new NotFoundError(`slice ${slice.urn} is gone (its holds expired or it was deleted); allocate again`);
    // The peer sites' stitch points, kept on the slice's stitched links (checked first: a bad one changes nothing).
    const ours = new Set(deps.registry.all().flatMap((n) => (n.underlayAddress ? [n.underlayAddress] : [])));
    const stitched = withPeerPoints(cur, req.peerStitchPoints?.points ?? [], ours);
    if (stitched) {
      const base = cur;
      await state.mutate((tx) => tx.putSlice({ ...(ledger.slices.get(base.urn) ?? base), links: stitched }), { signal: ctx.signal });
      cur = ledger.slices.get(slice.urn) ?? cur;
    }
    if (cur.shutDown)
      throw new FailedPreconditionError(
        `slice ${slice.urn} is shut down at this site (${cur.shutDown.reason}); ask the site's administrators`,
        { rule: 'shutdown' },
      );
    duringGrace(
      state,
      slivers.filter((s) => ledger.slivers.get(s.urn)?.allocation === 'allocated').map((s) => s.nodeUrn),
      'cannot provision',
    );
    const now = state.now;
    const outcomes = new Map<string, Outcome>();
    const toInstantiate: SliverRecord[] = [];
    for (const s0 of slivers) {
      const s = ledger.slivers.get(s0.urn);
      if (!s) {
        outcomes.set(s0.urn, failure(Status.FAILED_PRECONDITION, `sliver ${s0.urn} is gone: its hold expired; allocate again`));
        continue;
      }
      const ready = provisionable(state, s, access, now, asked);
      if (ready === 'done') outcomes.set(s.urn, SUCCESS);
      else if (ready.ok) toInstantiate.push(s);
      else outcomes.set(s.urn, ready);
    }
    const failures = [...outcomes].filter(([, o]) => !o.ok);
    if (!req.bestEffort && failures.length)
      throwFailures(
        'Provision',
        failures.map(([u, o]) => ({ sliver: ledger.slivers.get(u) ?? slivers.find((s) => s.urn === u)!, outcome: o })),
      );
    if (toInstantiate.length) {
      const done = await instantiate(state, cur, toInstantiate, {
        kind: 'provision',
        start: req.start,
        asked,
        deadline: ctx.deadline,
        allOrNothing: !req.bestEffort,
        signal: ctx.signal,
      });
      for (const [u, o] of done) outcomes.set(u, o);
      const bad = [...done].filter(([, o]) => !o.ok);
      if (!req.bestEffort && bad.length)
        throwFailures(
          'Provision',
          bad.map(([u, o]) => ({ sliver: ledger.slivers.get(u) ?? toInstantiate.find((s) => s.urn === u)!, outcome: o })),
        );
    }
    const after = ledger.slices.get(slice.urn);
    return {
      results: slivers.map((s) => state.resultOf(ledger.slivers.get(s.urn) ?? s, outcomes.get(s.urn) ?? SUCCESS)),
      manifestDocument: after && after.documentFormat ? manifestDocument(after, ledger.sliversOf(after.urn), deps.maUrn) : '',
    };
  });
}

/** Whether an allocated sliver can be provisioned now. */
function provisionable(
  state: AggregateState,
  s: SliverRecord,
  access: ChainAccess,
  now: number,
  asked: number | undefined,
): Outcome | 'done' {
  const { deps } = state;
  if (s.phase) return failure(Status.UNAVAILABLE, `sliver ${s.urn} is busy (${s.phase}); try again shortly`);
  if (s.allocation === 'provisioned') return 'done';
  if (s.allocation === 'unallocated')
    return failure(Status.FAILED_PRECONDITION, `sliver ${s.urn} is swapped out; swap the slice in (SWAP_IN) instead`);
  if (s.holdExpiresAt !== undefined && s.holdExpiresAt <= now) {
    return failure(
      Status.FAILED_PRECONDITION,
      `the hold on ${s.urn} expired at ${new Date(s.holdExpiresAt).toISOString()}; allocate again`,
    );
  }
  const node = deps.registry.get(s.nodeUrn);
  if (!node) return failure(Status.NOT_FOUND, `node ${s.nodeUrn} is no longer enrolled; allocate again`);
  if (!node.up)
    return failure(
      Status.UNAVAILABLE,
      node.unheard
        ? `node ${s.nodeUrn} has not sent a heartbeat since this management authority restarted; try again shortly`
        : `node ${s.nodeUrn} is DOWN (no heartbeat for three intervals); try again when it is UP or allocate elsewhere`,
    );
  const owner = ownerProblem(node, now, state.admissionInputs(now).revoked);
  if (owner) return failure(Status.FAILED_PRECONDITION, owner);
  const exp = asked ?? s.expiresAt;
  const latest = lifetimeCap({ maxLifetimeS: deps.settings.maxLifetimeS, grant: access.grant, createdAt: s.createdAt, now, node });
  if (exp > latest.at)
    return failure(
      Status.PERMISSION_DENIED,
      `expiry ${new Date(exp).toISOString()} of ${s.urn} is past ${latest.rule} (${new Date(latest.at).toISOString()}); ask for an earlier one`,
    );
  if (exp <= now)
    return failure(Status.FAILED_PRECONDITION, `sliver ${s.urn} expired at ${new Date(exp).toISOString()}; renew it or allocate again`);
  return SUCCESS;
}

/**
 * Instantiates slivers on their nodes: intent + busy marks in one batch, the
 * node calls in parallel (with each sliver's interfaces), then one batch with
 * the outcome. Slivers that failed (all of them when `allOrNothing` and one
 * failed) are undone on their nodes and go back to where they were.
 */
export async function instantiate(
  state: AggregateState,
  slice: SliceRecord,
  candidates: readonly SliverRecord[],
  how: InstantiateOptions,
): Promise<Map<string, Outcome>> {
  const { ledger, deps } = state;
  const outcomes = new Map<string, Outcome>();
  // 1. The intent and the busy marks, in one batch (checked again under the mutex).
  const intent =
    how.marked ??
    (await state.mutate(
      (tx, now) => {
        const items: { sliverUrn: string; nodeUrn: string }[] = [];
        for (const s0 of candidates) {
          const s = ledger.slivers.get(s0.urn);
          if (!s || s.phase || s.allocation !== 'allocated' || (s.holdExpiresAt !== undefined && s.holdExpiresAt <= now)) {
            outcomes.set(
              s0.urn,
              failure(
                Status.FAILED_PRECONDITION,
                `sliver ${s0.urn} is no longer allocated (its hold may have just expired); allocate again`,
              ),
            );
            continue;
          }
          items.push({ sliverUrn: s.urn, nodeUrn: s.nodeUrn });
          tx.putSliver({
            ...s,
            phase: 'provisioning',
            generation: s.generation + 1,
            expiresAt: how.asked ?? s.expiresAt,
            updatedAt: now,
            // The link plan; `netns: undefined` clears a site-host namespace name a record made before node links has.
            interfaces: linkInterfaces(slice.urn, slice.links, s.clientId),
            netns: undefined,
          });
        }
        const rec = newIntent(how.kind, slice.urn, items, now);
        if (items.length) tx.putIntent(rec);
        // A slice allocated before node links has links without a VNI: they take one now, in this batch.
        const live = ledger.slices.get(slice.urn);
        if (items.length && live?.links.some((l) => l.vni === undefined))
          tx.putSlice({ ...live, links: withVnis(live.links, vnisInUse(ledger.slices.values()), vniBase(deps.maUrn)) });
        return rec;
      },
      how.signal ? { signal: how.signal } : {},
    ));
  if (intent.items.length === 0) return outcomes;
  const marked = intent.items.map((i) => ledger.slivers.get(i.sliverUrn) as SliverRecord);

  // 2. The node managers, in parallel, each call with a deadline and the sliver's interfaces (a link that cannot
  // be wired now fails its sliver, naming the link and endpoint). What is the same for every node is made once.
  const users = usersToWire(slice.users);
  const sliceAuthorityJwk = JSON.stringify(slice.sliceAuthorityJwk);
  const sliceIncarnation = incarnationOf(slice);
  const created = await deps.nodes.fanOut(
    marked,
    (s) => s.nodeUrn,
    (c, opts, s) =>
      c.createSliver(
        {
          users,
          requestId: `ma-${s.name}-g${s.generation}`,
          sliverUrn: s.urn,
          sliceUrn: s.sliceUrn,
          sliceAuthorityUrn: slice.sliceAuthorityUrn,
          sliceAuthorityJwk,
          providerUrn: slice.providerUrn,
          resources: toSpec(s.resources, 0, s.image),
          expiresAt: new Date(s.expiresAt),
          exclusive: s.exclusive,
          interfaces: interfacesToWire(state, ledger.slices.get(slice.urn) ?? slice, s),
          allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
          clientId: s.clientId,
          start: how.start,
          sliceIncarnation,
        },
        opts,
      ),
    { deadline: how.deadline },
  );
  const reply = new Map<string, NodeResult<{ sliver?: Sliver | undefined }>>();
  for (const [i, r] of created.entries()) reply.set((marked[i] as SliverRecord).urn, r);

  // 3. The outcome, in one batch: provisioned, or left for undoing.
  const anyFailed = [...reply.values()].some((r) => !r.ok);
  const keep = (urn: string): boolean => reply.get(urn)?.ok === true && !(how.allOrNothing && anyFailed);
  await recordOutcome(state, intent, how, () =>
    state.mutate(
      (tx, now) => {
        const left = intent.items.filter((i) => !keep(i.sliverUrn));
        for (const item of intent.items) {
          if (!keep(item.sliverUrn)) continue;
          const s = ledger.slivers.get(item.sliverUrn) as SliverRecord;
          const r = reply.get(item.sliverUrn) as { ok: true; value: { sliver?: Sliver } };
          const nm = r.value.sliver;
          // The login name is the one the node gave now (a swap-in may land on another node).
          const { phase: _p, holdExpiresAt: _h, sshUsername: _u, ...rest } = s;
          tx.putSliver({
            ...rest,
            allocation: 'provisioned',
            operational: operationalFromWire(nm?.operationalState, how.start ? 'configuring' : 'notready'),
            expiresAt: nm?.expiresAt?.getTime() ?? s.expiresAt,
            error: '',
            updatedAt: now,
            interfaces: withApplied(s.interfaces, nm?.interfaces),
            ...(nm?.ssh?.username ? { sshUsername: nm.ssh.username } : {}),
          });
        }
        if (how.kind === 'swap-in' && !anyFailed) {
          const sl = ledger.slices.get(slice.urn);
          if (sl && sl.swappedOut) tx.putSlice({ ...sl, swappedOut: false });
        }
        if (left.length === 0) tx.delIntent(intent.id);
        else tx.putIntent({ ...intent, items: left });
      },
      how.signal ? { signal: how.signal } : {},
    ),
  );
  for (const item of intent.items) {
    const r = reply.get(item.sliverUrn);
    if (keep(item.sliverUrn)) outcomes.set(item.sliverUrn, SUCCESS);
    else if (r && !r.ok) outcomes.set(item.sliverUrn, failure(r.code, r.reason));
    else
      outcomes.set(
        item.sliverUrn,
        failure(
          Status.ABORTED,
          'not provisioned because another sliver of this all-or-nothing request failed; the others are listed with their reasons',
        ),
      );
  }
  // 4. Undo what did not make it; nodes new to the slice authority get its revocation list.
  if (ledger.intents.has(intent.id)) await settle(state, intent.id, { deadline: how.deadline });
  const kept = intent.items.filter((i) => keep(i.sliverUrn)).map((i) => i.nodeUrn);
  if (kept.length) await relayTo(state, slice, kept, how.deadline);
  if (anyFailed)
    deps.log.warn(
      { slice: slice.urn, failed: [...outcomes.values()].filter((x) => !x.ok).length },
      `${how.kind} failed on some nodes; undone there`,
    );
  else deps.log.info({ slice: slice.urn, slivers: intent.items.length }, how.kind === 'provision' ? 'provisioned' : 'swapped in');
  return outcomes;
}

/**
 * Writes an instantiation's outcome. When that is refused — the call ended meanwhile, or the store
 * cannot write — nothing of it is committed: the intent still names every sliver, so it is settled
 * now (deleted on the nodes, back to allocated) and the refusal goes to the caller. What cannot be
 * settled now stays in the intent, which is retried.
 */
async function recordOutcome(
  state: AggregateState,
  intent: IntentRecord,
  how: InstantiateOptions,
  write: () => Promise<void>,
): Promise<void> {
  try {
    await write();
  } catch (err) {
    state.deps.log.warn({ slice: intent.sliceUrn, err: (err as Error).message }, `${how.kind} not recorded; undoing it on the nodes`);
    await settle(state, intent.id, {}).catch((e: unknown) =>
      state.deps.log.warn({ slice: intent.sliceUrn, err: (e as Error).message }, 'undo not recorded yet; the intent is retried'),
    );
    throw err;
  }
}
