/**
 * Operational actions: PerformOperationalAction (start, stop, restart on the
 * slivers' nodes; emulab swap-out and swap-in of a whole slice; the slice's
 * users replaced: users.ts) and Shutdown
 * (the slice stopped and frozen at this site).
 */
import { status as Status } from '@grpc/grpc-js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError } from '../../core/errors.js';
import type { CallContext } from '../../core/rpc/context.js';
import { text, urnField } from '../../core/validate.js';
import type { SliverResult } from '../../generated/fedlab/v1/common.js';
import {
  OperationalAction,
  type AggregatePerformOperationalActionRequest,
  type AggregateShutdownRequest,
} from '../../generated/fedlab/v1/aggregate.js';
import { SliverAction } from '../../generated/fedlab/v1/node_manager.js';
import type { Peer } from '../access.js';
import type { SliverRecord } from '../records.js';
import type { AggregateState } from './aggregate-state.js';
import { requireOwnSlice, resolveTargets } from './call-targets.js';
import { SUCCESS, failure } from '../../core/rpc/outcome.js';
import { throwFailures, type Outcome } from './outcome.js';
import { swapIn, swapOut } from './swap.js';
import { updateUsers } from './users.js';
import { operationalFromWire } from './to-wire.js';
import { duringGrace } from './grace.js';

/** The node manager's action for an aggregate action (swaps are the aggregate's own). */
const NODE_ACTION = new Map<OperationalAction, SliverAction>([
  [OperationalAction.OPERATIONAL_ACTION_START, SliverAction.SLIVER_ACTION_START],
  [OperationalAction.OPERATIONAL_ACTION_STOP, SliverAction.SLIVER_ACTION_STOP],
  [OperationalAction.OPERATIONAL_ACTION_RESTART, SliverAction.SLIVER_ACTION_RESTART],
]);

/** PerformOperationalAction: start, stop, restart, update users; emulab swap-out and swap-in. */
export async function performAction(
  state: AggregateState,
  ctx: CallContext,
  req: AggregatePerformOperationalActionRequest,
): Promise<SliverResult[]> {
  const { ledger, deps } = state;
  const action = req.action;
  if (action === OperationalAction.OPERATIONAL_ACTION_UPDATE_USERS) return updateUsers(state, ctx, req);
  if (action === OperationalAction.OPERATIONAL_ACTION_SWAP_OUT || action === OperationalAction.OPERATIONAL_ACTION_SWAP_IN) {
    if (!state.rules.swap)
      throw new FailedPreconditionError(`this is a ${deps.settings.style}-style site; swap-out and swap-in are emulab actions`, {
        rule: 'style',
      });
    const access = deps.access.chain(ctx, 'sliver.control');
    if (action === OperationalAction.OPERATIONAL_ACTION_SWAP_IN) deps.access.chain(ctx, 'sliver.create');
    const { slice } = resolveTargets(ledger, req.urns);
    if (req.urns.length !== 1 || req.urns[0] !== slice.urn)
      throw new InvalidArgumentError('swap-out and swap-in act on a whole slice: name the slice URN alone', { field: 'urns' });
    requireOwnSlice(access, slice, ledger.sliversOf(slice.urn));
    return state.sliceLocks.run(slice.urn, () =>
      action === OperationalAction.OPERATIONAL_ACTION_SWAP_OUT
        ? swapOut(state, slice.urn, ctx.deadline, ctx.signal)
        : swapIn(state, access, slice.urn, ctx.deadline, ctx.signal),
    );
  }
  const nodeAction = NODE_ACTION.get(action);
  if (nodeAction === undefined)
    throw new InvalidArgumentError('action must be START, STOP, RESTART, UPDATE_USERS, SWAP_OUT or SWAP_IN', { field: 'action' });
  const access = deps.access.chain(ctx, 'sliver.control');
  const { slice, slivers } = resolveTargets(ledger, req.urns);
  requireOwnSlice(access, slice, slivers);
  return state.sliceLocks.run(slice.urn, async () => {
    const cur = ledger.slices.get(slice.urn) ?? slice;
    if (cur.shutDown && nodeAction !== SliverAction.SLIVER_ACTION_STOP) {
      throw new FailedPreconditionError(
        `slice ${slice.urn} is shut down at this site (${cur.shutDown.reason}); only the site's administrators can lift that`,
        { rule: 'shutdown' },
      );
    }
    if (cur.swappedOut)
      throw new FailedPreconditionError(`slice ${slice.urn} is swapped out; swap it in first (SWAP_IN)`, { rule: 'swapped-out' });
    return control(state, slivers, nodeAction, req.bestEffort, ctx.deadline, ctx.signal);
  });
}

/**
 * Runs a node manager action on provisioned slivers; the caller holds the slice's lock. With the
 * call's `signal`, the states the nodes report are not recorded once the call has ended.
 */
async function control(
  state: AggregateState,
  slivers: readonly SliverRecord[],
  action: SliverAction,
  bestEffort: boolean,
  deadline: number,
  signal?: AbortSignal,
): Promise<SliverResult[]> {
  const { ledger, deps } = state;
  if (!bestEffort)
    duringGrace(
      state,
      slivers.map((s) => ledger.slivers.get(s.urn)?.nodeUrn ?? s.nodeUrn),
      'cannot act on the slivers',
    );
  const outcomes = new Map<string, Outcome>();
  const actionable: SliverRecord[] = [];
  for (const s0 of slivers) {
    const s = ledger.slivers.get(s0.urn);
    if (!s) outcomes.set(s0.urn, failure(Status.NOT_FOUND, `sliver ${s0.urn} is gone`));
    else if (s.phase) outcomes.set(s.urn, failure(Status.UNAVAILABLE, `sliver ${s.urn} is busy (${s.phase}); try again shortly`));
    else if (s.allocation !== 'provisioned')
      outcomes.set(s.urn, failure(Status.FAILED_PRECONDITION, `sliver ${s.urn} is ${s.allocation}, not provisioned; provision it first`));
    else if (!deps.registry.get(s.nodeUrn)?.up)
      outcomes.set(s.urn, failure(Status.UNAVAILABLE, `node ${s.nodeUrn} is DOWN; try again when it is UP`));
    else actionable.push(s);
  }
  if (!bestEffort && outcomes.size) {
    throwFailures(
      'the action',
      [...outcomes].map(([u, o]) => ({ sliver: ledger.slivers.get(u) ?? slivers.find((x) => x.urn === u)!, outcome: o })),
    );
  }
  const res = await deps.nodes.fanOut(
    actionable,
    (s) => s.nodeUrn,
    (c, opts, s) => c.controlSliver({ sliverUrn: s.urn, action }, opts),
    { deadline },
  );
  await state.mutate(
    (tx, t) => {
      for (const [i, r] of res.entries()) {
        const s = actionable[i] as SliverRecord;
        if (!r.ok) {
          outcomes.set(s.urn, failure(r.code, r.reason));
          continue;
        }
        outcomes.set(s.urn, SUCCESS);
        const cur = ledger.slivers.get(s.urn);
        const nm = r.value.sliver;
        if (cur && !cur.phase)
          tx.putSliver({
            ...cur,
            operational: operationalFromWire(nm?.operationalState, cur.operational),
            error: nm?.error ?? '',
            updatedAt: t,
          });
      }
    },
    signal ? { signal } : {},
  );
  return slivers.map((s) => state.resultOf(ledger.slivers.get(s.urn) ?? s, outcomes.get(s.urn) ?? SUCCESS));
}

/** Shutdown: stops every sliver of the slice here and freezes the slice (administrators and the slice's authority). */
export async function shutdown(
  state: AggregateState,
  peer: Peer,
  isAdmin: boolean,
  req: AggregateShutdownRequest,
  deadline: number,
): Promise<SliverResult[]> {
  const { ledger, deps } = state;
  urnField('slice_urn', req.sliceUrn, 'slice');
  const reason = text('reason', req.reason, 500);
  const slice = ledger.slices.get(req.sliceUrn);
  // Refused alike whether or not the slice exists here: a stranger learns nothing of it (docs/api.md, Access rules).
  if (!isAdmin && !(slice && peer.urn === slice.sliceAuthorityUrn && peer.thumbprint === slice.sliceAuthorityKid)) {
    throw new PermissionDeniedError(`only the site's administrators and the slice's own authority may shut ${req.sliceUrn} down`, {
      rule: 'shutdown',
    });
  }
  if (!slice) throw new NotFoundError(`no slice ${req.sliceUrn} at this site`);
  return state.sliceLocks.run(slice.urn, async () => {
    await state.mutate((tx, now) => {
      const cur = ledger.slices.get(slice.urn);
      if (cur) tx.putSlice({ ...cur, shutDown: { reason: reason || 'emergency stop', by: peer.urn, at: now } });
    });
    deps.log.warn({ slice: slice.urn, by: peer.urn, reason }, 'slice shut down at this site');
    const running = ledger.sliversOf(slice.urn).filter((s) => s.allocation === 'provisioned' && !s.phase);
    return control(state, running, SliverAction.SLIVER_ACTION_STOP, true, deadline);
  });
}
