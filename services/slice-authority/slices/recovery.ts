/**
 * The slice authority's background work and its recovery at start-up:
 * expiry (live slices past their expiry are deleted at every site), retries
 * of delete and users intents whose sites did not confirm yet (and roll-backs of
 * creations whose outcome the store refused), and settling what a previous
 * process left unfinished — every `create` intent is rolled back, every
 * `delete` and `users` intent is worked — so no site keeps slivers of a slice without a
 * live record here, and no record points at slivers that are gone.
 */
import { status as Status } from '@grpc/grpc-js';
import type { IntentRecord, SiteRecord, SliceRecord } from '../records.js';
import type { SliceBookState } from './book-state.js';
import { deleteLocked, finishDelete } from './delete.js';
import { finishUsers } from './users.js';

/**
 * Expiry: live slices past their expiry are deleted at every site (node managers also reap on their
 * own); failed ones past it become EXPIRED too (after any cleanup they still owe), leaving the listing.
 */
export async function sweepExpired(book: SliceBookState): Promise<number> {
  const now = book.now;
  const due = [...book.slices.values()].filter(
    (s) => (s.state === 'ready' || s.state === 'partial' || s.state === 'failed') && s.expiresAt <= now && !book.locks.busy(s.urn),
  );
  await Promise.all(due.map((s) => book.track(book.locks.run(s.urn, () => deleteLocked(book, s.urn, 'expired')))));
  if (due.length) book.deps.log.info({ slices: due.map((s) => s.urn) }, 'expired slices deleted');
  return due.length;
}

/** Works an intent that is not a creation: a delete or a users update. */
function finishIntent(book: SliceBookState, intent: IntentRecord): Promise<unknown> {
  return intent.kind === 'users' ? finishUsers(book, intent) : finishDelete(book, intent);
}

/** Retries delete and users intents whose sites did not confirm yet, and rolls back stranded creations. */
export async function retryIntents(book: SliceBookState): Promise<void> {
  const work = [...book.intents.values()]
    .filter((i) => (i.kind !== 'create' || book.stranded.has(i.id)) && !book.locks.busy(i.sliceUrn))
    .map((i) =>
      book.track(
        book.locks.run(i.sliceUrn, async () => {
          let cur = book.intents.get(i.id);
          if (cur?.kind === 'create') {
            cur = await rollBack(
              book,
              cur,
              'rolled back: the slice authority could not record the outcome of its creation; create it again',
            );
            book.stranded.delete(i.id);
          }
          if (cur) await finishIntent(book, cur);
        }),
      ),
    );
  await Promise.all(work);
}

/**
 * Turns a `create` intent into a `delete` intent over all its sites (final FAILED), the slice FAILED
 * with `why` at every site, in one batch; returns the delete intent.
 */
async function rollBack(book: SliceBookState, intent: IntentRecord, why: string): Promise<IntentRecord> {
  const rec = book.slices.get(intent.sliceUrn);
  const del: IntentRecord = {
    id: intent.id,
    kind: 'delete',
    sliceUrn: intent.sliceUrn,
    sites: intent.sites,
    final: 'failed',
    createdAt: book.now,
  };
  const batch = book.deps.store.batch().put(book.intentTable, intent.id, del);
  let next: SliceRecord | undefined;
  if (rec) {
    next = {
      ...rec,
      state: 'failed',
      updatedAt: book.now,
      sites: rec.sites.map(
        (s) => ({ ...s, code: Status.ABORTED, reason: why, slivers: [], manifest: '', expiresAt: undefined }) as SiteRecord,
      ),
    };
    batch.put(book.sliceTable, rec.urn, next);
  }
  await batch.write({ sync: true });
  book.intents.set(intent.id, del);
  if (next) book.slices.set(next.urn, next);
  book.deps.log.warn({ slice: intent.sliceUrn, sites: intent.sites }, why);
  return del;
}

/**
 * Settles what a previous process left unfinished, before the first call:
 * every `create` intent is rolled back (the slice FAILED, Delete at each of
 * its sites), every `delete` and `users` intent is worked once. Sites that do not answer
 * stay in their intents and are retried in the background.
 */
export async function recoverIntents(book: SliceBookState): Promise<{ rolledBack: number; finished: number; pending: number }> {
  let rolledBack = 0;
  for (const intent of [...book.intents.values()]) {
    if (intent.kind !== 'create') continue;
    await rollBack(book, intent, 'rolled back: the slice authority restarted while creating the slice; create it again');
    rolledBack++;
  }
  const before = book.intents.size;
  // A slice's delete is worked before its users update (which it then drops): one at a time per slice.
  await Promise.all([...book.intents.values()].map((i) => book.locks.run(i.sliceUrn, () => finishIntent(book, i))));
  const pending = book.intents.size;
  return { rolledBack, finished: before - pending, pending };
}
