/**
 * Emulab swap-out and swap-in of a whole slice: swap-out releases every
 * sliver's node (deleted there) and keeps the experiment; swap-in allocates
 * nodes again (named nodes must be free) and provisions and starts them, all
 * or nothing. Callers hold the slice's lock.
 */
import { status as Status } from '@grpc/grpc-js';
import { FailedPreconditionError, PermissionDeniedError, ResourceExhaustedError, UnavailableError } from '../../core/errors.js';
import type { SliverResult } from '../../generated/fedlab/v1/common.js';
import type { ChainAccess } from '../access.js';
import type { SliceRecord, SliverRecord } from '../records.js';
import type { WantedSliver } from '../requests.js';
import { checkQuota, nodeFit, pickNode, pickOrder } from './admission.js';
import type { AggregateState } from './aggregate-state.js';
import { errorForCode } from '../../core/rpc/outcome.js';
import { newIntent, settle } from './intents.js';
import { checkLinkPlacement, linkInterfaces } from './links.js';
import { SUCCESS } from '../../core/rpc/outcome.js';
import { throwFailures, type Outcome } from './outcome.js';
import { instantiate } from './provision.js';
import { releaseExpiredHolds } from './sweepers.js';
import { vniBase, vnisInUse, withVnis, withoutVnis } from './vnis.js';

/** Emulab swap-out: every sliver's node released (deleted there), the experiment kept. */
export async function swapOut(state: AggregateState, sliceUrn: string, deadline: number, signal?: AbortSignal): Promise<SliverResult[]> {
  const { ledger, deps } = state;
  const slivers = ledger.sliversOf(sliceUrn);
  if (slivers.some((s) => s.phase === 'provisioning'))
    throw new UnavailableError(`slice ${sliceUrn} is being provisioned or recovered; try again shortly`);
  const intent = await state.mutate(
    (tx, now) => {
      const slice = ledger.slices.get(sliceUrn) as SliceRecord;
      // Its links' VNIs go back to the site: the slice holds no node now (swap-in takes new ones).
      tx.putSlice({ ...slice, swappedOut: true, links: withoutVnis(slice.links) });
      const items: { sliverUrn: string; nodeUrn: string }[] = [];
      for (const s of ledger.sliversOf(sliceUrn)) {
        if (s.allocation === 'provisioned' || s.phase === 'swapping-out') {
          items.push({ sliverUrn: s.urn, nodeUrn: s.nodeUrn });
          tx.putSliver({ ...s, phase: 'swapping-out', updatedAt: now });
        } else if (s.allocation === 'allocated') {
          const { holdExpiresAt: _h, ...rest } = s;
          tx.putSliver({ ...rest, allocation: 'unallocated', operational: 'pending', updatedAt: now });
        }
      }
      const rec = newIntent('swap-out', sliceUrn, items, now);
      if (items.length) tx.putIntent(rec);
      return rec;
    },
    signal ? { signal } : {},
  );
  const outcomes = intent.items.length ? await settle(state, intent.id, { deadline }) : new Map<string, Outcome>();
  deps.log.info({ slice: sliceUrn, slivers: intent.items.length }, 'swapped out');
  return slivers.map((s) => state.resultOf(ledger.slivers.get(s.urn) ?? s, outcomes.get(s.urn) ?? SUCCESS));
}

/** Emulab swap-in: nodes allocated again (named nodes must be free) and provisioned and started, all or nothing. */
export async function swapIn(
  state: AggregateState,
  access: ChainAccess,
  sliceUrn: string,
  deadline: number,
  signal?: AbortSignal,
): Promise<SliverResult[]> {
  const { ledger, deps } = state;
  const slice = ledger.slices.get(sliceUrn) as SliceRecord;
  if (!slice.swappedOut) throw new FailedPreconditionError(`slice ${sliceUrn} is not swapped out`, { rule: 'swapped-out' });
  if (slice.shutDown)
    throw new FailedPreconditionError(`slice ${sliceUrn} is shut down at this site (${slice.shutDown.reason})`, { rule: 'shutdown' });
  const intent = await state.mutate(
    (tx, now) => {
      const slivers = ledger.sliversOf(sliceUrn);
      if (slivers.some((s) => s.phase))
        throw new UnavailableError(`slice ${sliceUrn} is still being swapped out on some node; try again shortly`);
      releaseExpiredHolds(ledger, tx, now);
      const input = state.admissionInputs(now);
      const taken = new Set<string>();
      const placed: { s: SliverRecord; node: string }[] = [];
      for (const s of slivers) {
        if (s.expiresAt <= now)
          throw new FailedPreconditionError(
            `sliver ${s.urn} expired at ${new Date(s.expiresAt).toISOString()}; the experiment cannot be swapped in`,
            { rule: 'expired' },
          );
        if (s.explicitNode) {
          const fit = nodeFit(input, deps.registry.get(s.nodeUrn), s.nodeUrn, sliceUrn, s);
          if (!fit.ok)
            throw errorForCode(
              fit.code === Status.UNAVAILABLE ? Status.RESOURCE_EXHAUSTED : fit.code,
              `cannot swap in: ${fit.reason}. Nothing changed.`,
            );
          if (!access.covers(s.nodeUrn))
            throw new PermissionDeniedError(`the chain does not cover node ${s.nodeUrn}`, { rule: 'grant-object' });
          taken.add(s.nodeUrn);
          placed.push({ s, node: s.nodeUrn });
        }
      }
      const order = pickOrder(deps.registry.all(), access.covers, ledger);
      for (const s of slivers) {
        if (s.explicitNode) continue;
        const want: WantedSliver = {
          clientId: s.clientId,
          resources: s.resources,
          minFree: s.resources,
          exclusive: s.exclusive,
          ...(s.image ? { image: s.image } : {}),
        };
        const node = pickNode(input, order, sliceUrn, want, taken);
        if (!node)
          throw new ResourceExhaustedError(`cannot swap in ${sliceUrn}: no free node for ${s.clientId}. Nothing changed.`, {
            rule: 'selector',
          });
        taken.add(node);
        placed.push({ s, node });
      }
      checkQuota({
        sliceAuthorityUrn: access.sliceAuthority.urn,
        limits: access.grant.limits,
        held: ledger.authorityUse(access.sliceAuthority.urn),
        adding: slivers.map((s) => s.resources),
      });
      // The links: the nodes must carry them, and each takes a VNI again, in this batch.
      checkLinkPlacement(state, slice.links, new Map(placed.map((p) => [p.s.clientId, p.node])));
      tx.putSlice({ ...slice, links: withVnis(slice.links, vnisInUse(ledger.slices.values()), vniBase(deps.maUrn)) });
      const items: { sliverUrn: string; nodeUrn: string }[] = [];
      for (const { s, node } of placed) {
        tx.putSliver({
          ...s,
          nodeUrn: node,
          allocation: 'allocated',
          phase: 'provisioning',
          holdExpiresAt: now + deps.settings.holdS * 1000,
          generation: s.generation + 1,
          updatedAt: now,
          interfaces: linkInterfaces(sliceUrn, slice.links, s.clientId),
          netns: undefined,
        });
        items.push({ sliverUrn: s.urn, nodeUrn: node });
      }
      const rec = newIntent('swap-in', sliceUrn, items, now);
      tx.putIntent(rec);
      return rec;
    },
    signal ? { signal } : {},
  );
  const cur = ledger.slices.get(sliceUrn) as SliceRecord;
  const swapIns = intent.items.map((i) => ledger.slivers.get(i.sliverUrn) as SliverRecord);
  const outcomes = await instantiate(state, cur, swapIns, {
    kind: 'swap-in',
    start: true,
    asked: undefined,
    deadline,
    allOrNothing: true,
    marked: intent,
    ...(signal ? { signal } : {}),
  });
  const bad = [...outcomes].filter(([, o]) => !o.ok);
  if (bad.length)
    throwFailures(
      'SWAP_IN',
      bad.map(([u, o]) => ({ sliver: ledger.slivers.get(u) ?? swapIns.find((s) => s.urn === u)!, outcome: o })),
    );
  return ledger.sliversOf(sliceUrn).map((s) => state.resultOf(s, SUCCESS));
}
