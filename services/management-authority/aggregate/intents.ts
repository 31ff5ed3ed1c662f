/**
 * Intents: work spanning the MA and node managers is written first as an
 * intent (with its slivers marked busy), so that it can be settled whatever
 * happens next. Settling undoes provision and swap-in, and finishes delete,
 * swap-out and users updates; at start-up every intent the previous process left is
 * settled (crash recovery), and intents whose nodes could not be reached are
 * retried until they are done.
 */
import { randomBytes } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import type { IntentRecord } from '../records.js';
import type { AggregateState } from './aggregate-state.js';
import { SUCCESS, failure } from '../../core/rpc/outcome.js';
import { type Outcome } from './outcome.js';
import { pushUsers } from './users.js';
import { withoutVnis } from './vnis.js';

/** A new intent record (written by the caller, in the batch that marks its slivers busy). */
export function newIntent(kind: IntentRecord['kind'], sliceUrn: string, items: IntentRecord['items'], now: number): IntentRecord {
  return { id: `int-${randomBytes(8).toString('hex')}`, kind, sliceUrn, items, createdAt: now };
}

/**
 * Deletes an intent's remaining slivers on their nodes (each node removes the
 * sliver's link interfaces with it), then records each one that is done: provision → back to
 * allocated (or released when the hold ended), swap-in and swap-out →
 * unallocated, delete → forgotten. Slivers whose node could not be reached
 * stay in the intent for the next try. Callers hold the slice's lock.
 */
export async function settle(state: AggregateState, id: string, bounds: { deadline?: number }): Promise<Map<string, Outcome>> {
  const { ledger, deps } = state;
  const out = new Map<string, Outcome>();
  const intent = ledger.intents.get(id);
  if (!intent) return out;
  // A users update is not undone: it is finished (handed to the nodes still without it).
  if (intent.kind === 'users') return pushUsers(state, id, bounds);
  const phase =
    intent.kind === 'provision' || intent.kind === 'swap-in' ? 'provisioning' : intent.kind === 'delete' ? 'deleting' : 'swapping-out';
  const items = intent.items.filter((i) => ledger.slivers.get(i.sliverUrn)?.phase === phase);
  const deleted = await deps.nodes.fanOut(
    items,
    (i) => i.nodeUrn,
    async (c, opts, i) => c.deleteSliver({ sliverUrn: i.sliverUrn }, opts),
    bounds.deadline !== undefined ? { deadline: bounds.deadline } : {},
  );
  const ok = new Set<string>();
  for (const [k, r] of deleted.entries()) {
    const item = items[k] as (typeof items)[number];
    if (r.ok) {
      ok.add(item.sliverUrn);
      out.set(item.sliverUrn, SUCCESS);
    } else {
      // A node that no longer knows the MA's sliver has nothing to undo.
      if (r.code === Status.NOT_FOUND && !deps.registry.has(item.nodeUrn)) ok.add(item.sliverUrn);
      else out.set(item.sliverUrn, failure(r.code, `${r.reason} (the MA keeps trying; the node also reaps the sliver when it expires)`));
    }
  }
  await state.mutate((tx, now) => {
    for (const urn of ok) {
      const s = ledger.slivers.get(urn);
      if (!s || s.phase !== phase) continue;
      const { phase: _p, netns: _n, ...rest } = s;
      const base = { ...rest, interfaces: [], updatedAt: now };
      if (intent.kind === 'delete') tx.delSliver(urn);
      else if (intent.kind === 'provision') {
        if (s.holdExpiresAt !== undefined && s.holdExpiresAt > now)
          tx.putSliver({ ...base, allocation: 'allocated', operational: 'pending' });
        else tx.delSliver(urn);
      } else {
        const { holdExpiresAt: _h, ...unheld } = base;
        tx.putSliver({ ...unheld, allocation: 'unallocated', operational: 'pending' });
      }
    }
    const left = intent.items.filter((i) => {
      if (ok.has(i.sliverUrn)) return false;
      return ledger.slivers.get(i.sliverUrn)?.phase === phase;
    });
    if (left.length) tx.putIntent({ ...intent, items: left });
    else tx.delIntent(intent.id);
    const slice = ledger.slices.get(intent.sliceUrn);
    // A swap-in undone is swapped out again: its links' VNIs go back to the site.
    if (slice && intent.kind === 'swap-in') tx.putSlice({ ...slice, swappedOut: true, links: withoutVnis(slice.links) });
    // A slice with no sliver left is gone.
    const remaining = ledger
      .sliversOf(intent.sliceUrn)
      .filter(
        (s) =>
          !(
            ok.has(s.urn) &&
            (intent.kind === 'delete' || (intent.kind === 'provision' && !(s.holdExpiresAt !== undefined && s.holdExpiresAt > now)))
          ),
      );
    if (slice && remaining.length === 0) tx.delSlice(slice.urn);
  });
  return out;
}

/**
 * After a restart: finishes or undoes every intent left by the previous
 * process and runs `sweep` (expired holds). Intents whose nodes cannot be
 * reached stay and are retried. (Link devices are the nodes' own: each node
 * manager removes at its start what no sliver of its explains.)
 */
export async function recover(state: AggregateState, sweep: () => Promise<unknown>): Promise<{ settled: number; pending: number }> {
  const { ledger, deps } = state;
  let settled = 0;
  for (const id of [...ledger.intents.keys()]) {
    const intent = ledger.intents.get(id);
    if (!intent) continue;
    await state.sliceLocks.run(intent.sliceUrn, () => settle(state, id, {}));
    if (!ledger.intents.has(id)) settled++;
  }
  await sweep();
  if (settled || ledger.intents.size) deps.log.info({ settled, pending: ledger.intents.size }, 'intents of the previous run settled');
  return { settled, pending: ledger.intents.size };
}

/** Retries unfinished intents (e.g. a delete on a node that was down). */
export async function retryIntents(state: AggregateState): Promise<void> {
  for (const [id, intent] of [...state.ledger.intents]) {
    await state.sliceLocks.run(intent.sliceUrn, () => settle(state, id, {}));
  }
}
