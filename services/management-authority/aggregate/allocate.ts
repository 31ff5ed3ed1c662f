/**
 * Allocate: holds capacity in the MA's own ledger only, all or nothing, in
 * one atomic batch (slice, slivers, request id) after an admission that runs
 * under the ledger's mutex, so no node is ever over-committed. Idempotent on
 * request_id; holds end after `allocation_hold_s` unless provisioned. Fenced:
 * the batch is not committed once the call has ended, nor when a Delete of
 * the slice superseded the request (tombstones.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { canonicalJson } from '../../core/canonical-json.js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
} from '../../core/errors.js';
import { checkSliceUsers, type SliceUserRecord } from '../../core/identity/ssh-keys.js';
import { parseUrn } from '../../core/identity/urn.js';
import type { CallContext } from '../../core/rpc/context.js';
import { requestId, urnField } from '../../core/validate.js';
import type { AggregateAllocateRequest, AggregateAllocateResponse } from '../../generated/fedlab/v1/aggregate.js';
import type { ChainAccess } from '../access.js';
import { addResources, type Resources, type SliverRecord } from '../records.js';
import { MAX_LINKS, normalizeRequest, type NormalRequest } from '../requests.js';
import { checkQuota, lifetimeCap, nodeFit, pickNode, pickOrder } from './admission.js';
import type { AggregateState } from './aggregate-state.js';
import { errorForCode } from '../../core/rpc/outcome.js';
import type { SliceLedgerTx } from './slice-ledger.js';
import { checkIncarnation, sameLife, type IncarnatedSlice } from './slice-incarnation.js';
import { releaseExpiredHolds } from './sweepers.js';
import { goneSliverToWire, manifestDocument } from './to-wire.js';
import { refuseSuperseded, type FencedCall } from './tombstones.js';
import { duringGrace } from './grace.js';
import { checkLinkPlacement } from './links.js';
import { vniBase, vnisInUse, withVnis } from './vnis.js';
import { checkStitches, stitchPointsOf, takeStitchVnis, type WantedStitch } from './stitches.js';

/** An Allocate request checked before the slice's lock is taken. */
interface CheckedAllocate {
  readonly access: ChainAccess;
  readonly normal: NormalRequest;
  /** The expiry asked for (ms), if any. */
  readonly asked: number | undefined;
  /** `<slice authority> <request id>`: the idempotency key. */
  readonly key: string;
  readonly fingerprint: string;
  /** What a tombstone of the slice is checked against. */
  readonly fence: FencedCall;
  /** The slice's users, checked and normalised. */
  readonly users: SliceUserRecord[];
  /** This site's ends of links stitched to other sites. */
  readonly stitches: WantedStitch[];
}

/** Allocate: all or nothing, idempotent on request_id; holds end after `allocation_hold_s`. */
export async function allocate(state: AggregateState, ctx: CallContext, req: AggregateAllocateRequest): Promise<AggregateAllocateResponse> {
  const arrival = state.arrive();
  const checked = await checkAllocate(state, ctx, req, arrival);
  const { key, fingerprint } = checked;
  return state.sliceLocks.run(req.sliceUrn, async () => {
    refuseSuperseded(state.ledger, checked.fence, `Allocate request ${req.requestId}`);
    // A repeated request id gets its first answer (if its slice was deleted since, that allocates nothing).
    const seen = await state.ledger.allocationTable.get(key);
    if (seen) {
      if (seen.fingerprint !== fingerprint)
        throw new AlreadyExistsError(`request id ${req.requestId} was already used for another Allocate; use a new request id`, {
          rule: 'request_id',
        });
      return allocationAnswer(state, seen.sliceUrn, seen.sliverUrns);
    }
    const urns = await state.mutate((tx, now) => admit(state, tx, now, req, checked), { signal: ctx.signal });
    state.deps.log.info({ slice: req.sliceUrn, slivers: urns.length, sliceAuthority: checked.access.sliceAuthority.urn }, 'allocated');
    return allocationAnswer(state, req.sliceUrn, urns);
  });
}

/** What can be checked without the ledger: the fields, the chain, the request itself, links, named nodes, the provider. */
async function checkAllocate(
  state: AggregateState,
  ctx: CallContext,
  req: AggregateAllocateRequest,
  arrival: number,
): Promise<CheckedAllocate> {
  const { deps } = state;
  const rid = requestId(req.requestId);
  const sliceUrn = urnField('slice_urn', req.sliceUrn, 'slice');
  urnField('provider_urn', req.providerUrn, 'sp');
  const access = deps.access.chain(ctx, 'sliver.create');
  const sa = access.sliceAuthority;
  if (sliceUrn.domain !== parseUrn(sa.urn).domain) {
    throw new PermissionDeniedError(
      `slice ${req.sliceUrn} is not in the domain of its slice authority ${sa.urn}; a slice authority names slices in its own domain`,
      { rule: 'slice-domain' },
    );
  }
  const normal = normalizeRequest(req.request, {
    rules: state.rules,
    domain: state.domain,
    defaults: deps.settings.defaults,
    maxLinkKbps: deps.settings.maxLinkKbps,
  });
  const stitches = checkStitches(state, req.request?.stitches?.ends ?? [], new Set(normal.slivers.map((w) => w.clientId)), normal.links);
  for (const w of normal.slivers) {
    if (!w.nodeUrn) continue;
    if (!deps.registry.has(w.nodeUrn))
      throw new NotFoundError(`node ${w.nodeUrn} is not enrolled at this site; see ListResources`, { node: w.nodeUrn });
    access.requireNode(w.nodeUrn);
  }
  if (deps.settings.requireRegisteredProviders && !deps.providers.isRegistered(req.providerUrn)) {
    throw new PermissionDeniedError(
      `provider ${req.providerUrn} has not registered with this site, and the site's policy requires it; the provider registers with RegisterServiceProvider`,
      {
        rule: 'provider-registration',
      },
    );
  }
  const asked = req.expiresAt?.getTime();
  if (asked !== undefined && (!Number.isFinite(asked) || asked <= state.now))
    throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
  const users = checkSliceUsers(req.users, 'users');
  const key = `${sa.urn} ${rid}`;
  const incarnation = checkIncarnation(req.sliceIncarnation);
  const fingerprint = createHash('sha256')
    .update(
      canonicalJson({
        slice: req.sliceUrn,
        provider: req.providerUrn,
        request: normal,
        expires: asked ?? null,
        // Only when given, so fingerprints of requests without one stay what they were.
        ...(incarnation !== undefined ? { incarnation } : {}),
        ...(users.length ? { users } : {}),
        ...(stitches.length ? { stitches } : {}),
      }),
    )
    .digest('base64url');
  return {
    access,
    normal,
    asked,
    key,
    fingerprint,
    fence: { sliceUrn: req.sliceUrn, sliceAuthorityUrn: sa.urn, arrival },
    users,
    stitches,
  };
}

/** The admission and the records, in `tx` under the ledger's mutex; returns the new slivers' URNs. */
function admit(state: AggregateState, tx: SliceLedgerTx, now: number, req: AggregateAllocateRequest, checked: CheckedAllocate): string[] {
  const { ledger, deps } = state;
  const { access, normal, asked, key, fingerprint } = checked;
  const sa = access.sliceAuthority;
  // Checked again under the mutex: a Delete that committed its tombstone meanwhile wins.
  refuseSuperseded(ledger, checked.fence, `Allocate request ${req.requestId}`);
  // Holds that ended are released first, so that they do not block this admission.
  releaseExpiredHolds(ledger, tx, now);
  const held = ledger.slices.get(req.sliceUrn);
  // A record of another life of the slice (of this slice authority: another's is refused below) is refused
  // while it holds slivers, and replaced once it holds none.
  const ours = held && held.sliceAuthorityUrn === sa.urn && held.sliceAuthorityKid === sa.kid;
  const existing = held && (!ours || sameLife(held, req.sliceIncarnation, ledger.sliversOf(held.urn).length)) ? held : undefined;
  if (existing) {
    if (existing.sliceAuthorityUrn !== sa.urn || existing.sliceAuthorityKid !== sa.kid) {
      throw new PermissionDeniedError(`slice ${req.sliceUrn} exists here under another slice authority (${existing.sliceAuthorityUrn})`, {
        rule: 'slice-authority',
      });
    }
    if (existing.providerUrn !== req.providerUrn) {
      throw new InvalidArgumentError(`slice ${req.sliceUrn} belongs to provider ${existing.providerUrn} here, not ${req.providerUrn}`, {
        field: 'provider_urn',
      });
    }
    if (existing.shutDown)
      throw new FailedPreconditionError(
        `slice ${req.sliceUrn} is shut down at this site (${existing.shutDown.reason}); ask the site's administrators`,
        { rule: 'shutdown' },
      );
    if (existing.swappedOut)
      throw new FailedPreconditionError(
        `slice ${req.sliceUrn} is swapped out; swap it in (PerformOperationalAction SWAP_IN) before allocating more`,
        { rule: 'swapped-out' },
      );
  }
  const present = existing ? ledger.sliversOf(existing.urn) : [];
  const ids = new Set(present.map((s) => s.clientId));
  for (const w of normal.slivers)
    if (ids.has(w.clientId))
      throw new InvalidArgumentError(`client id ${w.clientId} is already used in slice ${req.sliceUrn}; choose other client ids`, {
        field: 'request.nodes.client_ids',
      });
  const oldLinks = existing?.links ?? [];
  for (const l of [...normal.links, ...checked.stitches])
    if (oldLinks.some((x) => x.name === l.name))
      throw new InvalidArgumentError(`slice ${req.sliceUrn} already has a link ${l.name}`, { field: 'request.links', link: l.name });
  if (oldLinks.length + normal.links.length + checked.stitches.length > MAX_LINKS)
    throw new InvalidArgumentError(`a slice has at most ${MAX_LINKS} links`, { field: 'request.links' });
  const latest = lifetimeCap({ maxLifetimeS: deps.settings.maxLifetimeS, grant: access.grant, createdAt: now, now });
  let expiresAt = asked ?? now + deps.settings.defaultLifetimeS * 1000;
  if (asked !== undefined && asked > latest.at) {
    throw new PermissionDeniedError(
      `expires_at ${new Date(asked).toISOString()} is past ${latest.rule} (${new Date(latest.at).toISOString()}); ask for an earlier expiry`,
      { rule: 'lifetime' },
    );
  }
  expiresAt = Math.min(expiresAt, latest.at);
  checkQuota({
    sliceAuthorityUrn: sa.urn,
    limits: access.grant.limits,
    held: ledger.authorityUse(sa.urn),
    adding: normal.slivers.map((w) => w.resources),
  });
  // A stitched link's VNI, agreed with the peer site, must be free here: checked before any node is looked at.
  const used = vnisInUse(ledger.slices.values());
  takeStitchVnis(state, checked.stitches, used);

  // Admission: explicit nodes first (their failure names the node), then the site's picks.
  const input = state.admissionInputs(now);
  const placed = new Map<string, Resources>();
  const nodeOf: string[] = [];
  for (const [i, w] of normal.slivers.entries()) {
    if (!w.nodeUrn) continue;
    const fit = nodeFit(input, deps.registry.get(w.nodeUrn), w.nodeUrn, req.sliceUrn, w, placed.get(w.nodeUrn));
    if (!fit.ok) {
      duringGrace(state, [w.nodeUrn], `cannot allocate ${w.clientId}`);
      throw errorForCode(fit.code, `cannot allocate ${w.clientId}: ${fit.reason}. Nothing was allocated.`);
    }
    placed.set(w.nodeUrn, addResources(placed.get(w.nodeUrn) ?? { cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0 }, w.resources));
    nodeOf[i] = w.nodeUrn;
  }
  const picks = normal.slivers.filter((w) => !w.nodeUrn);
  if (picks.length > 0) {
    const taken = new Set(placed.keys());
    const order = pickOrder(deps.registry.all(), access.covers, ledger);
    let found = 0;
    for (const [i, w] of normal.slivers.entries()) {
      if (w.nodeUrn) continue;
      const urn = pickNode(input, order, req.sliceUrn, w, taken);
      if (!urn) {
        // Right after a restart, nodes not heard from yet may fit: a passing state, not exhaustion.
        duringGrace(
          state,
          order.filter((c) => !taken.has(c.urn)).map((c) => c.urn),
          `cannot place ${w.clientId}`,
        );
        const min = w.minFree;
        throw new ResourceExhaustedError(
          `the selector asks for ${picks.length} node(s) with at least ${min.cpuMillis} cpu_millis, ${min.memMb} mem_mb, ${min.diskMb} disk_mb and ${min.pids} pids free${w.exclusive ? ', whole' : ''}${w.image ? `, offering image ${w.image}` : ''}; only ${found} such node(s) are UP and free. Nothing was allocated.`,
          { rule: 'selector' },
        );
      }
      found++;
      taken.add(urn);
      nodeOf[i] = urn;
    }
  }

  // The links: the nodes must carry them, and each takes a VNI unique at the site, in this batch.
  // Stitched links come with the VNI the slice authority chose: taken first, so that local links avoid them.
  const newLinks = [...normal.links, ...checked.stitches].map((l, k) => ({ ...l, subnet: oldLinks.length + k }));
  checkLinkPlacement(state, newLinks, new Map(normal.slivers.map((w, i) => [w.clientId, nodeOf[i] as string])));
  const links = withVnis(newLinks, used, vniBase(deps.maUrn));
  // The slice authority's list is the slice's (an Allocate naming none keeps what the slice has).
  const users = checked.users.length ? { users: checked.users } : {};
  const slice: IncarnatedSlice = existing
    ? { ...existing, ...users, links: [...oldLinks, ...links] }
    : {
        ...users,
        ...(req.sliceIncarnation !== undefined ? { incarnation: req.sliceIncarnation } : {}),
        urn: req.sliceUrn,
        sliceAuthorityUrn: sa.urn,
        sliceAuthorityJwk: sa.jwk as unknown as Record<string, unknown>,
        sliceAuthorityKid: sa.kid,
        providerUrn: req.providerUrn,
        createdAt: now,
        links,
        documentFormat: normal.documentFormat,
        swappedOut: false,
      };
  tx.putSlice(slice);
  const sliceName = parseUrn(req.sliceUrn).name.slice(0, 40);
  const created: string[] = [];
  for (const [i, w] of normal.slivers.entries()) {
    const name = `${sliceName}-${randomBytes(5).toString('hex')}`;
    const rec: SliverRecord = {
      urn: `urn:fedlab:${state.domain}:sliver:${name}`,
      name,
      sliceUrn: req.sliceUrn,
      nodeUrn: nodeOf[i] as string,
      clientId: w.clientId,
      explicitNode: w.nodeUrn !== undefined,
      resources: w.resources,
      ...(w.image ? { image: w.image } : {}),
      exclusive: w.exclusive || (deps.registry.get(nodeOf[i] as string)?.record.exclusive ?? false),
      allocation: 'allocated',
      operational: 'pending',
      holdExpiresAt: now + deps.settings.holdS * 1000,
      expiresAt,
      createdAt: now,
      updatedAt: now,
      error: '',
      generation: 0,
      interfaces: [],
      requestKey: key,
    };
    tx.putSliver(rec);
    created.push(rec.urn);
  }
  tx.putAllocation(key, { fingerprint, sliceUrn: req.sliceUrn, sliverUrns: created, createdAt: now });
  return created;
}

/** The answer to an Allocate (also to its retry): the slivers as they are now, and the manifest when the slice used a document. */
function allocationAnswer(state: AggregateState, sliceUrn: string, urns: readonly string[]): AggregateAllocateResponse {
  const { ledger, deps } = state;
  const slice = ledger.slices.get(sliceUrn);
  const slivers = urns.map((u) => {
    const s = ledger.slivers.get(u);
    return s ? state.toWire(s) : goneSliverToWire(u, sliceUrn, deps.maUrn);
  });
  const held = urns.map((u) => ledger.slivers.get(u)).filter((s): s is SliverRecord => !!s);
  const stitchPoints = slice ? stitchPointsOf(state, slice, held) : [];
  const manifest =
    slice && slice.documentFormat
      ? manifestDocument(
          slice,
          urns.map((u) => ledger.slivers.get(u)).filter((s): s is SliverRecord => !!s),
          deps.maUrn,
        )
      : '';
  return { sliceUrn, slivers, manifestDocument: manifest, ...(stitchPoints.length ? { stitchPoints: { points: stitchPoints } } : {}) };
}
