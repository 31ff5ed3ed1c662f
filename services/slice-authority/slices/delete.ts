/**
 * DeleteSlice (and expiry): a `delete` intent is written first, naming every
 * site that holds something of the slice; each site leaves the intent as it
 * confirms, and when none is left the slice takes the intent's final state
 * (DELETED, EXPIRED or FAILED). A site that is down stays in the intent and
 * is retried. A site's status keeps its own cause through the cleanup: while
 * the Delete there is unfinished it adds "delete not finished, retrying",
 * and once it is done "cleaned up" (a site that had worked shows its status
 * again).
 */
import { status as Status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { AllocationState } from '../../generated/fedlab/v1/common.js';
import { FailedPreconditionError } from '../../core/errors.js';
import type { Caller } from '../accounts.js';
import { sliceToWire, sliversOf, type IntentRecord, type SiteRecord, type SliceRecord, type StateName } from '../records.js';
import { OK } from '../../core/rpc/outcome.js';
import type { SliceBookState } from './book-state.js';
import { ownedSlice } from './read.js';
import { deleteAt, siteResult, type SiteCall, type SliceWithResults } from './site-calls.js';
import { holdsSlivers } from './sliver-status.js';

/** DeleteSlice: every site, idempotent. DELETED, or DELETING while a site still has to confirm (retried in the background). */
export async function deleteSlice(book: SliceBookState, caller: Caller, urn: string, signal?: AbortSignal): Promise<SliceWithResults> {
  ownedSlice(book, caller, urn);
  if (book.stopping) throw new FailedPreconditionError('the slice authority is stopping; try again shortly');
  const calls = await book.track(book.locks.run(urn, () => deleteLocked(book, urn, 'deleted', signal)));
  return { slice: sliceToWire(book.slices.get(urn) as SliceRecord), results: calls.map((c) => siteResult(book, c)) };
}

/**
 * Starts deleting a slice everywhere (`final`: deleted or expired); call holding the slice's lock.
 * With the call's `signal`, the first batch is not committed once the call has ended.
 */
export async function deleteLocked(
  book: SliceBookState,
  urn: string,
  final: 'deleted' | 'expired',
  signal?: AbortSignal,
): Promise<SiteCall[]> {
  const rec = book.slices.get(urn) as SliceRecord;
  if (rec.state === 'deleted' || rec.state === 'expired') return [];
  const pending = book.intentOf(urn, 'delete');
  // Sites with live slivers, and those an unfinished delete still has to clean; a site that never held
  // anything (refused, or never reached) is not asked again.
  // A failed sliver that its site still holds (a start that failed, or one GetSlice saw fail) is deleted too.
  const sites = [...new Set([...(pending?.sites ?? []), ...rec.sites.filter(holdsSlivers).map((s) => s.site)])];
  // A users update still owed to some site is moot once the slice goes.
  const users = book.intentOf(urn, 'users');
  if (sites.length === 0) {
    const next: SliceRecord = { ...rec, state: final, updatedAt: book.now };
    const batch = book.deps.store.batch().put(book.sliceTable, urn, next);
    if (users) batch.del(book.intentTable, users.id);
    await batch.write({ sync: true, ...(signal ? { signal } : {}) });
    if (users) book.intents.delete(users.id);
    book.slices.set(urn, next);
    book.publish(next, { message: `slice ${final}`, snapshot: true });
    return [];
  }
  const intent: IntentRecord = {
    id: pending?.id ?? `int-${randomBytes(8).toString('hex')}`,
    kind: 'delete',
    sliceUrn: urn,
    sites,
    final,
    createdAt: pending?.createdAt ?? book.now,
  };
  const next: SliceRecord = { ...rec, state: 'deleting', updatedAt: book.now };
  const batch = book.deps.store.batch().put(book.intentTable, intent.id, intent).put(book.sliceTable, urn, next);
  if (users) batch.del(book.intentTable, users.id);
  await batch.write({ sync: true, ...(signal ? { signal } : {}) });
  if (users) book.intents.delete(users.id);
  book.intents.set(intent.id, intent);
  book.slices.set(urn, next);
  book.publish(next, { message: final === 'expired' ? 'slice expired: deleting it at every site' : 'deleting the slice at every site' });
  return finishDelete(book, intent);
}

/**
 * Works a delete intent: Delete at each of its sites; sites that confirm
 * leave the intent; when none is left the slice takes the intent's final
 * state. Call holding the slice's lock.
 */
export async function finishDelete(book: SliceBookState, intent: IntentRecord): Promise<SiteCall[]> {
  const calls = await Promise.all(intent.sites.map((d) => deleteAt(book, intent.sliceUrn, d, [intent.sliceUrn])));
  const remaining = calls.filter((c) => c.outcome.code !== 0).map((c) => c.site);
  const rec = book.slices.get(intent.sliceUrn);
  const batch = book.deps.store.batch();
  let next: SliceRecord | undefined;
  if (rec) {
    const sites = rec.sites.map((s) => {
      const call = calls.find((c) => c.site === s.site);
      return call ? cleanupStatus(s, call) : s;
    });
    const state: StateName = remaining.length === 0 && intent.final ? intent.final : rec.state;
    next = { ...rec, sites, state, updatedAt: book.now };
    batch.put(book.sliceTable, rec.urn, next);
  }
  if (remaining.length === 0) batch.del(book.intentTable, intent.id);
  else batch.put(book.intentTable, intent.id, { ...intent, sites: remaining });
  await batch.write({ sync: true });
  if (remaining.length === 0) book.intents.delete(intent.id);
  else book.intents.set(intent.id, { ...intent, sites: remaining });
  if (next && rec) {
    book.slices.set(rec.urn, next);
    publishDeleted(book, rec, next, calls);
    book.publish(next, {
      message: remaining.length ? `slice ${next.state}; still to clean up at ${remaining.join(', ')}` : `slice ${next.state}`,
      snapshot: true,
    });
  }
  return calls;
}

/** What a site's status gets once the cleanup there is done. */
const CLEANED = '; cleaned up';

/**
 * A site's record after a Delete there: its own cause (what it said before any cleanup) is kept, with
 * "cleaned up" once the Delete is done, or "delete not finished, retrying" while it is not.
 */
function cleanupStatus(s: SiteRecord, call: SiteCall): SiteRecord {
  const { cause: kept, ...rest } = s;
  const cause = kept ?? { code: s.code, reason: s.reason };
  if (call.outcome.code === Status.OK) {
    const reason = cause.code === Status.OK || cause.reason.endsWith(CLEANED) ? cause.reason : `${cause.reason}${CLEANED}`;
    return { ...rest, code: cause.code, reason, slivers: [] };
  }
  const pending = `delete not finished, retrying: ${call.outcome.reason}`;
  return cause.code === Status.OK
    ? { ...rest, cause, code: call.outcome.code, reason: pending }
    : { ...rest, cause, code: cause.code, reason: `${cause.reason}; ${pending}` };
}

/** Tells watchers what each site's Delete did, per sliver. */
function publishDeleted(book: SliceBookState, before: SliceRecord, next: SliceRecord, calls: readonly SiteCall[]): void {
  for (const c of calls) {
    for (const r of c.results)
      book.publish(next, {
        site: c.site,
        nodeUrn: r.nodeUrn,
        sliverUrn: r.sliverUrn,
        status: r.status ?? OK,
        message: r.status?.code ? `delete failed: ${r.status.reason}` : 'deleted',
      });
    if (c.outcome.code !== 0) {
      book.publish(next, { site: c.site, status: c.outcome, message: c.outcome.reason });
      continue;
    }
    // A site that had already let the slivers go (its own expiry sweep can come first) answers with
    // no per-sliver results; its slivers are gone all the same, and every watcher hears so per node.
    const told = new Set(c.results.map((r) => r.sliverUrn));
    const site: SiteRecord | undefined = before.sites.find((x) => x.site === c.site);
    for (const x of site ? sliversOf(site) : []) {
      if (x.allocationState === AllocationState.ALLOCATION_STATE_UNALLOCATED || told.has(x.urn)) continue;
      book.publish(next, { site: c.site, nodeUrn: x.nodeUrn, sliverUrn: x.urn, status: OK, message: 'deleted' });
    }
  }
}
