/**
 * The end and the extension of slivers' lives: Delete (holds released at
 * once, provisioned slivers deleted on their nodes through an intent that is
 * retried until done; a Delete of the whole slice leaves a tombstone that
 * fences its stale Allocates and Provisions, see tombstones.ts) and Renew
 * (never past the site maximum, the chain's expiry or ttl, or the node
 * owner's credential). Their first batch is fenced by the call's signal.
 */
import { status as Status } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../../core/errors.js';
import { parseUrn } from '../../core/identity/urn.js';
import type { CallContext } from '../../core/rpc/context.js';
import { urnField } from '../../core/validate.js';
import { AllocationState, type SliverResult } from '../../generated/fedlab/v1/common.js';
import type { AggregateRenewRequest } from '../../generated/fedlab/v1/aggregate.js';
import type { IntentRecord, SliverRecord } from '../records.js';
import { lifetimeCap } from './admission.js';
import type { AggregateState } from './aggregate-state.js';
import { requireOwnSlice, resolveTargets, targetKind } from './call-targets.js';
import { newIntent, settle } from './intents.js';
import { SUCCESS, failure } from '../../core/rpc/outcome.js';
import { throwFailures, type Outcome } from './outcome.js';
import { goneSliverToWire } from './to-wire.js';
import { leaveTombstone } from './tombstones.js';

/** What a Delete of a whole slice by its slice authority adds to its first batch: the tombstone's call. */
interface DeleteOptions {
  readonly signal?: AbortSignal;
  readonly tombstone?: { readonly sliceAuthorityUrn: string; readonly arrival: number };
}

/** Delete: releases holds at once; deletes provisioned slivers on their nodes (retried until done). Always per sliver. */
export async function deleteSlivers(state: AggregateState, ctx: CallContext, urns: readonly string[]): Promise<SliverResult[]> {
  const { ledger, deps } = state;
  const arrival = state.arrive();
  const access = deps.access.chain(ctx, 'sliver.delete');
  const sa = access.sliceAuthority.urn;
  // Deleting what is already gone succeeds: gone slivers are reported UNALLOCATED.
  const gone = Array.isArray(urns) ? urns.filter((u) => !ledger.slivers.has(u) && !ledger.slices.has(u)) : [];
  if (gone.length === urns.length && urns.length > 0) {
    const kinds = urns.map((u, i) => urnField(`urns[${i}]`, u, targetKind(u, i)).kind);
    // A whole slice gone here still leaves a tombstone: a stale Allocate of it may be on its way (or
    // queued on the slice's lock), and a slice it allocated meanwhile is deleted now.
    if (urns.length === 1 && kinds[0] === 'slice') {
      const sliceUrn = urns[0] as string;
      await state.sliceLocks.run(sliceUrn, async () => {
        const now = ledger.slices.get(sliceUrn);
        if (now && now.sliceAuthorityUrn === sa && now.sliceAuthorityKid === access.sliceAuthority.kid) {
          requireOwnSlice(access, now, ledger.sliversOf(sliceUrn));
          await deleteLocked(state, sliceUrn, ledger.sliversOf(sliceUrn), ctx.deadline, {
            signal: ctx.signal,
            tombstone: { sliceAuthorityUrn: sa, arrival },
          });
        } else if (!now) {
          await state.mutate((tx, t) => leaveTombstone(ledger, tx, { sliceUrn, sliceAuthorityUrn: sa, arrival }, t), {
            signal: ctx.signal,
          });
        }
      });
    }
    return gone
      .filter((u) => parseUrn(u).kind === 'sliver')
      .map((u) => ({ sliverUrn: u, nodeUrn: '', status: { code: 0, reason: '' }, sliver: goneSliverToWire(u, '', deps.maUrn) }));
  }
  const { slice, slivers } = resolveTargets(
    ledger,
    urns.filter((u) => !gone.includes(u)),
  );
  requireOwnSlice(access, slice, slivers);
  const whole = urns.length === 1 && urns[0] === slice.urn;
  const results = await state.sliceLocks.run(slice.urn, async () => {
    // Slivers allocated since the call arrived (a stale Allocate that got the lock first) go too.
    const targets = whole ? ledger.sliversOf(slice.urn) : slivers;
    return deleteLocked(state, slice.urn, targets, ctx.deadline, {
      signal: ctx.signal,
      ...(whole ? { tombstone: { sliceAuthorityUrn: sa, arrival } } : {}),
    });
  });
  return [
    ...results,
    ...gone.map((u) => ({
      sliverUrn: u,
      nodeUrn: '',
      status: { code: 0, reason: '' },
      sliver: goneSliverToWire(u, slice.urn, deps.maUrn),
    })),
  ];
}

/**
 * Deletes slivers of one slice; the caller holds the slice's lock. With `options.signal` the first
 * batch (holds released, the intent, the tombstone) is not committed once the call has ended.
 */
export async function deleteLocked(
  state: AggregateState,
  sliceUrn: string,
  slivers: readonly SliverRecord[],
  deadline: number,
  options: DeleteOptions = {},
): Promise<SliverResult[]> {
  const { ledger, deps } = state;
  const outcomes = new Map<string, Outcome>();
  const last = new Map<string, SliverRecord>();
  const intent = await state.mutate(
    (tx, now): IntentRecord => {
      const items: { sliverUrn: string; nodeUrn: string }[] = [];
      for (const s0 of slivers) {
        const s = ledger.slivers.get(s0.urn);
        if (!s) {
          outcomes.set(s0.urn, SUCCESS);
          continue;
        }
        last.set(s.urn, s);
        if (s.phase === 'provisioning') {
          outcomes.set(s.urn, failure(Status.UNAVAILABLE, `sliver ${s.urn} is being provisioned or recovered; try again shortly`));
        } else if (s.phase === 'deleting' || s.phase === 'swapping-out' || s.allocation === 'provisioned') {
          items.push({ sliverUrn: s.urn, nodeUrn: s.nodeUrn });
          if (s.phase !== 'deleting') tx.putSliver({ ...s, phase: 'deleting', updatedAt: now });
        } else {
          // Held or swapped out: nothing on any node.
          tx.delSliver(s.urn);
          outcomes.set(s.urn, SUCCESS);
        }
      }
      // Slivers of earlier unfinished deletes are taken over by this one.
      for (const [id, i] of ledger.intents) {
        if (i.sliceUrn === sliceUrn && (i.kind === 'delete' || i.kind === 'swap-out')) {
          const mine = new Set(items.map((x) => x.sliverUrn));
          const rest = i.items.filter((x) => !mine.has(x.sliverUrn));
          if (rest.length === i.items.length) continue;
          if (rest.length) tx.putIntent({ ...i, items: rest });
          else tx.delIntent(id);
        }
      }
      const rec = newIntent('delete', sliceUrn, items, now);
      if (items.length) tx.putIntent(rec);
      const remaining = ledger.sliversOf(sliceUrn).filter((s) => !outcomes.has(s.urn) || !outcomes.get(s.urn)?.ok);
      if (items.length === 0 && remaining.length === 0 && ledger.slices.has(sliceUrn)) tx.delSlice(sliceUrn);
      if (options.tombstone) leaveTombstone(ledger, tx, { sliceUrn, ...options.tombstone }, now);
      return rec;
    },
    options.signal ? { signal: options.signal } : {},
  );
  if (intent.items.length) {
    const settled = await settle(state, intent.id, { deadline });
    for (const [u, o] of settled) outcomes.set(u, o);
    deps.log.info(
      {
        slice: sliceUrn,
        deleted: [...settled.values()].filter((o) => o.ok).length,
        pending: [...settled.values()].filter((o) => !o.ok).length,
      },
      'deleted',
    );
  }
  return slivers.map((s) => {
    const o = outcomes.get(s.urn) ?? SUCCESS;
    const now = ledger.slivers.get(s.urn);
    return {
      sliverUrn: s.urn,
      nodeUrn: s.nodeUrn,
      status: o.ok ? { code: 0, reason: '' } : { code: o.code, reason: o.reason },
      sliver: now
        ? state.toWire(now)
        : {
            ...state.toWire(last.get(s.urn) ?? s),
            allocationState: AllocationState.ALLOCATION_STATE_UNALLOCATED,
            nodeUrn: '',
            // Gone: nobody logs in to it any more.
            ssh: undefined,
          },
    };
  });
}

/** Renew: never past the site maximum, the chain's expiry or ttl, or the node owner's credential. */
export async function renew(state: AggregateState, ctx: CallContext, req: AggregateRenewRequest): Promise<SliverResult[]> {
  const { ledger, deps } = state;
  const access = deps.access.chain(ctx, 'sliver.renew');
  const { slice, slivers } = resolveTargets(ledger, req.urns);
  requireOwnSlice(access, slice, slivers);
  const at = req.expiresAt?.getTime();
  if (at === undefined || !Number.isFinite(at)) throw new InvalidArgumentError('expires_at is required', { field: 'expires_at' });
  if (at <= state.now) throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
  return state.sliceLocks.run(slice.urn, async () => {
    const now = state.now;
    const outcomes = new Map<string, Outcome>();
    const onNodes: SliverRecord[] = [];
    const local: SliverRecord[] = [];
    for (const s0 of slivers) {
      const s = ledger.slivers.get(s0.urn);
      if (!s) {
        outcomes.set(s0.urn, failure(Status.NOT_FOUND, `sliver ${s0.urn} is gone`));
        continue;
      }
      if (s.phase) {
        outcomes.set(s.urn, failure(Status.UNAVAILABLE, `sliver ${s.urn} is busy (${s.phase}); try again shortly`));
        continue;
      }
      const node = s.allocation === 'unallocated' ? undefined : deps.registry.get(s.nodeUrn);
      const latest = lifetimeCap({ maxLifetimeS: deps.settings.maxLifetimeS, grant: access.grant, createdAt: s.createdAt, now, node });
      if (at > latest.at) {
        outcomes.set(
          s.urn,
          failure(
            Status.PERMISSION_DENIED,
            `cannot renew ${s.urn} to ${new Date(at).toISOString()}: that is past ${latest.rule} (${new Date(latest.at).toISOString()})`,
          ),
        );
        continue;
      }
      if (s.allocation === 'provisioned') onNodes.push(s);
      else local.push(s);
    }
    if (!req.bestEffort && [...outcomes.values()].some((o) => !o.ok)) {
      throwFailures(
        'Renew',
        [...outcomes].map(([u, o]) => ({ sliver: ledger.slivers.get(u) ?? slivers.find((x) => x.urn === u)!, outcome: o })),
      );
    }
    const renewed = await deps.nodes.fanOut(
      onNodes,
      (s) => s.nodeUrn,
      (c, opts, s) => c.renewSliver({ sliverUrn: s.urn, expiresAt: new Date(at) }, opts),
      { deadline: ctx.deadline },
    );
    await state.mutate(
      (tx, t) => {
        for (const s of local) {
          const cur = ledger.slivers.get(s.urn);
          if (cur && !cur.phase) tx.putSliver({ ...cur, expiresAt: at, updatedAt: t });
          outcomes.set(s.urn, SUCCESS);
        }
        for (const [i, r] of renewed.entries()) {
          const s = onNodes[i] as SliverRecord;
          if (!r.ok) {
            outcomes.set(s.urn, failure(r.code, r.reason));
            continue;
          }
          const cur = ledger.slivers.get(s.urn);
          if (cur && !cur.phase) tx.putSliver({ ...cur, expiresAt: r.value.sliver?.expiresAt?.getTime() ?? at, updatedAt: t });
          outcomes.set(s.urn, SUCCESS);
        }
      },
      { signal: ctx.signal },
    );
    return slivers.map((s) => state.resultOf(ledger.slivers.get(s.urn) ?? s, outcomes.get(s.urn) ?? SUCCESS));
  });
}
