/**
 * The slice authority's books and the work that spans sites.
 *
 * CreateSlice records the slice (PENDING), its request id and a `create`
 * intent in one batch, then asks every site in parallel — Allocate, Provision,
 * start — each site within its deadline, showing that site's `MA → SA` chain.
 * All or nothing: a failure anywhere deletes the slice at every site that may
 * hold something; best effort keeps what worked. The outcome and the removal
 * of the intent are one batch. DeleteSlice (and expiry) writes a `delete`
 * intent first and removes each site from it as that site confirms; a site
 * that is down stays in the intent and is retried. A restart rolls back every
 * `create` intent (Delete by slice URN at each of its sites) and finishes
 * every `delete` intent, so no site keeps slivers of a slice without a live
 * record here, and no record points at slivers that are gone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import { canonicalJson } from '../core/canonical-json.js';
import { AlreadyExistsError, DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { isValidName, makeUrn, parseUrn } from '../core/identity/urn.js';
import type { Logger } from '../core/log.js';
import { isServiceError } from '../core/rpc/client.js';
import type { Store, Table } from '../core/store/store.js';
import { OperationalAction } from '../generated/fedlab/v1/aggregate.js';
import { AllocationState, OperationalState, ResourceRequest, SiteStyle, SliceMode, type ResultStatus, type Sliver, type SliverResult } from '../generated/fedlab/v1/common.js';
import {
  CreateSliceRequest,
  type ListSlicesRequest,
  type ListSlicesResponse,
  type RenewSliceRequest,
  type SiteResult,
  type Slice,
  type WatchSliceRequest,
  type WatchSliceResponse,
} from '../generated/fedlab/v1/slice_authority.js';
import { checkQuotas, type Accounts, type Caller } from './accounts.js';
import type { SaConfig } from './config.js';
import type { EventHub } from './events.js';
import {
  addUse,
  ENDED,
  LIVE,
  NO_USE,
  sliceToWire,
  sliversOf,
  STABLE,
  stateFromWire,
  stateToWire,
  storeSlivers,
  TABLES,
  type IntentRecord,
  type RequestRecord,
  type SiteRecord,
  type SliceRecord,
  type StateName,
  type Use,
} from './records.js';
import type { Site, Sites } from './sites.js';
import { KeyedMutex, Mutex } from '../core/mutex.js';
import { OK, outcomeOf, REFUSED_CODES, type Outcome } from './support.js';
import { pageSize, requestId, text, urnField } from '../core/validate.js';

/**
 * How far event sequence numbers jump at a restart: events are numbered in
 * memory and the number is written with the slice's next write, so the last
 * few events before a stop may not be on disk; the jump keeps numbers unique.
 */
const SEQUENCE_GAP = 1_000_000;

/** A sliver that exists (or existed) at its site, rather than one reported as failed and released. */
function isLive(s: Sliver): boolean {
  return s.allocationState !== AllocationState.ALLOCATION_STATE_UNALLOCATED && !s.error;
}

/** Whether a provisioned sliver was started (it is past NOTREADY: configuring, ready, or beyond). */
function isStarted(s: Sliver | undefined): boolean {
  const o = s?.operationalState;
  return o === OperationalState.OPERATIONAL_STATE_CONFIGURING || o === OperationalState.OPERATIONAL_STATE_READY;
}

/** How long a GetSlice answer from the sites stays fresh enough to be given again without asking them. */
export const STATUS_FRESH_MS = 2_000;

/** Whether a sliver's state as the SA shows it differs. */
function sliverChanged(a: Sliver, b: Sliver): boolean {
  return a.allocationState !== b.allocationState || a.operationalState !== b.operationalState || a.error !== b.error || a.expiresAt?.getTime() !== b.expiresAt?.getTime();
}

/** A site's live slivers. */
function liveSlivers(s: SiteRecord): Sliver[] {
  return sliversOf(s).filter(isLive);
}

/** Slivers reported as failed and released, with why. */
function released(slivers: readonly Sliver[], why?: string): Sliver[] {
  return slivers.map((x) => ({
    ...x,
    allocationState: AllocationState.ALLOCATION_STATE_UNALLOCATED,
    operationalState: OperationalState.OPERATIONAL_STATE_FAILED,
    error: x.error || why || 'released',
  }));
}

/** Options of {@link SliceBook}. */
export interface SliceBookOptions {
  readonly store: Store;
  readonly sites: Sites;
  readonly accounts: Accounts;
  readonly hub: EventHub;
  readonly log: Logger;
  readonly now: () => number;
  readonly saUrn: string;
  readonly limits: SaConfig['limits'];
  readonly quotaDefaults: SaConfig['quota_defaults'];
}

/** What one site did for a CreateSlice. */
interface SiteCreate {
  readonly outcome: Outcome;
  readonly slivers: readonly Sliver[];
  readonly manifest: string;
  readonly expiresAt?: number;
  /** Whether the site may hold something of the slice (so a rollback must Delete there). */
  readonly mayHold: boolean;
  readonly style: number;
}

/** What one site did for a Delete or Renew. */
interface SiteCall {
  readonly site: string;
  readonly outcome: Outcome;
  readonly results: readonly SliverResult[];
}

/** A slice and the per-site outcome of a call on it. */
export interface SliceWithResults {
  readonly slice: Slice;
  readonly results: SiteResult[];
}

function failedOf(results: readonly SliverResult[]): SliverResult[] {
  return results.filter((r) => (r.status?.code ?? 0) !== 0);
}

function sliverLine(r: SliverResult): string {
  return `${r.nodeUrn || r.sliverUrn}: ${r.status?.reason || Status[r.status?.code ?? 2]}`;
}

/** Whether a failed Allocate certainly left nothing held (refused by the aggregate, or never connected). */
function nothingHeld(err: unknown): boolean {
  if (!isServiceError(err)) return false;
  if (REFUSED_CODES.has(err.code)) return true;
  return err.code === Status.UNAVAILABLE && /ECONNREFUSED|No connection established|ENOTFOUND|EHOSTUNREACH/.test(`${err.details} ${err.message}`);
}

/** The slice authority's slices and their work across sites. */
export class SliceBook {
  private readonly slices = new Map<string, SliceRecord>();
  private readonly intents = new Map<string, IntentRecord>();
  private readonly sliceTable: Table<SliceRecord>;
  private readonly requestTable: Table<RequestRecord>;
  private readonly intentTable: Table<IntentRecord>;
  private readonly admission = new Mutex();
  private readonly locks = new KeyedMutex();
  private readonly running = new Set<Promise<unknown>>();
  /** When each slice's slivers were last asked of its sites (GetSlice). */
  private readonly refreshedAt = new Map<string, number>();
  private readonly domain: string;
  private stopping = false;

  constructor(private readonly o: SliceBookOptions) {
    this.sliceTable = o.store.table<SliceRecord>(TABLES.slices);
    this.requestTable = o.store.table<RequestRecord>(TABLES.requests);
    this.intentTable = o.store.table<IntentRecord>(TABLES.intents);
    this.domain = parseUrn(o.saUrn).domain;
  }

  private get now(): number {
    return this.o.now();
  }

  /** Loads the books from the store. */
  async load(): Promise<void> {
    for await (const [k, v] of this.sliceTable.entries()) this.slices.set(k, { ...v, seq: v.seq + SEQUENCE_GAP });
    for await (const [k, v] of this.intentTable.entries()) this.intents.set(k, v);
  }

  /** Counts for the start-up log. */
  stats(): { slices: number; live: number; intents: number } {
    return { slices: this.slices.size, live: [...this.slices.values()].filter((s) => LIVE.has(s.state)).length, intents: this.intents.size };
  }

  // ---- Reading --------------------------------------------------------------------------------

  /** A slice the caller may see: its provider's, or any for an administrator. NOT_FOUND otherwise (others' slices are not disclosed). */
  owned(caller: Caller, urn: string, field = 'slice_urn'): SliceRecord {
    urnField(field, urn, 'slice');
    const rec = this.slices.get(urn);
    if (!rec || (!caller.admin && rec.providerUrn !== caller.urn)) {
      throw new NotFoundError(`no slice ${urn} of ${caller.urn} at this slice authority; list your slices with ListSlices`);
    }
    return rec;
  }

  /** GetSlice as recorded (no site is asked). */
  get(caller: Caller, urn: string): Slice {
    return sliceToWire(this.owned(caller, urn));
  }

  /**
   * GetSlice with every sliver as its site reports it now: for a READY or PARTIAL slice each site
   * holding slivers is asked for its Status (in parallel, within `limits.status_deadline_ms`), and
   * what changed is recorded and published to watchers. A site that does not answer keeps its last
   * known slivers. A slice that is being created or deleted is answered from the record (the SA is
   * talking to its sites anyway). Asked again within {@link STATUS_FRESH_MS}, the record is fresh enough.
   */
  async getLive(caller: Caller, urn: string): Promise<Slice> {
    const rec0 = this.owned(caller, urn);
    if ((rec0.state !== 'ready' && rec0.state !== 'partial') || this.stopping || this.now - (this.refreshedAt.get(urn) ?? -Infinity) < STATUS_FRESH_MS) return sliceToWire(rec0);
    return this.track(
      this.locks.run(urn, async () => {
        const rec = this.slices.get(urn) as SliceRecord;
        if (rec.state !== 'ready' && rec.state !== 'partial') return sliceToWire(rec);
        const answers = await Promise.all(rec.sites.map((s) => this.siteStatus(rec.urn, s)));
        // Only recent reads matter: old ones are dropped before the map grows large.
        if (this.refreshedAt.size >= 4096) for (const [k, at] of this.refreshedAt) if (this.now - at >= STATUS_FRESH_MS) this.refreshedAt.delete(k);
        this.refreshedAt.set(urn, this.now);
        const changed: { site: string; sliver: Sliver }[] = [];
        const sites = rec.sites.map((s, i) => {
          const answer = answers[i];
          if (answer === undefined) return s;
          const slivers = sliversOf(s).map((x) => {
            if (x.allocationState === AllocationState.ALLOCATION_STATE_UNALLOCATED) return x;
            const now = answer === 'gone' ? undefined : answer.get(x.urn);
            const next = now
              ? {
                  ...x,
                  allocationState: now.allocationState,
                  operationalState: now.operationalState,
                  ...(now.expiresAt ? { expiresAt: now.expiresAt } : {}),
                  // A transient note (a node the site could not reach) is not a failure of the sliver.
                  error: now.operationalState === OperationalState.OPERATIONAL_STATE_FAILED ? now.error : '',
                }
              : (released([x], `site ${s.site} no longer has this sliver (it expired or was deleted there)`)[0] as Sliver);
            if (sliverChanged(x, next)) changed.push({ site: s.site, sliver: next });
            return next;
          });
          return { ...s, slivers: storeSlivers(slivers) };
        });
        if (changed.length === 0) return sliceToWire(rec);
        const next: SliceRecord = { ...rec, sites, updatedAt: this.now };
        // What the sites report can be asked again at any time: no need to wait for the disk.
        await this.sliceTable.put(urn, next);
        this.slices.set(urn, { ...next, seq: (this.slices.get(urn) as SliceRecord).seq });
        for (const c of changed) {
          const o = c.sliver.operationalState;
          this.publish(next, {
            site: c.site,
            nodeUrn: c.sliver.nodeUrn,
            sliverUrn: c.sliver.urn,
            status: o === OperationalState.OPERATIONAL_STATE_FAILED || c.sliver.allocationState === AllocationState.ALLOCATION_STATE_UNALLOCATED ? { code: Status.UNAVAILABLE, reason: c.sliver.error } : OK,
            message: `now ${OperationalState[o].replace('OPERATIONAL_STATE_', '').toLowerCase()}${c.sliver.error ? `: ${c.sliver.error}` : ''}`,
          });
        }
        return sliceToWire(this.slices.get(urn) as SliceRecord);
      }),
    );
  }

  /** One site's Status of a slice: its slivers by URN, 'gone' when the site no longer knows the slice, undefined when it did not answer. */
  private async siteStatus(sliceUrn: string, s: SiteRecord): Promise<Map<string, Sliver> | 'gone' | undefined> {
    if (!sliversOf(s).some((x) => x.allocationState !== AllocationState.ALLOCATION_STATE_UNALLOCATED)) return undefined;
    const site = this.o.sites.get(s.site);
    if (!site) return undefined;
    try {
      const res = await site.client.status({ urns: [sliceUrn] }, { chain: site.chain, deadlineMs: this.o.limits.status_deadline_ms });
      return new Map(res.slivers.map((x) => [x.urn, x]));
    } catch (err) {
      if (isServiceError(err, Status.NOT_FOUND)) return 'gone';
      this.o.log.info({ slice: sliceUrn, site: s.site, err: (err as Error).message }, 'site did not report the slice; keeping its last known slivers');
      return undefined;
    }
  }

  /** ListSlices: the caller's slices (every slice for administrators), by URN, paged. */
  list(caller: Caller, req: ListSlicesRequest): ListSlicesResponse {
    const size = pageSize(req.pageSize);
    let after = '';
    if (req.pageToken) {
      after = Buffer.from(req.pageToken, 'base64url').toString();
      if (!after.startsWith('urn:fedlab:')) throw new InvalidArgumentError('page_token is not one this server gave out; start again with an empty token', { field: 'page_token' });
    }
    const want = req.state ? stateFromWire(req.state) : undefined;
    if (req.state && !want) throw new InvalidArgumentError('state is not a slice state', { field: 'state' });
    const all = [...this.slices.values()]
      .filter((s) => caller.admin || s.providerUrn === caller.urn)
      .filter((s) => (want ? s.state === want : s.state !== 'deleted' && s.state !== 'expired'))
      .filter((s) => s.urn > after)
      .sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));
    const page = all.slice(0, size);
    const last = page[page.length - 1];
    return { slices: page.map(sliceToWire), nextPageToken: all.length > size && last ? Buffer.from(last.urn).toString('base64url') : '' };
  }

  // ---- CreateSlice ----------------------------------------------------------------------------

  /** Reads and checks one site's part of a request; returns its record (nothing asked yet) and what it counts against quotas. */
  private siteRecord(i: number, site: string, request: ResourceRequest | undefined): SiteRecord {
    const field = `sites[${i}]`;
    const s = this.o.sites.get(site);
    if (!s) {
      const known = this.o.sites.domains();
      throw new InvalidArgumentError(`${field}.site ${JSON.stringify(site.slice(0, 80))} is not a site of this slice authority; its sites are ${known.join(', ') || 'none'}`, { field: `${field}.site` });
    }
    if (!request) throw new InvalidArgumentError(`${field}.request is required: the nodes (node_urns or count) and resources wanted at ${site}`, { field: `${field}.request` });
    const d = this.o.quotaDefaults;
    let slivers: number;
    const per = { cpuMillis: request.resources?.cpuMillis || d.cpu_millis, memMb: request.resources?.memMb || d.mem_mb, diskMb: request.resources?.diskMb || d.disk_mb };
    let perNode: { cpuMillis: number; memMb: number; diskMb: number }[] | undefined;
    if (request.requestDocument) {
      let doc: unknown;
      try {
        doc = JSON.parse(request.requestDocument);
      } catch {
        throw new InvalidArgumentError(`${field}.request.request_document is not JSON (the format is fedlab-rspec+json)`, { field: `${field}.request.request_document` });
      }
      const nodes = (doc as { nodes?: unknown }).nodes;
      if (!Array.isArray(nodes) || nodes.length === 0) throw new InvalidArgumentError(`${field}.request.request_document must list nodes`, { field: `${field}.request.request_document` });
      slivers = nodes.length;
      perNode = nodes.map((n) => {
        const r = (n as { resources?: Record<string, number> })?.resources ?? {};
        return { cpuMillis: Number(r.cpu_millis) || d.cpu_millis, memMb: Number(r.mem_mb) || d.mem_mb, diskMb: Number(r.disk_mb) || d.disk_mb };
      });
    } else {
      const sel = request.nodes;
      if (!sel) throw new InvalidArgumentError(`${field}.request.nodes is required: node_urns, or a count`, { field: `${field}.request.nodes` });
      sel.nodeUrns.forEach((u, j) => {
        const urn = urnField(`${field}.request.nodes.node_urns[${j}]`, u, 'node');
        if (urn.domain !== site) throw new InvalidArgumentError(`${field}.request.nodes.node_urns[${j}] ${u} is not a node of ${site}`, { field: `${field}.request.nodes.node_urns` });
      });
      if (new Set(sel.nodeUrns).size !== sel.nodeUrns.length) throw new InvalidArgumentError(`${field}.request.nodes.node_urns names a node twice`, { field: `${field}.request.nodes.node_urns` });
      if (sel.nodeUrns.length > 0 && sel.count !== 0 && sel.count !== sel.nodeUrns.length) {
        throw new InvalidArgumentError(`${field}.request.nodes: count must be 0 or the number of node_urns`, { field: `${field}.request.nodes.count` });
      }
      slivers = sel.nodeUrns.length || sel.count;
      if (slivers === 0) throw new InvalidArgumentError(`${field}.request.nodes: name nodes (node_urns) or ask for a count of at least 1`, { field: `${field}.request.nodes` });
    }
    if (slivers > this.o.limits.max_nodes_per_site) {
      throw new InvalidArgumentError(`${field} asks for ${slivers} nodes; at most ${this.o.limits.max_nodes_per_site} per site`, { field: `${field}.request.nodes` });
    }
    const use: Use = perNode
      ? perNode.reduce<Use>((a, p) => addUse(a, { slivers: 1, ...p }), NO_USE)
      : { slivers, cpuMillis: slivers * per.cpuMillis, memMb: slivers * per.memMb, diskMb: slivers * per.diskMb };
    return {
      site,
      aggregateUrn: s.maUrn,
      style: SiteStyle.SITE_STYLE_UNSPECIFIED,
      request: ResourceRequest.toJSON(request),
      code: 0,
      reason: '',
      manifest: '',
      swappedOut: false,
      slivers: [],
      use,
    };
  }

  private useOf(rec: SliceRecord): Use {
    return rec.sites.reduce((a, s) => addUse(a, s.use), NO_USE);
  }

  /**
   * CreateSlice: checks, records the slice PENDING with its intent, then asks
   * the sites (waiting for the outcome when `wait`). A retry with the same
   * request id returns the slice as it is now.
   */
  async create(caller: Caller & { account: NonNullable<Caller['account']> }, req: CreateSliceRequest): Promise<Slice> {
    if (this.stopping) throw new FailedPreconditionError('the slice authority is stopping; try again shortly');
    const rid = requestId(req.requestId);
    if (!isValidName(req.name)) throw new InvalidArgumentError('name must match [a-z0-9][a-z0-9._-]{0,62}', { field: 'name' });
    const description = text('description', req.description, 1000);
    if (![SliceMode.SLICE_MODE_UNSPECIFIED, SliceMode.SLICE_MODE_ALL_OR_NOTHING, SliceMode.SLICE_MODE_BEST_EFFORT].includes(req.mode)) {
      throw new InvalidArgumentError('mode must be ALL_OR_NOTHING or BEST_EFFORT', { field: 'mode' });
    }
    if (req.sites.length === 0) throw new InvalidArgumentError('sites is empty: ask at least one site for nodes', { field: 'sites' });
    if (req.sites.length > this.o.limits.max_sites_per_slice) throw new InvalidArgumentError(`at most ${this.o.limits.max_sites_per_slice} sites per slice`, { field: 'sites' });
    const seen = new Set<string>();
    for (const [i, s] of req.sites.entries()) {
      if (seen.has(s.site)) throw new InvalidArgumentError(`sites[${i}]: site ${s.site} appears twice; ask each site once`, { field: 'sites' });
      seen.add(s.site);
    }
    const sites = req.sites.map((s, i) => this.siteRecord(i, s.site, s.request));
    const now = this.now;
    const maxAt = now + this.o.limits.max_slice_lifetime_s * 1000;
    let expiresAt = now + this.o.limits.default_slice_lifetime_s * 1000;
    if (req.expiresAt) {
      expiresAt = req.expiresAt.getTime();
      if (!Number.isFinite(expiresAt) || expiresAt <= now) throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
      if (expiresAt > maxAt) {
        throw new InvalidArgumentError(`expires_at is past this slice authority's maximum slice lifetime (${this.o.limits.max_slice_lifetime_s} s, i.e. ${new Date(maxAt).toISOString()}); ask for an earlier expiry`, {
          field: 'expires_at',
        });
      }
    }
    const urn = makeUrn(this.domain, 'slice', req.name);
    const fingerprint = createHash('sha256')
      .update(canonicalJson(CreateSliceRequest.toJSON({ ...req, requestId: '', wait: false }) as Record<string, unknown>))
      .digest('base64url');
    const requestKey = `${caller.urn} ${rid}`;

    const admitted = await this.admission.run(async (): Promise<{ rec: SliceRecord; intent?: IntentRecord }> => {
      const prior = await this.requestTable.get(requestKey);
      if (prior) {
        if (prior.fingerprint !== fingerprint) throw new AlreadyExistsError(`request id ${rid} was already used for another CreateSlice; use a new request id`, { rule: 'request_id' });
        const rec = this.slices.get(prior.sliceUrn);
        if (!rec || rec.requestId !== rid) throw new FailedPreconditionError(`request id ${rid} made slice ${prior.sliceUrn}, which has since been replaced by another request`);
        return { rec };
      }
      const existing = this.slices.get(urn);
      if (existing && !ENDED.has(existing.state)) {
        throw new AlreadyExistsError(`slice name ${req.name} is taken (${urn} is ${existing.state}); choose another name or delete that slice first`, { rule: 'name' });
      }
      if (existing && [...this.intents.values()].some((i) => i.sliceUrn === urn)) {
        throw new AlreadyExistsError(`slice ${urn} is still being cleaned up at some site; choose another name or try again later`, { rule: 'name' });
      }
      const mine = [...this.slices.values()].filter((s) => s.providerUrn === caller.urn && LIVE.has(s.state));
      const used = mine.reduce((a, s) => addUse(a, this.useOf(s)), NO_USE);
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
        seq: (existing?.seq ?? 0) + 1,
        sites,
      };
      const intent: IntentRecord = { id: `int-${randomBytes(8).toString('hex')}`, kind: 'create', sliceUrn: urn, sites: sites.map((s) => s.site), createdAt: now };
      await this.o.store
        .batch()
        .put(this.sliceTable, urn, rec)
        .put(this.requestTable, requestKey, { sliceUrn: urn, fingerprint, createdAt: now })
        .put(this.intentTable, intent.id, intent)
        .write({ sync: true });
      this.slices.set(urn, rec);
      this.intents.set(intent.id, intent);
      this.o.log.info({ slice: urn, provider: caller.urn, sites: intent.sites, mode: rec.mode }, 'slice requested');
      return { rec, intent };
    });

    if (!admitted.intent) {
      // A retry: the slice as it is now (once stable, if the caller waits).
      if (req.wait && admitted.rec.state === 'pending') await this.locks.run(urn, () => undefined);
      return sliceToWire(this.slices.get(urn) ?? admitted.rec);
    }
    const intent = admitted.intent;
    this.publish(admitted.rec, { message: `slice requested on ${intent.sites.join(', ')}`, snapshot: true });
    const work = this.track(this.locks.run(urn, () => this.carryOut(intent)));
    if (req.wait) {
      await work;
      return sliceToWire(this.slices.get(urn) as SliceRecord);
    }
    work.catch((err: unknown) => this.o.log.error({ err, slice: urn }, 'slice creation failed'));
    return sliceToWire(admitted.rec);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    void p.then(
      () => this.running.delete(p),
      () => this.running.delete(p),
    );
    return p;
  }

  /** Asks every site of a create intent, then settles the outcome (rolling back as the mode says). */
  private async carryOut(intent: IntentRecord): Promise<void> {
    const rec0 = this.slices.get(intent.sliceUrn) as SliceRecord;
    const outcomes = await Promise.all(rec0.sites.map((s, i) => this.createAt(rec0, intent, i, s)));
    const rec = this.slices.get(intent.sliceUrn) as SliceRecord;
    const failed = rec.sites.filter((_, i) => (outcomes[i] as SiteCreate).outcome.code !== 0).map((s) => s.site);
    const allOrNothing = rec.mode === 'all_or_nothing';

    let sites: SiteRecord[];
    let undo: { site: string; urns: string[] }[] = [];
    if (allOrNothing && failed.length > 0) {
      const why = `rolled back: the slice is all or nothing and ${failed.join(', ')} failed`;
      sites = rec.sites.map((s, i) => {
        const o = outcomes[i] as SiteCreate;
        const reason = o.outcome.code ? o.outcome.reason : why;
        return { ...s, style: o.style, code: o.outcome.code || Status.ABORTED, reason, slivers: storeSlivers(released(o.slivers, reason)), manifest: '', expiresAt: undefined } as SiteRecord;
      });
      undo = rec.sites.filter((_, i) => (outcomes[i] as SiteCreate).mayHold).map((s) => ({ site: s.site, urns: [rec.urn] }));
    } else {
      sites = rec.sites.map((s, i) => {
        const o = outcomes[i] as SiteCreate;
        const ok = o.slivers.filter((x) => !x.error);
        const bad = o.slivers.filter((x) => x.error);
        if (ok.length === 0) {
          if (o.mayHold) undo.push({ site: s.site, urns: [rec.urn] });
          return { ...s, style: o.style, code: o.outcome.code || Status.UNKNOWN, reason: o.outcome.reason, slivers: storeSlivers(released(o.slivers, o.outcome.reason)), manifest: '', expiresAt: undefined } as SiteRecord;
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
    const unreachable = new Set(rec.sites.filter((_, i) => [Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED].includes((outcomes[i] as SiteCreate).outcome.code)).map((s) => s.site));
    const now = undo.filter((u) => !(unreachable.has(u.site) && u.urns[0] === rec.urn));
    const undone = await Promise.all(now.map((u) => this.deleteAt(rec.urn, u.site, u.urns)));
    const stillHeld = [
      ...undo.filter((u) => unreachable.has(u.site) && u.urns[0] === rec.urn).map((u) => u.site),
      ...undone.filter((d) => d.outcome.code !== 0 && now.find((u) => u.site === d.site)?.urns[0] === rec.urn).map((d) => d.site),
    ];
    for (const d of undone) {
      if (d.outcome.code === 0) continue;
      this.o.log.warn({ slice: rec.urn, site: d.site, reason: d.outcome.reason }, 'rollback at a site did not finish; it will be retried');
    }
    const withSlivers = sites.filter((s) => liveSlivers(s).length > 0);
    const state: StateName = allOrNothing ? (failed.length ? 'failed' : 'ready') : withSlivers.length === 0 ? 'failed' : failed.length || sites.some((s) => s.code !== 0) ? 'partial' : 'ready';
    const expiries = withSlivers.filter((s) => s.expiresAt !== undefined).map((s) => s.expiresAt as number);
    const expiresAt = expiries.length ? Math.min(rec.expiresAt, ...expiries) : rec.expiresAt;
    const next: SliceRecord = { ...rec, state, sites, expiresAt, updatedAt: this.now };
    const batch = this.o.store.batch().put(this.sliceTable, rec.urn, next).del(this.intentTable, intent.id);
    let retry: IntentRecord | undefined;
    if (stillHeld.length) {
      retry = { id: `int-${randomBytes(8).toString('hex')}`, kind: 'delete', sliceUrn: rec.urn, sites: stillHeld, final: state === 'failed' ? 'failed' : 'deleted', createdAt: this.now };
      if (state !== 'failed') {
        // A best-effort slice whose site could not be rolled back keeps that site listed as failed; the retry only cleans it.
        retry = { ...retry, final: undefined };
      }
      batch.put(this.intentTable, retry.id, retry);
    }
    await batch.write({ sync: true });
    this.intents.delete(intent.id);
    if (retry) this.intents.set(retry.id, retry);
    this.slices.set(rec.urn, next);
    const summary = sites.map((s) => `${s.site} ${s.code === 0 ? 'ok' : Status[s.code] ?? s.code}`).join(', ');
    this.publish(next, { message: `slice ${state}: ${summary}`, snapshot: true, status: state === 'failed' ? { code: Status.ABORTED, reason: failed.join(', ') } : OK });
    this.o.log.info({ slice: rec.urn, state, failed }, 'slice settled');
  }

  /** One site's part of a CreateSlice: Allocate, Provision, start, within the site's deadline. */
  private async createAt(rec: SliceRecord, intent: IntentRecord, index: number, sr: SiteRecord): Promise<SiteCreate> {
    const site = this.o.sites.get(sr.site) as Site;
    const end = this.now + this.o.limits.site_deadline_ms;
    const left = (step: string): number => {
      const ms = end - this.now;
      if (ms <= 0) throw new DeadlineExceededError(`${step} not done within the site's deadline of ${this.o.limits.site_deadline_ms} ms`);
      return ms;
    };
    const bestEffort = rec.mode === 'best_effort';
    let mayHold = false;
    let style: number = SiteStyle.SITE_STYLE_UNSPECIFIED;
    let slivers: Sliver[] = [];
    try {
      const version = await this.o.sites.version(site, left('GetVersion'));
      style = version.style;
      const latest = this.o.sites.latest(site, version, rec.createdAt);
      const expiresAt = Math.min(rec.expiresAt, latest.at);
      if (expiresAt <= this.now + 1000) {
        throw new FailedPreconditionError(`nothing can be created there: ${latest.rule} ends at ${new Date(latest.at).toISOString()}; ask the site's admin for a new MA → SA chain`);
      }
      mayHold = true;
      let alloc;
      try {
        alloc = await site.client.allocate(
          { requestId: `${intent.id}.${index}`, sliceUrn: rec.urn, providerUrn: rec.providerUrn, request: ResourceRequest.fromJSON(sr.request), expiresAt: new Date(expiresAt) },
          { chain: site.chain, deadlineMs: left('Allocate') },
        );
      } catch (err) {
        if (nothingHeld(err)) mayHold = false;
        throw err;
      }
      slivers = alloc.slivers;
      for (const s of alloc.slivers) this.publish(rec, { site: sr.site, nodeUrn: s.nodeUrn, sliverUrn: s.urn, message: 'allocated' });
      // Provision starts the slivers too (one node call each instead of two); a start the site did not do is asked for below.
      const prov = await site.client.provision({ urns: [rec.urn], bestEffort, expiresAt: new Date(expiresAt), start: rec.start }, { chain: site.chain, deadlineMs: left('Provision') });
      const results = new Map(prov.results.map((r) => [r.sliverUrn, r]));
      for (const r of prov.results) {
        this.publish(rec, { site: sr.site, nodeUrn: r.nodeUrn, sliverUrn: r.sliverUrn, status: r.status ?? OK, message: r.status?.code ? `provision failed: ${r.status.reason}` : 'provisioned' });
        if (rec.start && !r.status?.code && isStarted(r.sliver)) this.publish(rec, { site: sr.site, nodeUrn: r.nodeUrn, sliverUrn: r.sliverUrn, status: OK, message: 'started' });
      }
      if (rec.start) {
        const ok = prov.results.filter((r) => !r.status?.code && !isStarted(r.sliver)).map((r) => r.sliverUrn);
        if (ok.length) {
          const act = await site.client.performOperationalAction(
            { urns: ok.length === prov.results.length ? [rec.urn] : ok, action: OperationalAction.OPERATIONAL_ACTION_START, bestEffort },
            { chain: site.chain, deadlineMs: left('start') },
          );
          for (const r of act.results) {
            results.set(r.sliverUrn, r);
            this.publish(rec, { site: sr.site, nodeUrn: r.nodeUrn, sliverUrn: r.sliverUrn, status: r.status ?? OK, message: r.status?.code ? `start failed: ${r.status.reason}` : 'started' });
          }
        }
      }
      const all = [...results.values()];
      const bad = failedOf(all);
      slivers = all.map((r) => ({ ...(r.sliver as Sliver), urn: r.sliverUrn, nodeUrn: r.nodeUrn || r.sliver?.nodeUrn || '', error: r.status?.code ? r.status.reason : (r.sliver?.error ?? '') }));
      const outcome: Outcome = bad.length
        ? { code: bad[0]?.status?.code ?? Status.UNKNOWN, reason: `site ${sr.site}: ${bad.length} of ${all.length} slivers failed: ${bad.map(sliverLine).join('; ')}` }
        : OK;
      const expiries = slivers.filter((s) => !s.error && s.expiresAt).map((s) => (s.expiresAt as Date).getTime());
      this.publish(rec, { site: sr.site, status: outcome, message: bad.length ? outcome.reason : `site ${sr.site}: ${all.length} slivers ${rec.start ? 'started' : 'provisioned'}` });
      return { outcome, slivers, manifest: prov.manifestDocument || alloc.manifestDocument, expiresAt: expiries.length ? Math.min(...expiries) : expiresAt, mayHold, style };
    } catch (err) {
      const outcome = outcomeOf(err, `site ${sr.site}`);
      this.publish(rec, { site: sr.site, status: outcome, message: outcome.reason });
      return { outcome, slivers: slivers.map((s) => ({ ...s, error: outcome.reason })), manifest: '', mayHold, style };
    }
  }

  // ---- Deleting -------------------------------------------------------------------------------

  /** Delete at one site (the whole slice, or some slivers), within the site's deadline; OK only when every sliver is gone. */
  private async deleteAt(sliceUrn: string, domain: string, urns: readonly string[]): Promise<SiteCall> {
    const site = this.o.sites.get(domain);
    if (!site) return { site: domain, outcome: { code: Status.FAILED_PRECONDITION, reason: `site ${domain} is no longer configured here; its slivers expire on their own` }, results: [] };
    try {
      const res = await site.client.delete({ urns: [...urns], bestEffort: true }, { chain: site.chain, deadlineMs: this.o.limits.site_deadline_ms });
      const bad = failedOf(res.results);
      const outcome: Outcome = bad.length ? { code: bad[0]?.status?.code ?? Status.UNKNOWN, reason: `site ${domain}: ${bad.length} slivers not deleted yet: ${bad.map(sliverLine).join('; ')}` } : OK;
      return { site: domain, outcome, results: res.results };
    } catch (err) {
      // A slice the site no longer knows is deleted there.
      if (isServiceError(err, Status.NOT_FOUND) && urns.length === 1 && urns[0] === sliceUrn) return { site: domain, outcome: OK, results: [] };
      return { site: domain, outcome: outcomeOf(err, `site ${domain}`), results: [] };
    }
  }

  /**
   * Works a delete intent: Delete at each of its sites; sites that confirm
   * leave the intent; when none is left the slice takes the intent's final
   * state. Call holding the slice's lock.
   */
  private async finishDelete(intent: IntentRecord): Promise<SiteCall[]> {
    const calls = await Promise.all(intent.sites.map((d) => this.deleteAt(intent.sliceUrn, d, [intent.sliceUrn])));
    const remaining = calls.filter((c) => c.outcome.code !== 0).map((c) => c.site);
    const rec = this.slices.get(intent.sliceUrn);
    const batch = this.o.store.batch();
    let next: SliceRecord | undefined;
    if (rec) {
      const cleaned = new Set(calls.filter((c) => c.outcome.code === 0).map((c) => c.site));
      const sites = rec.sites.map((s) => {
        const call = calls.find((c) => c.site === s.site);
        if (!call) return s;
        if (cleaned.has(s.site)) return { ...s, slivers: [] };
        return { ...s, code: call.outcome.code, reason: `delete not finished, retrying: ${call.outcome.reason}` };
      });
      const state: StateName = remaining.length === 0 && intent.final ? intent.final : rec.state;
      next = { ...rec, sites, state, updatedAt: this.now };
      batch.put(this.sliceTable, rec.urn, next);
    }
    if (remaining.length === 0) batch.del(this.intentTable, intent.id);
    else batch.put(this.intentTable, intent.id, { ...intent, sites: remaining });
    await batch.write({ sync: true });
    if (remaining.length === 0) this.intents.delete(intent.id);
    else this.intents.set(intent.id, { ...intent, sites: remaining });
    if (next && rec) {
      this.slices.set(rec.urn, next);
      for (const c of calls) {
        for (const r of c.results) this.publish(next, { site: c.site, nodeUrn: r.nodeUrn, sliverUrn: r.sliverUrn, status: r.status ?? OK, message: r.status?.code ? `delete failed: ${r.status.reason}` : 'deleted' });
        if (c.outcome.code !== 0) this.publish(next, { site: c.site, status: c.outcome, message: c.outcome.reason });
        else {
          // A site that had already let the slivers go (its own expiry sweep can come first) answers with
          // no per-sliver results; its slivers are gone all the same, and every watcher hears so per node.
          const told = new Set(c.results.map((r) => r.sliverUrn));
          const before = rec.sites.find((x) => x.site === c.site);
          for (const x of before ? sliversOf(before) : []) {
            if (x.allocationState === AllocationState.ALLOCATION_STATE_UNALLOCATED || told.has(x.urn)) continue;
            this.publish(next, { site: c.site, nodeUrn: x.nodeUrn, sliverUrn: x.urn, status: OK, message: 'deleted' });
          }
        }
      }
      this.publish(next, { message: remaining.length ? `slice ${next.state}; still to clean up at ${remaining.join(', ')}` : `slice ${next.state}`, snapshot: true });
    }
    return calls;
  }

  private intentOf(sliceUrn: string, kind: IntentRecord['kind']): IntentRecord | undefined {
    return [...this.intents.values()].find((i) => i.sliceUrn === sliceUrn && i.kind === kind);
  }

  /** Starts deleting a slice everywhere (`final`: deleted or expired); call holding the slice's lock. */
  private async deleteLocked(urn: string, final: 'deleted' | 'expired'): Promise<SiteCall[]> {
    const rec = this.slices.get(urn) as SliceRecord;
    if (rec.state === 'deleted' || rec.state === 'expired') return [];
    const pending = this.intentOf(urn, 'delete');
    // Sites with live slivers, and those an unfinished delete still has to clean; a site that never held
    // anything (refused, or never reached) is not asked again.
    // A failed sliver that its site still holds (a start that failed, or one GetSlice saw fail) is deleted too.
    const holds = (s: SiteRecord): boolean => sliversOf(s).some((x) => x.allocationState !== AllocationState.ALLOCATION_STATE_UNALLOCATED);
    const sites = [...new Set([...(pending?.sites ?? []), ...rec.sites.filter(holds).map((s) => s.site)])];
    if (sites.length === 0) {
      const next: SliceRecord = { ...rec, state: final, updatedAt: this.now };
      await this.sliceTable.put(urn, next, { sync: true });
      this.slices.set(urn, next);
      this.publish(next, { message: `slice ${final}`, snapshot: true });
      return [];
    }
    const intent: IntentRecord = { id: pending?.id ?? `int-${randomBytes(8).toString('hex')}`, kind: 'delete', sliceUrn: urn, sites, final, createdAt: pending?.createdAt ?? this.now };
    const next: SliceRecord = { ...rec, state: 'deleting', updatedAt: this.now };
    await this.o.store.batch().put(this.intentTable, intent.id, intent).put(this.sliceTable, urn, next).write({ sync: true });
    this.intents.set(intent.id, intent);
    this.slices.set(urn, next);
    this.publish(next, { message: final === 'expired' ? 'slice expired: deleting it at every site' : 'deleting the slice at every site' });
    return this.finishDelete(intent);
  }

  /** DeleteSlice: every site, idempotent. DELETED, or DELETING while a site still has to confirm (retried in the background). */
  async delete(caller: Caller, urn: string): Promise<SliceWithResults> {
    this.owned(caller, urn);
    if (this.stopping) throw new FailedPreconditionError('the slice authority is stopping; try again shortly');
    const calls = await this.track(this.locks.run(urn, () => this.deleteLocked(urn, 'deleted')));
    return { slice: sliceToWire(this.slices.get(urn) as SliceRecord), results: calls.map((c) => this.siteResult(c)) };
  }

  private siteResult(c: SiteCall): SiteResult {
    const site = this.o.sites.get(c.site);
    return { site: c.site, aggregateUrn: site?.maUrn ?? '', status: { code: c.outcome.code, reason: c.outcome.reason }, slivers: [...c.results] };
  }

  // ---- RenewSlice -----------------------------------------------------------------------------

  /**
   * RenewSlice: each site is asked for the requested expiry capped by this
   * authority's maximum, the site's maximum, its chain's expiry and ttl. The
   * slice's sites show the expiry each actually granted; the slice expires
   * with the earliest of them.
   */
  async renew(caller: Caller, req: RenewSliceRequest): Promise<SliceWithResults> {
    const rec0 = this.owned(caller, req.sliceUrn);
    const at = req.expiresAt?.getTime();
    if (at === undefined || !Number.isFinite(at)) throw new InvalidArgumentError('expires_at is required', { field: 'expires_at' });
    if (at <= this.now) throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
    if (rec0.state !== 'ready' && rec0.state !== 'partial') {
      throw new FailedPreconditionError(`slice ${rec0.urn} is ${rec0.state}; only a READY or PARTIAL slice can be renewed`, { rule: 'state' });
    }
    return this.track(this.locks.run(rec0.urn, async () => {
      const rec = this.slices.get(rec0.urn) as SliceRecord;
      if (rec.state !== 'ready' && rec.state !== 'partial') throw new FailedPreconditionError(`slice ${rec.urn} is ${rec.state}; only a READY or PARTIAL slice can be renewed`, { rule: 'state' });
      const bestEffort = req.bestEffort || rec.mode === 'best_effort';
      const maxAt = this.now + this.o.limits.max_slice_lifetime_s * 1000;
      const calls = await Promise.all(
        rec.sites.map(async (s): Promise<SiteCall & { granted?: number }> => {
          if (liveSlivers(s).length === 0) return { site: s.site, outcome: s.code ? { code: s.code, reason: s.reason } : OK, results: [] };
          const site = this.o.sites.get(s.site);
          if (!site) return { site: s.site, outcome: { code: Status.FAILED_PRECONDITION, reason: `site ${s.site} is no longer configured here` }, results: [] };
          try {
            const version = await this.o.sites.version(site, this.o.limits.site_deadline_ms).catch(() => undefined);
            const latest = this.o.sites.latest(site, version, rec.createdAt);
            const granted = Math.min(at, maxAt, latest.at);
            if (granted <= this.now) return { site: s.site, outcome: { code: Status.PERMISSION_DENIED, reason: `site ${s.site}: cannot renew, ${latest.rule} has passed` }, results: [] };
            const res = await site.client.renew({ urns: [rec.urn], expiresAt: new Date(granted), bestEffort }, { chain: site.chain, deadlineMs: this.o.limits.site_deadline_ms });
            const bad = failedOf(res.results);
            const outcome: Outcome = bad.length ? { code: bad[0]?.status?.code ?? Status.UNKNOWN, reason: `site ${s.site}: ${bad.length} slivers not renewed: ${bad.map(sliverLine).join('; ')}` } : OK;
            return { site: s.site, outcome, results: res.results, ...(bad.length < res.results.length ? { granted } : {}) };
          } catch (err) {
            return { site: s.site, outcome: outcomeOf(err, `site ${s.site}`), results: [] };
          }
        }),
      );
      const sites = rec.sites.map((s, i) => {
        const c = calls[i] as SiteCall & { granted?: number };
        if (c.granted === undefined) return s;
        const renewed = new Map(c.results.filter((r) => !r.status?.code && r.sliver).map((r) => [r.sliverUrn, r.sliver as Sliver]));
        const slivers = sliversOf(s).map((x) => renewed.get(x.urn) ?? x);
        const expiries = slivers.filter((x) => renewed.has(x.urn) && x.expiresAt).map((x) => (x.expiresAt as Date).getTime());
        return { ...s, slivers: storeSlivers(slivers), expiresAt: expiries.length ? Math.min(...expiries) : c.granted };
      });
      const expiries = sites.filter((s) => liveSlivers(s).length > 0 && s.expiresAt !== undefined).map((s) => s.expiresAt as number);
      const next: SliceRecord = { ...rec, sites, expiresAt: expiries.length ? Math.min(...expiries) : rec.expiresAt, updatedAt: this.now };
      await this.sliceTable.put(rec.urn, next, { sync: true });
      this.slices.set(rec.urn, next);
      const failed = calls.filter((c) => c.outcome.code !== 0).map((c) => c.site);
      this.publish(next, { message: `renewed until ${new Date(next.expiresAt).toISOString()}${failed.length ? `; not at ${failed.join(', ')}` : ''}`, snapshot: true });
      return { slice: sliceToWire(next), results: calls.map((c) => this.siteResult(c)) };
    }));
  }

  // ---- WatchSlice -----------------------------------------------------------------------------

  /** WatchSlice: a snapshot (or the retained events after `after_sequence`), then each event; ends at a stable state unless `follow`. */
  async *watch(caller: Caller, req: WatchSliceRequest, signal: AbortSignal): AsyncGenerator<WatchSliceResponse> {
    const rec = this.owned(caller, req.sliceUrn);
    if (!Number.isSafeInteger(req.afterSequence) || req.afterSequence < 0) throw new InvalidArgumentError('after_sequence must be 0 or more', { field: 'after_sequence' });
    const queue: WatchSliceResponse[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = this.o.hub.subscribe(rec.urn, (e) => {
      queue.push(e);
      wake?.();
    });
    const onAbort = (): void => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      let last: number;
      let state = rec.state;
      if (req.afterSequence === 0) {
        yield this.event(rec, { message: 'snapshot', snapshot: true }, rec.seq);
        last = rec.seq;
      } else {
        last = req.afterSequence;
        for (const e of this.o.hub.since(rec.urn, last)) {
          yield e;
          last = e.sequence;
          state = stateFromWire(e.state) ?? state;
        }
        state = this.slices.get(rec.urn)?.state ?? state;
      }
      const done = (s: StateName): boolean => (req.follow ? s === 'deleted' || s === 'expired' : STABLE.has(s));
      if (done(state)) return;
      while (!signal.aborted) {
        const e = queue.shift();
        if (!e) {
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
          continue;
        }
        if (e.sequence <= last) continue;
        last = e.sequence;
        yield e;
        const s = stateFromWire(e.state);
        if (e.site === '' && e.slice && s && done(s)) return;
      }
    } finally {
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
    }
  }

  private event(rec: SliceRecord, e: EventInput, sequence: number): WatchSliceResponse {
    return {
      sequence,
      time: new Date(this.now),
      sliceUrn: rec.urn,
      state: stateToWire(rec.state),
      site: e.site ?? '',
      nodeUrn: e.nodeUrn ?? '',
      sliverUrn: e.sliverUrn ?? '',
      status: { code: e.status?.code ?? 0, reason: e.status?.reason ?? '' },
      message: e.message,
      ...(e.snapshot ? { slice: sliceToWire(rec) } : {}),
    };
  }

  /** Gives an event the slice's next sequence number (kept in memory; written with the slice's next write) and publishes it. */
  private publish(rec: SliceRecord, e: EventInput): void {
    const cur = this.slices.get(rec.urn) ?? rec;
    const seq = cur.seq + 1;
    const next = { ...cur, seq };
    this.slices.set(rec.urn, next);
    this.o.hub.publish(this.event(next, e, seq));
  }

  // ---- Background work ------------------------------------------------------------------------

  /**
   * Expiry: live slices past their expiry are deleted at every site (node managers also reap on their
   * own); failed ones past it become EXPIRED too (after any cleanup they still owe), leaving the listing.
   */
  async sweep(): Promise<number> {
    const now = this.now;
    const due = [...this.slices.values()].filter((s) => (s.state === 'ready' || s.state === 'partial' || s.state === 'failed') && s.expiresAt <= now && !this.locks.busy(s.urn));
    await Promise.all(due.map((s) => this.track(this.locks.run(s.urn, () => this.deleteLocked(s.urn, 'expired')))));
    if (due.length) this.o.log.info({ slices: due.map((s) => s.urn) }, 'expired slices deleted');
    return due.length;
  }

  /** Retries delete intents whose sites did not confirm yet. */
  async retryIntents(): Promise<void> {
    const work = [...this.intents.values()]
      .filter((i) => i.kind === 'delete' && !this.locks.busy(i.sliceUrn))
      .map((i) =>
        this.track(
          this.locks.run(i.sliceUrn, async () => {
            const cur = this.intents.get(i.id);
            if (cur) await this.finishDelete(cur);
          }),
        ),
      );
    await Promise.all(work);
  }

  /**
   * Settles what a previous process left unfinished, before the first call:
   * every `create` intent is rolled back (the slice FAILED, Delete at each of
   * its sites), every `delete` intent is worked once. Sites that do not answer
   * stay in their intents and are retried in the background.
   */
  async recover(): Promise<{ rolledBack: number; finished: number; pending: number }> {
    let rolledBack = 0;
    for (const intent of [...this.intents.values()]) {
      if (intent.kind !== 'create') continue;
      const rec = this.slices.get(intent.sliceUrn);
      const del: IntentRecord = { id: intent.id, kind: 'delete', sliceUrn: intent.sliceUrn, sites: intent.sites, final: 'failed', createdAt: this.now };
      const batch = this.o.store.batch().put(this.intentTable, intent.id, del);
      let next: SliceRecord | undefined;
      if (rec) {
        const why = 'rolled back: the slice authority restarted while creating the slice; create it again';
        next = {
          ...rec,
          state: 'failed',
          updatedAt: this.now,
          sites: rec.sites.map((s) => ({ ...s, code: Status.ABORTED, reason: why, slivers: [], manifest: '', expiresAt: undefined }) as SiteRecord),
        };
        batch.put(this.sliceTable, rec.urn, next);
      }
      await batch.write({ sync: true });
      this.intents.set(intent.id, del);
      if (next) this.slices.set(next.urn, next);
      rolledBack++;
      this.o.log.warn({ slice: intent.sliceUrn, sites: intent.sites }, 'rolling back a slice creation interrupted by a restart');
    }
    const before = this.intents.size;
    await Promise.all([...this.intents.values()].map((i) => this.locks.run(i.sliceUrn, () => this.finishDelete(i))));
    const pending = this.intents.size;
    return { rolledBack, finished: before - pending, pending };
  }

  /** Stops taking new work and waits for work in progress (each part is bounded by the site deadline). */
  async stop(): Promise<void> {
    this.stopping = true;
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  /** Throws FAILED_PRECONDITION unless the slice is live (for credentials). */
  requireLive(rec: SliceRecord): void {
    if (rec.state !== 'ready' && rec.state !== 'partial' && rec.state !== 'pending') {
      throw new FailedPreconditionError(`slice ${rec.urn} is ${rec.state}; credentials are issued only for live slices (create it again)`, { rule: 'state' });
    }
  }
}

/** What an event says, before it gets its sequence number. */
interface EventInput {
  readonly message: string;
  readonly site?: string;
  readonly nodeUrn?: string;
  readonly sliverUrn?: string;
  readonly status?: ResultStatus;
  readonly snapshot?: boolean;
}
