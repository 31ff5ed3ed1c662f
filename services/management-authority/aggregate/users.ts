/**
 * UPDATE_USERS (GENI's geni_update_users): a slice's users — and so the SSH
 * keys that may log in to its slivers — replaced by the list its slice
 * authority sends. The new list and a `users` intent naming every
 * provisioned sliver of the slice are one batch; then each sliver's node is
 * handed the list (UpdateSliverUsers) in parallel with deadlines, and the
 * slivers whose node took it leave the intent. The rest stay and are retried
 * with the other intents (and after a restart) until every node has it.
 * Slivers provisioned later get the list in their CreateSliver.
 */
import { randomBytes } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import { InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import { checkSliceUsers } from '../../core/identity/ssh-keys.js';
import type { CallContext } from '../../core/rpc/context.js';
import { SUCCESS, failure } from '../../core/rpc/outcome.js';
import type { SliverResult } from '../../generated/fedlab/v1/common.js';
import type { AggregatePerformOperationalActionRequest } from '../../generated/fedlab/v1/aggregate.js';
import type { IntentRecord, SliverRecord } from '../records.js';
import type { AggregateState } from './aggregate-state.js';
import { requireOwnSlice, resolveTargets } from './call-targets.js';
import type { Outcome } from './outcome.js';
import { usersToWire } from './to-wire.js';

/** UPDATE_USERS on a whole slice: the list stored, then handed to every provisioned sliver's node. */
export async function updateUsers(
  state: AggregateState,
  ctx: CallContext,
  req: AggregatePerformOperationalActionRequest,
): Promise<SliverResult[]> {
  const { ledger, deps } = state;
  const access = deps.access.chain(ctx, 'sliver.control');
  const users = checkSliceUsers(req.users, 'users');
  const { slice } = resolveTargets(ledger, req.urns);
  if (req.urns.length !== 1 || req.urns[0] !== slice.urn)
    throw new InvalidArgumentError('UPDATE_USERS acts on a whole slice: name the slice URN alone', { field: 'urns' });
  requireOwnSlice(access, slice, ledger.sliversOf(slice.urn));
  return state.sliceLocks.run(slice.urn, async () => {
    const intent = await state.mutate(
      (tx, now) => {
        const cur = ledger.slices.get(slice.urn);
        if (!cur) throw new NotFoundError(`no slice ${slice.urn} at this site`);
        tx.putSlice({ ...cur, users });
        // This update names every provisioned sliver: an earlier one still pending is replaced by it.
        for (const [id, i] of ledger.intents) if (i.sliceUrn === slice.urn && i.kind === 'users') tx.delIntent(id);
        const items = ledger
          .sliversOf(slice.urn)
          .filter((s) => s.allocation === 'provisioned' && !s.phase)
          .map((s) => ({ sliverUrn: s.urn, nodeUrn: s.nodeUrn }));
        const rec: IntentRecord = {
          id: `int-${randomBytes(8).toString('hex')}`,
          kind: 'users',
          sliceUrn: slice.urn,
          items,
          createdAt: now,
        };
        if (items.length) tx.putIntent(rec);
        return rec;
      },
      ctx.signal ? { signal: ctx.signal } : {},
    );
    deps.log.info({ slice: slice.urn, users: users.length, slivers: intent.items.length }, 'slice users updated');
    const outcomes = intent.items.length ? await pushUsers(state, intent.id, { deadline: ctx.deadline }) : new Map<string, Outcome>();
    return ledger.sliversOf(slice.urn).map((s) => state.resultOf(s, outcomes.get(s.urn) ?? SUCCESS));
  });
}

/**
 * Works a `users` intent: each named sliver's node is handed the slice's users as the slice record
 * has them now; slivers whose node took them (or that are gone) leave the intent. Returns each
 * sliver's outcome. Callers hold the slice's lock.
 */
export async function pushUsers(state: AggregateState, id: string, bounds: { deadline?: number }): Promise<Map<string, Outcome>> {
  const { ledger, deps } = state;
  const out = new Map<string, Outcome>();
  const intent = ledger.intents.get(id);
  if (!intent) return out;
  const slice = ledger.slices.get(intent.sliceUrn);
  const live = (i: IntentRecord['items'][number]): boolean => {
    const s = ledger.slivers.get(i.sliverUrn);
    return !!slice && s?.allocation === 'provisioned' && !s.phase && s.nodeUrn === i.nodeUrn;
  };
  const items = intent.items.filter(live);
  // A node that is DOWN is not waited for: it gets the list at a retry once it is UP again.
  const reachable = items.filter((i) => deps.registry.get(i.nodeUrn)?.up);
  for (const i of items)
    if (!reachable.includes(i))
      out.set(
        i.sliverUrn,
        failure(Status.UNAVAILABLE, `node ${i.nodeUrn} is not UP (the users are stored; the MA keeps handing them to the node)`),
      );
  const users = usersToWire(slice?.users);
  const res = await deps.nodes.fanOut(
    reachable,
    (i) => i.nodeUrn,
    (c, opts, i) => c.updateSliverUsers({ sliverUrn: i.sliverUrn, users }, opts),
    bounds.deadline !== undefined ? { deadline: bounds.deadline } : {},
  );
  const done = new Map<string, string | undefined>();
  for (const [k, r] of res.entries()) {
    const item = reachable[k] as (typeof items)[number];
    if (r.ok) {
      done.set(item.sliverUrn, r.value.sliver?.ssh?.username || undefined);
      out.set(item.sliverUrn, SUCCESS);
    } else if (r.code === Status.NOT_FOUND) {
      // The node no longer has the sliver: there is nobody to let in or keep out there.
      done.set(item.sliverUrn, undefined);
      out.set(item.sliverUrn, failure(r.code, r.reason));
    } else {
      out.set(item.sliverUrn, failure(r.code, `${r.reason} (the users are stored; the MA keeps handing them to the node)`));
    }
  }
  await state.mutate((tx, now) => {
    for (const [urn, username] of done) {
      const s = ledger.slivers.get(urn) as SliverRecord | undefined;
      if (s && username && username !== s.sshUsername) tx.putSliver({ ...s, sshUsername: username, updatedAt: now });
    }
    const left = items.filter((i) => !done.has(i.sliverUrn));
    if (left.length) tx.putIntent({ ...intent, items: left });
    else tx.delIntent(intent.id);
  });
  const pending = items.length - done.size;
  if (pending) deps.log.info({ slice: intent.sliceUrn, pending }, 'slice users not on every node yet; retrying');
  return out;
}
