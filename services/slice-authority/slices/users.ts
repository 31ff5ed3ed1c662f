/**
 * UpdateSliceUsers (GENI's geni_update_users): the slice's users are changed
 * — a listed user's keys replaced, users added or removed — and the whole new
 * list handed to every site that holds slivers of the slice. The new list,
 * the request id and a `users` intent naming those sites are one batch; each
 * site is then asked (PerformOperationalAction UPDATE_USERS) within its
 * deadline and leaves the intent once it has the list. A site that did not
 * take it stays in the intent, which the intent retries (and a restart) work
 * until every site has the list as the slice record has it then.
 */
import { createHash, randomBytes } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import { canonicalJson } from '../../core/canonical-json.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError } from '../../core/errors.js';
import { checkSliceUserUrn, checkSliceUsers, type SliceUserRecord } from '../../core/identity/ssh-keys.js';
import { isServiceError } from '../../core/rpc/client.js';
import { OK, type Outcome } from '../../core/rpc/outcome.js';
import { requestId } from '../../core/validate.js';
import { OperationalAction } from '../../generated/fedlab/v1/aggregate.js';
import type { UpdateSliceUsersRequest } from '../../generated/fedlab/v1/slice_authority.js';
import type { Caller } from '../accounts.js';
import { sliceToWire, usersOf, type IntentRecord, type SliceRecord } from '../records.js';
import { siteOutcome } from '../site-outcome.js';
import type { SliceBookState } from './book-state.js';
import { ownedSlice } from './read.js';
import { siteResult, type SiteCall, type SliceWithResults } from './site-calls.js';
import { budget, withRetries } from './site-retry.js';
import { failedOf, holdsSlivers, sliverLine } from './sliver-status.js';

/** Answers after which asking the site again cannot help. */
const NEVER: ReadonlySet<number> = new Set([Status.INVALID_ARGUMENT, Status.UNIMPLEMENTED]);

/** Users can be changed only on a slice whose creation is settled and that is not being deleted. */
function requireUpdatable(rec: SliceRecord): void {
  if (rec.state !== 'ready' && rec.state !== 'partial') {
    throw new FailedPreconditionError(
      `slice ${rec.urn} is ${rec.state}; users can be changed only on a READY or PARTIAL slice${rec.state === 'pending' ? ' (wait until its creation is settled)' : ''}`,
      { rule: 'state' },
    );
  }
}

/** A checked request: what to add (normalised) and which URNs to remove. */
interface CheckedUpdate {
  readonly requestId: string;
  readonly add: SliceUserRecord[];
  readonly remove: string[];
  readonly fingerprint: string;
}

function checkUpdate(req: UpdateSliceUsersRequest): CheckedUpdate {
  const rid = requestId(req.requestId);
  const add = checkSliceUsers(req.add, 'add');
  const remove = [...new Set(req.remove.map((u, i) => checkSliceUserUrn(u, `remove[${i}]`)))].sort();
  const both = add.find((u) => remove.includes(u.urn));
  if (both) {
    throw new InvalidArgumentError(`user ${both.urn} is both in add and in remove; name each user in one of them`, { field: 'remove' });
  }
  const fingerprint = createHash('sha256')
    .update(canonicalJson({ slice: req.sliceUrn, add, remove } as unknown as Record<string, unknown>))
    .digest('base64url');
  return { requestId: rid, add, remove, fingerprint };
}

/** The list after an update: removed users dropped, added ones in (replacing their keys), sorted by URN. */
function merged(current: readonly SliceUserRecord[], add: readonly SliceUserRecord[], remove: readonly string[]): SliceUserRecord[] {
  const byUrn = new Map(current.map((u) => [u.urn, u]));
  for (const urn of remove) byUrn.delete(urn);
  for (const u of add) byUrn.set(u.urn, u);
  return [...byUrn.values()].sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));
}

/**
 * UpdateSliceUsers: records the new list with the request id and a `users` intent, then hands the
 * list to each site; answers the slice and each site's outcome. A retry with the same request id
 * changes nothing more: it asks again the sites that do not have the list yet.
 */
export async function updateSliceUsers(
  book: SliceBookState,
  caller: Caller,
  req: UpdateSliceUsersRequest,
  signal?: AbortSignal,
): Promise<SliceWithResults> {
  if (book.stopping) throw new FailedPreconditionError('the slice authority is stopping; try again shortly');
  const rec0 = ownedSlice(book, caller, req.sliceUrn);
  const checked = checkUpdate(req);
  requireUpdatable(rec0);
  const requestKey = `users ${caller.urn} ${checked.requestId}`;
  return book.track(
    book.locks.run(rec0.urn, async () => {
      const rec = book.slices.get(rec0.urn) as SliceRecord;
      const prior = await book.requestTable.get(requestKey);
      if (prior) {
        if (prior.fingerprint !== checked.fingerprint || prior.sliceUrn !== rec.urn)
          throw new AlreadyExistsError(
            `request id ${checked.requestId} was already used for another UpdateSliceUsers; use a new request id`,
            {
              rule: 'request_id',
            },
          );
        const pending = book.intentOf(rec.urn, 'users');
        const calls = pending && (rec.state === 'ready' || rec.state === 'partial') ? await finishUsers(book, pending) : [];
        return answer(book, rec.urn, calls);
      }
      requireUpdatable(rec);
      const users = checkSliceUsers(merged(rec.users ?? [], checked.add, checked.remove), 'users');
      const pending = book.intentOf(rec.urn, 'users');
      const sites = [...new Set([...(pending?.sites ?? []), ...rec.sites.filter(holdsSlivers).map((s) => s.site)])];
      const next: SliceRecord = { ...rec, users, updatedAt: book.now };
      const intent: IntentRecord = {
        id: pending?.id ?? `int-${randomBytes(8).toString('hex')}`,
        kind: 'users',
        sliceUrn: rec.urn,
        sites,
        createdAt: pending?.createdAt ?? book.now,
      };
      const batch = book.deps.store
        .batch()
        .put(book.sliceTable, rec.urn, next)
        .put(book.requestTable, requestKey, { sliceUrn: rec.urn, fingerprint: checked.fingerprint, createdAt: book.now });
      if (sites.length) batch.put(book.intentTable, intent.id, intent);
      await batch.write({ sync: true, ...(signal ? { signal } : {}) });
      book.slices.set(rec.urn, next);
      if (sites.length) book.intents.set(intent.id, intent);
      book.deps.log.info(
        { slice: rec.urn, users: users.length, added: checked.add.map((u) => u.urn), removed: checked.remove, sites },
        'slice users changed',
      );
      book.publish(next, {
        message: `users changed: ${users.length} users; handing the list to ${sites.join(', ') || 'no site'}`,
        snapshot: true,
      });
      return answer(book, rec.urn, sites.length ? await finishUsers(book, intent) : []);
    }),
  );
}

/** The slice as recorded now and each site's outcome. */
function answer(book: SliceBookState, urn: string, calls: readonly SiteCall[]): SliceWithResults {
  return { slice: sliceToWire(book.slices.get(urn) as SliceRecord), results: calls.map((c) => siteResult(book, c)) };
}

/**
 * Works a `users` intent: each of its sites is handed the slice's users as recorded now; sites that
 * take them leave the intent. A slice no longer READY or PARTIAL drops the intent (its slivers are
 * gone or going). Call holding the slice's lock.
 */
export async function finishUsers(book: SliceBookState, intent: IntentRecord): Promise<SiteCall[]> {
  if (!book.intents.has(intent.id)) return [];
  const rec = book.slices.get(intent.sliceUrn);
  if (!rec || (rec.state !== 'ready' && rec.state !== 'partial')) {
    await book.intentTable.del(intent.id, { sync: true });
    book.intents.delete(intent.id);
    return [];
  }
  const calls = await Promise.all(intent.sites.map((site) => usersAt(book, rec, site)));
  // A site that cannot take a users update at all (one that predates the action) is not asked again.
  const remaining = calls.filter((c) => c.outcome.code !== Status.OK && !NEVER.has(c.outcome.code)).map((c) => c.site);
  const cur = book.intents.get(intent.id) ?? intent;
  // Sites added by an update made meanwhile stay (the lock makes that rare, but a retry may race a restart).
  const left = [...new Set([...remaining, ...cur.sites.filter((s) => !intent.sites.includes(s))])];
  if (left.length === 0) {
    await book.intentTable.del(intent.id, { sync: true });
    book.intents.delete(intent.id);
  } else {
    const next = { ...cur, sites: left };
    await book.intentTable.put(intent.id, next, { sync: true });
    book.intents.set(intent.id, next);
  }
  for (const c of calls) {
    book.publish(rec, {
      site: c.site,
      status: c.outcome,
      message: c.outcome.code === Status.OK ? `site ${c.site} has the users` : `${c.outcome.reason}; the users are handed on again later`,
    });
  }
  if (left.length) book.deps.log.warn({ slice: rec.urn, sites: left }, 'slice users not handed to every site yet; retrying');
  const refused = calls.filter((c) => NEVER.has(c.outcome.code));
  for (const c of refused)
    book.deps.log.warn({ slice: rec.urn, site: c.site, reason: c.outcome.reason }, 'site cannot take slice users; not asked again');
  return calls;
}

/** One site's UPDATE_USERS of the slice, within the site's deadline; OK once the site has the list. */
async function usersAt(book: SliceBookState, rec: SliceRecord, domain: string): Promise<SiteCall> {
  const site = book.deps.sites.get(domain);
  if (!site) return { site: domain, outcome: OK, results: [] };
  const { site_deadline_ms: deadlineMs } = book.deps.limits;
  try {
    const res = await withRetries(
      'UpdateUsers',
      budget(book.now + deadlineMs, () => book.now, deadlineMs),
      (ms) =>
        site.client.performOperationalAction(
          { urns: [rec.urn], action: OperationalAction.OPERATIONAL_ACTION_UPDATE_USERS, bestEffort: true, users: usersOf(rec) },
          { chain: site.chain, deadlineMs: ms },
        ),
    );
    // The site has the list once it answers: it hands it on to each node itself. Slivers it could not
    // reach are reported, not retried from here.
    const bad = failedOf(res.results);
    const outcome: Outcome = bad.length
      ? { code: Status.OK, reason: `site ${domain}: the users are stored; ${bad.length} slivers report: ${bad.map(sliverLine).join('; ')}` }
      : OK;
    return { site: domain, outcome, results: res.results };
  } catch (err) {
    // A site that no longer knows the slice has nothing to hand the users to.
    if (isServiceError(err, Status.NOT_FOUND)) return { site: domain, outcome: OK, results: [] };
    return { site: domain, outcome: siteOutcome(err, domain), results: [] };
  }
}
