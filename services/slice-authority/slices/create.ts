/**
 * CreateSlice: the checked request is admitted (name, request id, quotas)
 * and recorded PENDING with its request id and a `create` intent in one
 * batch; then every site is asked in parallel and the outcome settled — all
 * or nothing rolls back every site that may hold something, best effort
 * keeps what worked and releases what failed. The outcome and the removal of
 * the intent are one batch; a rollback that a site did not confirm is left
 * to a `delete` intent that is retried. The first batch is fenced by the
 * call (not committed once it has ended); an outcome the store refuses
 * leaves the intent stranded, and the retries roll it back (recovery.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import { canonicalJson } from '../../core/canonical-json.js';
import { AlreadyExistsError, FailedPreconditionError, UnavailableError } from '../../core/errors.js';
import { makeUrn } from '../../core/identity/urn.js';
import { SliceMode } from '../../generated/fedlab/v1/common.js';
import { CreateSliceRequest, type Slice } from '../../generated/fedlab/v1/slice_authority.js';
import { checkQuotas, type Caller } from '../accounts.js';
import {
  addUse,
  ENDED,
  LIVE,
  NO_USE,
  sliceToWire,
  storeSlivers,
  type IntentRecord,
  type SiteRecord,
  type SliceRecord,
  type StateName,
  type Use,
} from '../records.js';
import { OK } from '../../core/rpc/outcome.js';
import type { SliceBookState } from './book-state.js';
import { checkCreateRequest } from './create-request.js';
import { createAt, deleteAt, type SiteCreate } from './site-calls.js';
import { liveSlivers, released } from './sliver-status.js';
import { StitchExchange } from './stitch-exchange.js';

/** What a slice counts against its provider's quotas. */
function useOf(rec: SliceRecord): Use {
  return rec.sites.reduce((a, s) => addUse(a, s.use), NO_USE);
}

/**
 * CreateSlice: checks, records the slice PENDING with its intent, then asks
 * the sites (waiting for the outcome when `wait`). A retry with the same
 * request id returns the slice as it is now.
 */
export async function createSlice(
  book: SliceBookState,
  caller: Caller & { account: NonNullable<Caller['account']> },
  req: CreateSliceRequest,
  signal?: AbortSignal,
): Promise<Slice> {
  if (book.stopping) throw new FailedPreconditionError('the slice authority is stopping; try again shortly');
  const now = book.now;
  const { requestId: rid, description, sites, expiresAt, users } = checkCreateRequest(book, req, now);
  const urn = makeUrn(book.domain, 'slice', req.name);
  const fingerprint = createHash('sha256')
    .update(canonicalJson(CreateSliceRequest.toJSON({ ...req, requestId: '', wait: false }) as Record<string, unknown>))
    .digest('base64url');
  const requestKey = `${caller.urn} ${rid}`;

  const admitted = await book.admission.run(async (): Promise<{ rec: SliceRecord; intent?: IntentRecord }> => {
    const prior = await book.requestTable.get(requestKey);
    if (prior) {
      if (prior.fingerprint !== fingerprint)
        throw new AlreadyExistsError(`request id ${rid} was already used for another CreateSlice; use a new request id`, {
          rule: 'request_id',
        });
      const rec = book.slices.get(prior.sliceUrn);
      if (!rec || rec.requestId !== rid)
        throw new FailedPreconditionError(
          `request id ${rid} made slice ${prior.sliceUrn}, which has since been replaced by another request`,
        );
      return { rec };
    }
    const existing = book.slices.get(urn);
    if (existing && !ENDED.has(existing.state)) {
      throw new AlreadyExistsError(
        `slice name ${req.name} is taken (${urn} is ${existing.state}); choose another name or delete that slice first`,
        { rule: 'name' },
      );
    }
    if (existing && [...book.intents.values()].some((i) => i.sliceUrn === urn)) {
      throw new AlreadyExistsError(`slice ${urn} is still being cleaned up at some site; choose another name or try again later`, {
        rule: 'name',
      });
    }
    const mine = [...book.slices.values()].filter((s) => s.providerUrn === caller.urn && LIVE.has(s.state));
    const used = mine.reduce((a, s) => addUse(a, useOf(s)), NO_USE);
    const asked = sites.reduce((a, s) => addUse(a, s.use), NO_USE);
    checkQuotas(caller.urn, caller.account.quotas, mine.length, used, asked);
    const rec: SliceRecord = {
      urn,
      name: req.name,
      providerUrn: caller.urn,
      description,
      mode: req.mode === SliceMode.SLICE_MODE_BEST_EFFORT ? 'best_effort' : 'all_or_nothing',
      state: 'pending',
      start: req.start,
      requestId: rid,
      createdAt: now,
      updatedAt: now,
      expiresAt,
      // Above every number a watcher of the name may hold, also once an ended record of it was purged.
      seq: Math.max(existing?.seq ?? 0, book.deps.hub.lastSequence(urn)) + 1,
      sites,
      // A new life of the name: no credential or sliver of an earlier slice of that name reaches this one.
      incarnation: randomBytes(16).toString('base64url'),
      users,
    };
    const intent: IntentRecord = {
      id: `int-${randomBytes(8).toString('hex')}`,
      kind: 'create',
      sliceUrn: urn,
      sites: sites.map((s) => s.site),
      createdAt: now,
    };
    await book.deps.store
      .batch()
      .put(book.sliceTable, urn, rec)
      .put(book.requestTable, requestKey, { sliceUrn: urn, fingerprint, createdAt: now })
      .put(book.intentTable, intent.id, intent)
      .write({ sync: true, ...(signal ? { signal } : {}) });
    book.slices.set(urn, rec);
    book.intents.set(intent.id, intent);
    book.deps.log.info({ slice: urn, provider: caller.urn, sites: intent.sites, mode: rec.mode }, 'slice requested');
    return { rec, intent };
  });

  if (!admitted.intent) {
    // A retry: the slice as it is now (once stable, if the caller waits).
    if (req.wait && admitted.rec.state === 'pending') await book.locks.run(urn, () => undefined);
    return sliceToWire(book.slices.get(urn) ?? admitted.rec);
  }
  const intent = admitted.intent;
  book.publish(admitted.rec, { message: `slice requested on ${intent.sites.join(', ')}`, snapshot: true });
  const work = book.track(book.locks.run(urn, () => carryOut(book, intent)));
  if (req.wait) {
    try {
      await work;
    } catch (err) {
      if (!book.stranded.has(intent.id)) throw err;
      // The slice was recorded (PENDING) and the sites asked: the caller must not read "nothing was changed".
      throw new UnavailableError(
        `slice ${urn} was requested, but the outcome of its creation could not be recorded (${book.deps.store.failure?.cause ?? (err as Error).message}); the slice authority rolls it back at every site — GetSlice shows it FAILED once that is done; create it again later`,
        { slice: urn },
      );
    }
    return sliceToWire(book.slices.get(urn) as SliceRecord);
  }
  work.catch((err: unknown) => book.deps.log.error({ err, slice: urn }, 'slice creation failed'));
  return sliceToWire(admitted.rec);
}

/** Asks every site of a create intent, then settles the outcome (rolling back as the mode says). */
async function carryOut(book: SliceBookState, intent: IntentRecord): Promise<void> {
  const rec0 = book.slices.get(intent.sliceUrn) as SliceRecord;
  const stitch = new StitchExchange(rec0.sites);
  const outcomes = await Promise.all(rec0.sites.map((s, i) => createAt(book, rec0, intent, i, s, stitch.active ? stitch : undefined)));
  const rec = book.slices.get(intent.sliceUrn) as SliceRecord;
  const failed = rec.sites.filter((_, i) => (outcomes[i] as SiteCreate).outcome.code !== 0).map((s) => s.site);
  const allOrNothing = rec.mode === 'all_or_nothing';

  let sites: SiteRecord[];
  let undo: { site: string; urns: string[] }[] = [];
  if (allOrNothing && failed.length > 0) {
    const why = `rolled back: the slice is all or nothing and ${failed.join(', ')} failed`;
    sites = rec.sites.map((s, i) => {
      const o = outcomes[i] as SiteCreate;
      const reason = o.outcome.code ? o.outcome.reason : why;
      return {
        ...s,
        style: o.style,
        code: o.outcome.code || Status.ABORTED,
        reason,
        slivers: storeSlivers(released(o.slivers, reason)),
        manifest: '',
        expiresAt: undefined,
      } as SiteRecord;
    });
    undo = rec.sites.filter((_, i) => (outcomes[i] as SiteCreate).mayHold).map((s) => ({ site: s.site, urns: [rec.urn] }));
  } else {
    sites = rec.sites.map((s, i) => {
      const o = outcomes[i] as SiteCreate;
      const ok = o.slivers.filter((x) => !x.error);
      const bad = o.slivers.filter((x) => x.error);
      if (ok.length === 0) {
        if (o.mayHold) undo.push({ site: s.site, urns: [rec.urn] });
        return {
          ...s,
          style: o.style,
          code: o.outcome.code || Status.UNKNOWN,
          reason: o.outcome.reason,
          slivers: storeSlivers(released(o.slivers, o.outcome.reason)),
          manifest: '',
          expiresAt: undefined,
        } as SiteRecord;
      }
      // Best effort: failed slivers are released at once (they would hold capacity until the hold ends).
      if (bad.length) undo.push({ site: s.site, urns: bad.map((x) => x.urn).filter((u) => u) });
      return {
        ...s,
        style: o.style,
        code: o.outcome.code,
        reason: o.outcome.reason,
        slivers: storeSlivers(ok.concat(released(bad))),
        manifest: o.manifest,
        ...(o.expiresAt !== undefined ? { expiresAt: o.expiresAt } : {}),
      } as SiteRecord;
    });
  }
  undo = undo.filter((u) => u.urns.length > 0);

  // Rollbacks run before the outcome is written: until then the create intent covers them. A site that
  // did not answer is not waited for again: its Delete is left to the retried intent, so the answer comes
  // within one site deadline.
  const unreachable = new Set(
    rec.sites
      .filter((_, i) => [Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED].includes((outcomes[i] as SiteCreate).outcome.code))
      .map((s) => s.site),
  );
  const undoNow = undo.filter((u) => !(unreachable.has(u.site) && u.urns[0] === rec.urn));
  const undone = await Promise.all(undoNow.map((u) => deleteAt(book, rec.urn, u.site, u.urns)));
  const stillHeld = [
    ...undo.filter((u) => unreachable.has(u.site) && u.urns[0] === rec.urn).map((u) => u.site),
    ...undone.filter((d) => d.outcome.code !== 0 && undoNow.find((u) => u.site === d.site)?.urns[0] === rec.urn).map((d) => d.site),
  ];
  for (const d of undone) {
    if (d.outcome.code === Status.OK) continue;
    book.deps.log.warn({ slice: rec.urn, site: d.site, reason: d.outcome.reason }, 'rollback at a site did not finish; it will be retried');
  }
  const withSlivers = sites.filter((s) => liveSlivers(s).length > 0);
  const state: StateName = allOrNothing
    ? failed.length
      ? 'failed'
      : 'ready'
    : withSlivers.length === 0
      ? 'failed'
      : failed.length || sites.some((s) => s.code !== 0)
        ? 'partial'
        : 'ready';
  const expiries = withSlivers.filter((s) => s.expiresAt !== undefined).map((s) => s.expiresAt as number);
  const expiresAt = expiries.length ? Math.min(rec.expiresAt, ...expiries) : rec.expiresAt;
  const next: SliceRecord = { ...rec, state, sites, expiresAt, updatedAt: book.now };
  const batch = book.deps.store.batch().put(book.sliceTable, rec.urn, next).del(book.intentTable, intent.id);
  let retry: IntentRecord | undefined;
  if (stillHeld.length) {
    retry = {
      id: `int-${randomBytes(8).toString('hex')}`,
      kind: 'delete',
      sliceUrn: rec.urn,
      sites: stillHeld,
      final: state === 'failed' ? 'failed' : 'deleted',
      createdAt: book.now,
    };
    if (state !== 'failed') {
      // A best-effort slice whose site could not be rolled back keeps that site listed as failed; the retry only cleans it.
      retry = { ...retry, final: undefined };
    }
    batch.put(book.intentTable, retry.id, retry);
  }
  try {
    await batch.write({ sync: true });
  } catch (err) {
    // Nothing of the outcome is recorded: the create intent stands, and the intent retries roll it back.
    book.stranded.add(intent.id);
    book.deps.log.error(
      { slice: rec.urn, err: (err as Error).message },
      'the outcome of a slice creation was not recorded; it is rolled back',
    );
    throw err;
  }
  book.intents.delete(intent.id);
  if (retry) book.intents.set(retry.id, retry);
  book.slices.set(rec.urn, next);
  const summary = sites.map((s) => `${s.site} ${s.code === Status.OK ? 'ok' : (Status[s.code] ?? s.code)}`).join(', ');
  book.publish(next, {
    message: `slice ${state}: ${summary}`,
    snapshot: true,
    status: state === 'failed' ? { code: Status.ABORTED, reason: failed.join(', ') } : OK,
  });
  book.deps.log.info({ slice: rec.urn, state, failed }, 'slice settled');
}
