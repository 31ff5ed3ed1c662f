/**
 * The site's Aggregate API (GENI AM API v3 semantics, DESIGN §2–§3, §6).
 *
 * - Allocate holds capacity in the MA's own books only: one atomic batch
 *   (slice, slivers, request id) after an all-or-nothing admission that runs
 *   under one in-process mutex, so no node is ever over-committed. Holds end
 *   after `allocation_hold_s` unless provisioned; a sweeper releases them.
 * - Work on node managers (Provision, Delete, swap-out/in) is written first as
 *   an intent, with the slivers marked busy, in one batch; then the node calls
 *   run in parallel with deadlines; then one batch records the outcome. An
 *   intent still present at start-up is finished (delete, swap-out) or undone
 *   (provision, swap-in): no node keeps a sliver the MA does not know of.
 * - Every state change of the books goes through {@link Aggregate.mutate}
 *   (the mutex plus one batch); work on one slice is serialised by its lock.
 */
import { createHash, randomBytes } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import { canonicalJson } from '../core/canonical-json.js';
import type { RevocationLookup } from '../core/credentials/index.js';
import {
  AbortedError,
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  FedlabError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnavailableError,
} from '../core/errors.js';
import { parseUrn } from '../core/identity/urn.js';
import type { Logger } from '../core/log.js';
import type { CallContext } from '../core/rpc/context.js';
import { AllocationState, NodeHealth, SiteStyle, type SliverResult, type Sliver } from '../generated/fedlab/v1/common.js';
import {
  OperationalAction,
  type AdvertisedNode,
  type AggregateAllocateRequest,
  type AggregateAllocateResponse,
  type AggregateDescribeResponse,
  type AggregateGetVersionResponse,
  type AggregateListResourcesRequest,
  type AggregateListResourcesResponse,
  type AggregatePerformOperationalActionRequest,
  type AggregateProvisionRequest,
  type AggregateProvisionResponse,
  type AggregateRenewRequest,
  type AggregateShutdownRequest,
  type AggregateStatusResponse,
} from '../generated/fedlab/v1/aggregate.js';
import { SliverAction } from '../generated/fedlab/v1/node_manager.js';
import type { Access, ChainAccess, Peer } from './access.js';
import type { Book, BookTx } from './book.js';
import type { Clock } from './clock.js';
import type { RevocationRelay } from './revocation-relay.js';
import type { StyleName } from './config.js';
import type { NetLab } from './netlab.js';
import { linkAddress } from './netlab.js';
import type { NodeClients, NodeResult } from './node-clients.js';
import { toSpec, type LiveNode, type NodeRegistry } from './node-registry.js';
import { decodeToken, encodeToken, firstAfter } from './paging.js';
import type { ProviderRegistry } from './providers.js';
import { addResources, freeOf, shortfall, type InterfaceRecord, type IntentRecord, type LinkSpec, type Resources, type SliceRecord, type SliverRecord } from './records.js';
import { MAX_LINKS, normalizeRequest, RSPEC_FORMAT, styleRules, type StyleRules, type WantedSliver } from './requests.js';
import { KeyedMutex, Mutex } from '../core/mutex.js';
import { pageSize, requestId, text, urnField } from '../core/validate.js';
import { goneSliver, linksToWire, manifestDocument, operationalOf, sliverToWire } from './wire.js';

/** Site settings of the aggregate. */
export interface AggregateSettings {
  readonly style: StyleName;
  readonly holdS: number;
  readonly defaultLifetimeS: number;
  readonly maxLifetimeS: number;
  readonly defaults: Resources;
  readonly maxLinkKbps: number;
  readonly requireRegisteredProviders: boolean;
  readonly terms: string;
  readonly softwareVersion: string;
}

/** Options of {@link Aggregate}. */
export interface AggregateOptions {
  readonly book: Book;
  readonly registry: NodeRegistry;
  readonly access: Access;
  readonly nodes: NodeClients;
  readonly providers: ProviderRegistry;
  readonly netlab: NetLab;
  readonly revocations: RevocationLookup;
  /** Slice authorities' signed revocation lists, passed on to the nodes of their slices. */
  readonly relay: RevocationRelay;
  readonly clock: Clock;
  readonly log: Logger;
  readonly maUrn: string;
  readonly maKid: string;
  readonly settings: AggregateSettings;
}

/** A sliver's outcome in a fan-out call. */
type Outcome = { readonly ok: true } | { readonly ok: false; readonly code: number; readonly reason: string };

/** How long an Allocate request id is remembered after its slice is gone here (a retry within it gets the same answer). */
export const ALLOCATE_REQUEST_RETENTION_MS = 24 * 3_600_000;
/** How often the sweeper looks for request ids to forget. */
export const ALLOCATE_REQUEST_SCAN_MS = 10 * 60_000;

const OK: Outcome = { ok: true };
const fail = (code: number, reason: string): Outcome => ({ ok: false, code, reason });

const STYLE: Record<StyleName, SiteStyle> = {
  planetlab: SiteStyle.SITE_STYLE_PLANETLAB,
  emulab: SiteStyle.SITE_STYLE_EMULAB,
  protogeni: SiteStyle.SITE_STYLE_PROTOGENI,
};

/** The typed error for a gRPC code (the whole call fails with the first failure's code). */
function errorFor(code: number, message: string): FedlabError {
  switch (code) {
    case Status.INVALID_ARGUMENT:
      return new InvalidArgumentError(message);
    case Status.NOT_FOUND:
      return new NotFoundError(message);
    case Status.ALREADY_EXISTS:
      return new AlreadyExistsError(message);
    case Status.PERMISSION_DENIED:
      return new PermissionDeniedError(message);
    case Status.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(message);
    case Status.FAILED_PRECONDITION:
      return new FailedPreconditionError(message);
    case Status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(message);
    case Status.ABORTED:
      return new AbortedError(message);
    default:
      return new UnavailableError(message);
  }
}

/** Throws, for an all-or-nothing call, the failures of every sliver that failed (nothing was changed). */
function throwFailures(what: string, failures: readonly { sliver: SliverRecord; outcome: Outcome }[]): never {
  const bad = failures.filter((f) => !f.outcome.ok) as { sliver: SliverRecord; outcome: { ok: false; code: number; reason: string } }[];
  const first = bad[0] as (typeof bad)[number];
  const lines = bad.slice(0, 10).map((f) => `${f.sliver.urn} on ${f.sliver.nodeUrn}: ${f.outcome.reason}`);
  const more = bad.length > 10 ? `; and ${bad.length - 10} more` : '';
  throw errorFor(first.outcome.code, `${what} failed for ${bad.length} sliver(s), so nothing was done (ask with best_effort to keep what works): ${lines.join('; ')}${more}`);
}

function minResources(a: Resources, b: Resources): boolean {
  return shortfall(a, b) === undefined;
}

/** The Aggregate domain. */
export class Aggregate {
  private readonly book: Book;
  private readonly rules: StyleRules;
  private readonly domain: string;
  private readonly mutex = new Mutex();
  private readonly sliceLocks = new KeyedMutex();
  private lastRequestScan = -Infinity;
  private netemKnown = false;

  constructor(private readonly o: AggregateOptions) {
    this.book = o.book;
    this.rules = styleRules(o.settings.style);
    this.domain = parseUrn(o.maUrn).domain;
    o.registry.setCommittedOf((urn) => {
      const u = this.book.use(urn);
      return { committed: u.committed, slivers: u.slivers };
    });
  }

  private get now(): number {
    return this.o.clock.now();
  }

  /** Runs a change of the books: under the mutex, one batch, then memory. */
  private mutate<T>(fn: (tx: BookTx, now: number) => T | Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      const tx = this.book.tx();
      const result = await fn(tx, this.now);
      await tx.commit();
      return result;
    });
  }

  // ---- start-up, background ------------------------------------------------------------------

  /**
   * After a restart: finishes or undoes every intent left by the previous
   * process, releases expired holds, and removes network namespaces no sliver
   * owns. Intents whose nodes cannot be reached stay and are retried.
   */
  async recover(): Promise<{ settled: number; pending: number; orphans: string[] }> {
    let settled = 0;
    for (const id of [...this.book.intents.keys()]) {
      const intent = this.book.intents.get(id);
      if (!intent) continue;
      await this.sliceLocks.run(intent.sliceUrn, () => this.settle(id, {}));
      if (!this.book.intents.has(id)) settled++;
    }
    await this.sweep();
    const keep = new Set<string>();
    for (const s of this.book.slivers.values()) if (s.netns) keep.add(s.netns);
    const orphans = await this.o.netlab.removeOrphans(keep).catch((err: unknown) => {
      this.o.log.warn({ err: (err as Error).message }, 'could not list network namespaces');
      return [] as string[];
    });
    if (settled || this.book.intents.size) this.o.log.info({ settled, pending: this.book.intents.size }, 'intents of the previous run settled');
    return { settled, pending: this.book.intents.size, orphans };
  }

  /** Retries unfinished intents (e.g. a delete on a node that was down). */
  async retryIntents(): Promise<void> {
    for (const [id, intent] of [...this.book.intents]) {
      await this.sliceLocks.run(intent.sliceUrn, () => this.settle(id, {}));
    }
  }

  /**
   * Releases expired holds, and forgets slivers whose lifetime ended (their
   * node managers reap them on their own) and slices left with no sliver.
   */
  async sweep(): Promise<number> {
    const now = this.now;
    const direct: string[] = [];
    const onNodes = new Map<string, SliverRecord[]>();
    for (const urn of this.book.holds) {
      const s = this.book.slivers.get(urn);
      if (s && !s.phase && s.holdExpiresAt !== undefined && s.holdExpiresAt <= now) direct.push(urn);
    }
    for (const s of this.book.slivers.values()) {
      if (s.phase || s.allocation === 'allocated' || s.expiresAt > now) continue;
      if (s.allocation === 'unallocated') direct.push(s.urn);
      else onNodes.set(s.sliceUrn, [...(onNodes.get(s.sliceUrn) ?? []), s]);
    }
    let n = 0;
    if (direct.length) {
      n += await this.mutate((tx, t) => {
        const touched = new Set<string>();
        const gone = new Set<string>();
        for (const urn of direct) {
          const s = this.book.slivers.get(urn);
          if (!s || s.phase) continue;
          const expired = s.allocation === 'allocated' ? s.holdExpiresAt !== undefined && s.holdExpiresAt <= t : s.allocation === 'unallocated' && s.expiresAt <= t;
          if (!expired) continue;
          tx.delSliver(urn);
          gone.add(urn);
          touched.add(s.sliceUrn);
          this.o.log.info({ sliver: urn, slice: s.sliceUrn, node: s.nodeUrn }, s.allocation === 'allocated' ? 'allocation hold expired; released' : 'swapped-out sliver expired; forgotten');
        }
        for (const slice of touched) if (this.book.sliversOf(slice).every((s) => gone.has(s.urn))) tx.delSlice(slice);
        return gone.size;
      });
    }
    // Provisioned slivers past their expiry: their nodes reap them on their own; the MA deletes what it made (namespaces) and forgets them.
    for (const [slice, slivers] of onNodes) {
      await this.sliceLocks.run(slice, async () => {
        const due = slivers.filter((s) => {
          const cur = this.book.slivers.get(s.urn);
          return cur && !cur.phase && cur.allocation === 'provisioned' && cur.expiresAt <= this.now;
        });
        if (due.length) {
          this.o.log.info({ slice, slivers: due.length }, 'slivers expired; deleting');
          await this.deleteLocked(slice, due, Infinity);
          n += due.length;
        }
      });
    }
    await this.forgetAllocateRequests();
    return n;
  }

  /**
   * Forgets Allocate request ids whose slice is gone here and that are older than
   * {@link ALLOCATE_REQUEST_RETENTION_MS}: a retry that late gets a new allocation. The table is
   * scanned at most every {@link ALLOCATE_REQUEST_SCAN_MS}, and one batch deletes what is due. The
   * sweeper calls it; returns how many were forgotten.
   */
  async forgetAllocateRequests(): Promise<number> {
    const now = this.now;
    if (now - this.lastRequestScan < ALLOCATE_REQUEST_SCAN_MS) return 0;
    this.lastRequestScan = now;
    const due: string[] = [];
    for await (const [key, rec] of this.book.allocationTable.entries()) {
      if (!this.book.slices.has(rec.sliceUrn) && (rec.createdAt ?? 0) + ALLOCATE_REQUEST_RETENTION_MS <= now) due.push(key);
    }
    if (due.length === 0) return 0;
    // Checked again under each slice's lock would serialise the sweep behind every busy slice; the
    // mutex is enough: an Allocate that re-creates the slice writes its own, newer request key.
    await this.mutate((tx) => {
      for (const key of due) tx.delAllocation(key);
    });
    this.o.log.info({ forgotten: due.length }, 'old Allocate request ids forgotten');
    return due.length;
  }

  // ---- UpdateRevocations -------------------------------------------------------------------

  /**
   * UpdateRevocations: a slice authority this site delegated to hands over its own signed revocation
   * list; it is kept (when newer) and sent to every node holding slivers of that authority's slices,
   * each call with a deadline. Nodes that could not be reached are counted as pending: the slice
   * authority calls again until none is (and nodes that get a new sliver of it get the list then).
   */
  async updateRevocations(ctx: CallContext, jws: string): Promise<{ version: number; nodesUpdated: number; nodesPending: number }> {
    const access = this.o.access.chain(ctx, 'sliver.read');
    const sa = access.sliceAuthority;
    const { list, newer } = await this.o.relay.accept(jws, sa.kid);
    const nodes = new Set<string>();
    for (const slice of this.book.slices.values()) {
      if (slice.sliceAuthorityKid !== sa.kid) continue;
      for (const s of this.book.sliversOf(slice.urn)) if (s.allocation === 'provisioned') nodes.add(s.nodeUrn);
    }
    const sent = await this.o.nodes.fanOut([...nodes], (n) => n, (c, opts) => c.updateRevocations({ signedLists: [jws] }, opts), { deadline: ctx.deadline, signal: ctx.signal });
    const pending = sent.filter((r) => !r.ok);
    this.o.log.info({ sa: sa.urn, version: list.version, newer, nodes: nodes.size, pending: pending.length }, 'revocation list relayed');
    if (pending.length) this.o.log.warn({ sa: sa.urn, nodes: pending.map((r) => r.nodeUrn).slice(0, 20) }, 'revocation list not delivered to some nodes yet');
    return { version: list.version, nodesUpdated: sent.length - pending.length, nodesPending: pending.length };
  }

  /** Gives nodes that just got slivers of a slice the revocation list of its slice authority, if it has one (best effort). */
  private async relayTo(slice: SliceRecord, nodeUrns: readonly string[], deadline: number): Promise<void> {
    const jws = this.o.relay.signedFor(slice.sliceAuthorityKid);
    if (!jws || nodeUrns.length === 0) return;
    const sent = await this.o.nodes.fanOut([...new Set(nodeUrns)], (n) => n, (c, opts) => c.updateRevocations({ signedLists: [jws] }, opts), { deadline });
    const missed = sent.filter((r) => !r.ok);
    if (missed.length) this.o.log.warn({ slice: slice.urn, nodes: missed.map((r) => r.nodeUrn).slice(0, 20) }, "nodes did not take the slice authority's revocation list; it relays again with its next update");
  }

  // ---- GetVersion, ListResources -------------------------------------------------------------

  /** Learns whether netem exists (once, at start-up). */
  async probe(): Promise<void> {
    this.netem = this.rules.links ? await this.o.netlab.netemAvailable() : false;
    this.netemKnown = true;
  }

  private netem = false;

  /** GetVersion. */
  async getVersion(): Promise<AggregateGetVersionResponse> {
    if (!this.netemKnown) await this.probe();
    const s = this.o.settings;
    return {
      apiVersion: 3,
      aggregateUrn: this.o.maUrn,
      domain: this.domain,
      style: STYLE[s.style],
      softwareVersion: s.softwareVersion,
      requestDocumentFormats: this.rules.documents ? [RSPEC_FORMAT] : [],
      advertisementDocumentFormats: [RSPEC_FORMAT],
      operationalActions: [
        OperationalAction.OPERATIONAL_ACTION_START,
        OperationalAction.OPERATIONAL_ACTION_STOP,
        OperationalAction.OPERATIONAL_ACTION_RESTART,
        ...(this.rules.swap ? [OperationalAction.OPERATIONAL_ACTION_SWAP_OUT, OperationalAction.OPERATIONAL_ACTION_SWAP_IN] : []),
      ],
      allocationHoldS: s.holdS,
      defaultSliverLifetimeS: s.defaultLifetimeS,
      maxSliverLifetimeS: s.maxLifetimeS,
      netemAvailable: this.netem,
      termsOfUse: s.terms,
      termsDigest: this.o.providers.termsDigest,
      credentialTypes: ['fedlab-cred+jwt;v=1'],
    };
  }

  /** Whether a node's owner credential still lets the MA use it (unexpired, not revoked), and if not why. */
  private ownerProblem(node: LiveNode, now: number): string | undefined {
    if (node.record.ownerChainExpiresAt <= now) return `the owner credential of ${node.record.urn} expired; its owner must give the MA a new one (re-enrol the node)`;
    const list = this.o.revocations.listFor(this.o.maKid);
    if (list && node.record.ownerJtis.some((j) => list.jtis.has(j))) return `the owner credential of ${node.record.urn} is revoked at this site`;
    return undefined;
  }

  /** Whether a node can take a new sliver now (for advertisements). */
  private allocatable(node: LiveNode, now: number): boolean {
    if (!node.up || this.ownerProblem(node, now)) return false;
    const use = this.book.use(node.record.urn);
    if (node.record.exclusive && use.slivers > 0) return false;
    if (this.book.exclusiveHolder(node.record.urn)) return false;
    const free = freeOf(node.capacity, use.committed);
    return free.cpuMillis > 0 && free.memMb > 0;
  }

  private advertise(node: LiveNode, now: number): AdvertisedNode {
    const use = this.book.use(node.record.urn);
    return {
      urn: node.record.urn,
      health: node.up ? NodeHealth.NODE_HEALTH_UP : NodeHealth.NODE_HEALTH_DOWN,
      capacity: toSpec(node.capacity),
      available: toSpec(freeOf(node.capacity, use.committed)),
      exclusive: node.record.exclusive,
      allocatable: this.allocatable(node, now),
      isolation: node.record.isolation,
      netemAvailable: this.netem,
    };
  }

  /**
   * ListResources: the UP nodes (only those allocatable now with
   * `available_only`), paged, optionally with an advertisement document.
   */
  listResources(req: AggregateListResourcesRequest): AggregateListResourcesResponse {
    const size = pageSize(req.pageSize);
    if (req.documentFormat !== '' && req.documentFormat !== RSPEC_FORMAT) {
      throw new InvalidArgumentError(`document_format ${JSON.stringify(req.documentFormat.slice(0, 40))} is not offered; use ${RSPEC_FORMAT} or none`, { field: 'document_format' });
    }
    const after = decodeToken('resources', req.pageToken);
    const urns = this.o.registry.urns;
    const now = this.now;
    const nodes: AdvertisedNode[] = [];
    let i = firstAfter(urns, after);
    let last = '';
    const wanted = (n: LiveNode): boolean => n.up && (!req.availableOnly || this.allocatable(n, now));
    for (; i < urns.length && nodes.length < size; i++) {
      const n = this.o.registry.get(urns[i] as string) as LiveNode;
      if (!wanted(n)) continue;
      nodes.push(this.advertise(n, now));
      last = n.record.urn;
    }
    let more = false;
    for (; i < urns.length && !more; i++) more = wanted(this.o.registry.get(urns[i] as string) as LiveNode);
    const doc =
      req.documentFormat === RSPEC_FORMAT
        ? JSON.stringify({
            type: 'advertisement',
            aggregate: this.o.maUrn,
            style: this.o.settings.style,
            nodes: nodes.map((n) => ({
              component_id: n.urn,
              health: n.health === NodeHealth.NODE_HEALTH_UP ? 'up' : 'down',
              exclusive: n.exclusive,
              allocatable: n.allocatable,
              capacity: specJson(n.capacity),
              available: specJson(n.available),
            })),
            ...(this.rules.links ? { links: { between: 'any two or more nodes of this site', max_bandwidth_kbps: this.o.settings.maxLinkKbps, delay_and_loss: this.netem } } : {}),
          })
        : '';
    return { nodes, advertisementDocument: doc, nextPageToken: more ? encodeToken('resources', last) : '' };
  }

  // ---- helpers -------------------------------------------------------------------------------

  private isolationOf(nodeUrn: string): number {
    return this.o.registry.get(nodeUrn)?.record.isolation ?? 0;
  }

  private wire(s: SliverRecord): Sliver {
    return sliverToWire(s, this.book.slices.get(s.sliceUrn), this.o.maUrn, this.isolationOf(s.nodeUrn));
  }

  private result(s: SliverRecord, outcome: Outcome): SliverResult {
    return {
      sliverUrn: s.urn,
      nodeUrn: s.nodeUrn,
      status: outcome.ok ? { code: 0, reason: '' } : { code: outcome.code, reason: outcome.reason },
      sliver: this.wire(this.book.slivers.get(s.urn) ?? s),
    };
  }

  /** `urns`: one slice URN, or sliver URNs of one slice. */
  private resolve(urns: readonly string[]): { slice: SliceRecord; slivers: SliverRecord[] } {
    if (!Array.isArray(urns) || urns.length === 0) throw new InvalidArgumentError('urns must name one slice, or slivers of one slice', { field: 'urns' });
    if (urns.length > 10_000) throw new InvalidArgumentError('at most 10000 urns per call', { field: 'urns' });
    const parsed = urns.map((u, i) => urnField(`urns[${i}]`, u, parseKind(u, i)));
    if (parsed.some((p) => p.kind === 'slice')) {
      if (urns.length !== 1) throw new InvalidArgumentError('urns holds a slice URN: name that one slice alone, or only sliver URNs', { field: 'urns' });
      const slice = this.book.slices.get(urns[0] as string);
      if (!slice) throw new NotFoundError(`no slice ${urns[0]} at this site; allocate it first`);
      return { slice, slivers: this.book.sliversOf(slice.urn) };
    }
    const slivers: SliverRecord[] = [];
    for (const u of urns) {
      const s = this.book.slivers.get(u);
      if (!s) throw new NotFoundError(`no sliver ${u} at this site; it was never allocated here, or it expired or was deleted`);
      slivers.push(s);
    }
    const sliceUrn = (slivers[0] as SliverRecord).sliceUrn;
    if (slivers.some((s) => s.sliceUrn !== sliceUrn)) throw new InvalidArgumentError('urns names slivers of more than one slice; name slivers of one slice per call', { field: 'urns' });
    const slice = this.book.slices.get(sliceUrn);
    if (!slice) throw new NotFoundError(`no slice ${sliceUrn} at this site`);
    return { slice, slivers: [...new Set(slivers)] };
  }

  /** Checks that the chain belongs to the slice's authority and covers every node touched. */
  private ownSlice(access: ChainAccess, slice: SliceRecord, slivers: readonly SliverRecord[]): void {
    const sa = access.sliceAuthority;
    if (sa.urn !== slice.sliceAuthorityUrn || sa.kid !== slice.sliceAuthorityKid) {
      throw new PermissionDeniedError(`slice ${slice.urn} was created here by ${slice.sliceAuthorityUrn}; a chain issued to ${sa.urn} cannot act on it`, { rule: 'slice-authority' });
    }
    for (const s of slivers) if (s.allocation !== 'unallocated') access.requireNode(s.nodeUrn);
  }

  /** The latest expiry allowed for a sliver created at `createdAt`, and which rule sets it. */
  private latest(access: ChainAccess, createdAt: number, now: number, node?: LiveNode): { at: number; rule: string } {
    const caps: { at: number; rule: string }[] = [
      { at: now + this.o.settings.maxLifetimeS * 1000, rule: `the site maximum (${this.o.settings.maxLifetimeS} s from now)` },
      { at: access.grant.exp * 1000, rule: 'the expiry of the MA → SA chain' },
    ];
    const ttl = access.grant.limits.ttl_s;
    if (ttl !== undefined) caps.push({ at: createdAt + ttl * 1000, rule: `the chain's ttl_s (${ttl} s from creation)` });
    if (node) {
      caps.push({ at: node.record.ownerChainExpiresAt, rule: `the expiry of ${node.record.urn}'s owner credential` });
      const ownerTtl = node.record.ownerLimits.ttl_s;
      if (ownerTtl !== undefined) caps.push({ at: createdAt + ownerTtl * 1000, rule: `the ttl_s of ${node.record.urn}'s owner credential` });
    }
    return caps.reduce((a, b) => (b.at < a.at ? b : a));
  }

  /** Why a node cannot take a sliver now (with its gRPC code), or undefined when it can. `pending` holds what this admission already placed. */
  private unfit(node: LiveNode | undefined, nodeUrn: string, sliceUrn: string, want: WantedSliver | SliverRecord, now: number, pending: Resources | undefined): Outcome {
    if (!node) return fail(Status.NOT_FOUND, `node ${nodeUrn} is not enrolled at this site; see ListResources`);
    if (!node.up) {
      const last = node.lastHeartbeatAt ? new Date(node.lastHeartbeatAt).toISOString() : 'never';
      return fail(Status.UNAVAILABLE, `node ${nodeUrn} is DOWN (last heartbeat: ${last}); choose another node`);
    }
    const owner = this.ownerProblem(node, now);
    if (owner) return fail(Status.FAILED_PRECONDITION, owner);
    const use = this.book.use(nodeUrn);
    const holder = this.book.exclusiveHolder(nodeUrn);
    if (holder && holder !== sliceUrn) return fail(Status.RESOURCE_EXHAUSTED, `node ${nodeUrn} is held whole by another slice; choose another node`);
    const exclusive = want.exclusive || node.record.exclusive;
    if (exclusive) {
      const others = [...use.slices.keys()].filter((s) => s !== sliceUrn).length;
      if (others > 0) return fail(Status.RESOURCE_EXHAUSTED, `node ${nodeUrn} cannot be given whole to ${sliceUrn}: ${others} other slice(s) use it; choose another node`);
    }
    const committed = pending ? addResources(use.committed, pending) : use.committed;
    const free = freeOf(node.capacity, committed);
    const short = shortfall(free, want.resources);
    if (short) return fail(Status.RESOURCE_EXHAUSTED, `node ${nodeUrn} has ${short.have} ${short.field} free, the sliver needs ${short.want}; ask for less or choose another node`);
    if ('minFree' in want && !minResources(free, want.minFree)) {
      const s2 = shortfall(free, want.minFree);
      return fail(Status.RESOURCE_EXHAUSTED, `node ${nodeUrn} has ${s2?.have ?? 0} ${s2?.field ?? ''} free, less than min_free ${s2?.want ?? 0}`);
    }
    return OK;
  }

  /** The MA → SA credential's caps on what its holder may hold at this site. */
  private checkQuota(access: ChainAccess, adding: readonly Resources[]): void {
    const lim = access.grant.limits;
    const use = this.book.authorityUse(access.sliceAuthority.urn);
    let total = use.committed;
    for (const r of adding) total = addResources(total, r);
    const count = use.slivers + adding.length;
    const over = (key: string, have: number, cap: number | undefined): void => {
      if (cap !== undefined && have > cap) {
        throw new ResourceExhaustedError(
          `the MA → SA credential of ${access.sliceAuthority.urn} allows ${cap} ${key} at this site; this request would make it ${have} — delete slivers or ask the site for a larger delegation`,
          { rule: 'lim', resource: key },
        );
      }
    };
    over('slivers', count, lim.slivers);
    over('cpu_millis', total.cpuMillis, lim.cpu_millis);
    over('mem_mb', total.memMb, lim.mem_mb);
    over('disk_mb', total.diskMb, lim.disk_mb);
  }

  /**
   * The nodes the chain covers, most free CPU first (ties in the registry's order), computed once per
   * admission: the books do not change until it commits, so picking from this list gives what a scan
   * of every node per sliver would, without a scan per sliver.
   */
  private pickOrder(access: ChainAccess): { urn: string; node: LiveNode; cpu: number }[] {
    const out: { urn: string; node: LiveNode; cpu: number }[] = [];
    for (const node of this.o.registry.all()) {
      const urn = node.record.urn;
      if (!access.covers(urn)) continue;
      out.push({ urn, node, cpu: freeOf(node.capacity, this.book.use(urn).committed).cpuMillis });
    }
    return out.sort((a, b) => b.cpu - a.cpu);
  }

  /** Picks a node for a sliver the site may place anywhere: the first of {@link pickOrder} not taken that can take it. */
  private pick(order: readonly { urn: string; node: LiveNode }[], sliceUrn: string, want: WantedSliver, now: number, taken: ReadonlySet<string>): string | undefined {
    for (const c of order) {
      if (taken.has(c.urn)) continue;
      if (this.unfit(c.node, c.urn, sliceUrn, want, now, undefined).ok) return c.urn;
    }
    return undefined;
  }

  /** The interfaces a sliver gets on its slice's links (emulab): eth1, eth2, ... in link order. */
  private interfacesFor(links: readonly LinkSpec[], clientId: string): InterfaceRecord[] {
    const out: InterfaceRecord[] = [];
    for (const l of links) {
      const j = l.endpoints.indexOf(clientId);
      if (j < 0) continue;
      out.push({ link: l.name, name: `eth${out.length + 1}`, address: linkAddress(l.subnet, j), bandwidthKbps: l.bandwidthKbps, delayMs: l.delayMs, lossPercent: l.lossPercent });
    }
    return out;
  }

  /**
   * A sliver's interfaces and, when it is on a link, the name of its host namespace (emulab). A node
   * on no link gets no namespace: it would hold only a loopback, and making one costs the site host
   * about 4 ms of kernel time (a slice of 1,000 unlinked nodes would pay seconds for nothing).
   * Links join slivers of one request only, so a sliver never joins a link after it was made.
   */
  private hostPresence(wantNetns: boolean, links: readonly LinkSpec[], clientId: string): { interfaces: InterfaceRecord[]; netns: string | undefined } {
    const interfaces = this.interfacesFor(links, clientId);
    // `netns: undefined` also clears a name left from an earlier instantiation.
    return { interfaces, netns: wantNetns && interfaces.length > 0 ? this.o.netlab.newName() : undefined };
  }

  // ---- Allocate ------------------------------------------------------------------------------

  /** Allocate: all or nothing, idempotent on request_id; holds end after `allocation_hold_s`. */
  async allocate(ctx: CallContext, req: AggregateAllocateRequest): Promise<AggregateAllocateResponse> {
    const rid = requestId(req.requestId);
    const sliceUrn = urnField('slice_urn', req.sliceUrn, 'slice');
    urnField('provider_urn', req.providerUrn, 'sp');
    const access = this.o.access.chain(ctx, 'sliver.create');
    const sa = access.sliceAuthority;
    if (sliceUrn.domain !== parseUrn(sa.urn).domain) {
      throw new PermissionDeniedError(`slice ${req.sliceUrn} is not in the domain of its slice authority ${sa.urn}; a slice authority names slices in its own domain`, { rule: 'slice-domain' });
    }
    const normal = normalizeRequest(req.request, {
      rules: this.rules,
      domain: this.domain,
      defaults: this.o.settings.defaults,
      maxLinkKbps: this.o.settings.maxLinkKbps,
    });
    if (normal.links.length > 0) {
      await this.o.netlab.requireSupport();
      const needsNetem = normal.links.find((l) => l.delayMs > 0 || l.lossPercent > 0);
      if (needsNetem && !(await this.o.netlab.netemAvailable())) {
        throw new FailedPreconditionError(
          `link ${needsNetem.name} asks for delay or loss, but this site's kernel has no netem (sch_netem); links here can have bandwidth only — ask without delay_ms and loss_percent, or use another site`,
          { rule: 'netem' },
        );
      }
    }
    for (const w of normal.slivers) {
      if (!w.nodeUrn) continue;
      if (!this.o.registry.has(w.nodeUrn)) throw new NotFoundError(`node ${w.nodeUrn} is not enrolled at this site; see ListResources`, { node: w.nodeUrn });
      access.requireNode(w.nodeUrn);
    }
    if (this.o.settings.requireRegisteredProviders && !this.o.providers.isRegistered(req.providerUrn)) {
      throw new PermissionDeniedError(`provider ${req.providerUrn} has not registered with this site, and the site's policy requires it; the provider registers with RegisterServiceProvider`, {
        rule: 'provider-registration',
      });
    }
    const asked = req.expiresAt?.getTime();
    if (asked !== undefined && (!Number.isFinite(asked) || asked <= this.now)) throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
    const key = `${sa.urn} ${rid}`;
    const fingerprint = createHash('sha256')
      .update(canonicalJson({ slice: req.sliceUrn, provider: req.providerUrn, request: normal, expires: asked ?? null }))
      .digest('base64url');

    return this.sliceLocks.run(req.sliceUrn, async () => {
      const seen = await this.book.allocationTable.get(key);
      if (seen) {
        if (seen.fingerprint !== fingerprint) throw new AlreadyExistsError(`request id ${rid} was already used for another Allocate; use a new request id`, { rule: 'request_id' });
        return this.allocationAnswer(seen.sliceUrn, seen.sliverUrns);
      }
      const urns = await this.mutate(async (tx, now) => {
        // Holds that ended are released first, so that they do not block this admission.
        this.releaseExpiredHolds(tx, now);
        const existing = this.book.slices.get(req.sliceUrn);
        if (existing) {
          if (existing.sliceAuthorityUrn !== sa.urn || existing.sliceAuthorityKid !== sa.kid) {
            throw new PermissionDeniedError(`slice ${req.sliceUrn} exists here under another slice authority (${existing.sliceAuthorityUrn})`, { rule: 'slice-authority' });
          }
          if (existing.providerUrn !== req.providerUrn) {
            throw new InvalidArgumentError(`slice ${req.sliceUrn} belongs to provider ${existing.providerUrn} here, not ${req.providerUrn}`, { field: 'provider_urn' });
          }
          if (existing.shutDown) throw new FailedPreconditionError(`slice ${req.sliceUrn} is shut down at this site (${existing.shutDown.reason}); ask the site's administrators`, { rule: 'shutdown' });
          if (existing.swappedOut) throw new FailedPreconditionError(`slice ${req.sliceUrn} is swapped out; swap it in (PerformOperationalAction SWAP_IN) before allocating more`, { rule: 'swapped-out' });
        }
        const present = existing ? this.book.sliversOf(existing.urn) : [];
        const ids = new Set(present.map((s) => s.clientId));
        for (const w of normal.slivers) if (ids.has(w.clientId)) throw new InvalidArgumentError(`client id ${w.clientId} is already used in slice ${req.sliceUrn}; choose other client ids`, { field: 'request.nodes.client_ids' });
        const oldLinks = existing?.links ?? [];
        for (const l of normal.links) if (oldLinks.some((x) => x.name === l.name)) throw new InvalidArgumentError(`slice ${req.sliceUrn} already has a link ${l.name}`, { field: 'request.links' });
        if (oldLinks.length + normal.links.length > MAX_LINKS) throw new InvalidArgumentError(`a slice has at most ${MAX_LINKS} links`, { field: 'request.links' });
        const latest = this.latest(access, now, now);
        let expiresAt = asked ?? now + this.o.settings.defaultLifetimeS * 1000;
        if (asked !== undefined && asked > latest.at) {
          throw new PermissionDeniedError(`expires_at ${new Date(asked).toISOString()} is past ${latest.rule} (${new Date(latest.at).toISOString()}); ask for an earlier expiry`, { rule: 'lifetime' });
        }
        expiresAt = Math.min(expiresAt, latest.at);
        this.checkQuota(
          access,
          normal.slivers.map((w) => w.resources),
        );

        // Admission: explicit nodes first (their failure names the node), then the site's picks.
        const placed = new Map<string, Resources>();
        const nodeOf: string[] = [];
        for (const [i, w] of normal.slivers.entries()) {
          if (!w.nodeUrn) continue;
          const o = this.unfit(this.o.registry.get(w.nodeUrn), w.nodeUrn, req.sliceUrn, w, now, placed.get(w.nodeUrn));
          if (!o.ok) throw errorFor(o.code, `cannot allocate ${w.clientId}: ${o.reason}. Nothing was allocated.`);
          placed.set(w.nodeUrn, addResources(placed.get(w.nodeUrn) ?? { cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0 }, w.resources));
          nodeOf[i] = w.nodeUrn;
        }
        const picks = normal.slivers.filter((w) => !w.nodeUrn);
        if (picks.length > 0) {
          const taken = new Set(placed.keys());
          const order = this.pickOrder(access);
          let found = 0;
          for (const [i, w] of normal.slivers.entries()) {
            if (w.nodeUrn) continue;
            const urn = this.pick(order, req.sliceUrn, w, now, taken);
            if (!urn) {
              const min = w.minFree;
              throw new ResourceExhaustedError(
                `the selector asks for ${picks.length} node(s) with at least ${min.cpuMillis} cpu_millis, ${min.memMb} mem_mb, ${min.diskMb} disk_mb and ${min.pids} pids free${w.exclusive ? ', whole' : ''}; only ${found} such node(s) are UP and free. Nothing was allocated.`,
                { rule: 'selector' },
              );
            }
            found++;
            taken.add(urn);
            nodeOf[i] = urn;
          }
        }

        const slice: SliceRecord = existing
          ? { ...existing, links: [...oldLinks, ...normal.links.map((l, k) => ({ ...l, subnet: oldLinks.length + k }))] }
          : {
              urn: req.sliceUrn,
              sliceAuthorityUrn: sa.urn,
              sliceAuthorityJwk: sa.jwk as unknown as Record<string, unknown>,
              sliceAuthorityKid: sa.kid,
              providerUrn: req.providerUrn,
              createdAt: now,
              links: normal.links.map((l, k) => ({ ...l, subnet: k })),
              documentFormat: normal.documentFormat,
              swappedOut: false,
            };
        tx.putSlice(slice);
        const sliceName = parseUrn(req.sliceUrn).name.slice(0, 40);
        const created: string[] = [];
        for (const [i, w] of normal.slivers.entries()) {
          const name = `${sliceName}-${randomBytes(5).toString('hex')}`;
          const rec: SliverRecord = {
            urn: `urn:fedlab:${this.domain}:sliver:${name}`,
            name,
            sliceUrn: req.sliceUrn,
            nodeUrn: nodeOf[i] as string,
            clientId: w.clientId,
            explicitNode: w.nodeUrn !== undefined,
            resources: w.resources,
            exclusive: w.exclusive || (this.o.registry.get(nodeOf[i] as string)?.record.exclusive ?? false),
            allocation: 'allocated',
            operational: 'pending',
            holdExpiresAt: now + this.o.settings.holdS * 1000,
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
      });
      this.o.log.info({ slice: req.sliceUrn, slivers: urns.length, sliceAuthority: sa.urn }, 'allocated');
      return this.allocationAnswer(req.sliceUrn, urns);
    });
  }

  private releaseExpiredHolds(tx: BookTx, now: number): void {
    for (const urn of this.book.holds) {
      const s = this.book.slivers.get(urn);
      if (s && !s.phase && s.holdExpiresAt !== undefined && s.holdExpiresAt <= now) tx.delSliver(urn);
    }
  }

  private allocationAnswer(sliceUrn: string, urns: readonly string[]): AggregateAllocateResponse {
    const slice = this.book.slices.get(sliceUrn);
    const slivers = urns.map((u) => {
      const s = this.book.slivers.get(u);
      return s ? this.wire(s) : goneSliver(u, sliceUrn, this.o.maUrn);
    });
    const manifest = slice && slice.documentFormat ? manifestDocument(slice, urns.map((u) => this.book.slivers.get(u)).filter((s): s is SliverRecord => !!s), this.o.maUrn) : '';
    return { sliceUrn, slivers, manifestDocument: manifest };
  }

  // ---- Provision (and the instantiation swap-in shares) --------------------------------------

  /** Provision: instantiates allocated slivers on their nodes. */
  async provision(ctx: CallContext, req: AggregateProvisionRequest): Promise<AggregateProvisionResponse> {
    const access = this.o.access.chain(ctx, 'sliver.create');
    const { slice, slivers } = this.resolve(req.urns);
    this.ownSlice(access, slice, slivers);
    const asked = req.expiresAt?.getTime();
    if (asked !== undefined && (!Number.isFinite(asked) || asked <= this.now)) throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });

    return this.sliceLocks.run(slice.urn, async () => {
      const cur = this.book.slices.get(slice.urn);
      if (!cur) throw new NotFoundError(`slice ${slice.urn} is gone (its holds expired or it was deleted); allocate again`);
      if (cur.shutDown) throw new FailedPreconditionError(`slice ${slice.urn} is shut down at this site (${cur.shutDown.reason}); ask the site's administrators`, { rule: 'shutdown' });
      const now = this.now;
      const outcomes = new Map<string, Outcome>();
      const toInstantiate: SliverRecord[] = [];
      for (const s0 of slivers) {
        const s = this.book.slivers.get(s0.urn);
        if (!s) {
          outcomes.set(s0.urn, fail(Status.FAILED_PRECONDITION, `sliver ${s0.urn} is gone: its hold expired; allocate again`));
          continue;
        }
        const o = this.provisionable(s, access, now, asked);
        if (o === 'done') outcomes.set(s.urn, OK);
        else if (o.ok) toInstantiate.push(s);
        else outcomes.set(s.urn, o);
      }
      const failures = [...outcomes].filter(([, o]) => !o.ok);
      if (!req.bestEffort && failures.length) throwFailures('Provision', failures.map(([u, o]) => ({ sliver: this.book.slivers.get(u) ?? slivers.find((s) => s.urn === u)!, outcome: o })));
      if (toInstantiate.length) {
        const done = await this.instantiate(cur, toInstantiate, { kind: 'provision', start: req.start, asked, deadline: ctx.deadline, allOrNothing: !req.bestEffort });
        for (const [u, o] of done) outcomes.set(u, o);
        const bad = [...done].filter(([, o]) => !o.ok);
        if (!req.bestEffort && bad.length) throwFailures('Provision', bad.map(([u, o]) => ({ sliver: this.book.slivers.get(u) ?? toInstantiate.find((s) => s.urn === u)!, outcome: o })));
      }
      const after = this.book.slices.get(slice.urn);
      return {
        results: slivers.map((s) => this.result(this.book.slivers.get(s.urn) ?? s, outcomes.get(s.urn) ?? OK)),
        manifestDocument: after && after.documentFormat ? manifestDocument(after, this.book.sliversOf(after.urn), this.o.maUrn) : '',
      };
    });
  }

  /** Whether an allocated sliver can be provisioned now. */
  private provisionable(s: SliverRecord, access: ChainAccess, now: number, asked: number | undefined): Outcome | 'done' {
    if (s.phase) return fail(Status.UNAVAILABLE, `sliver ${s.urn} is busy (${s.phase}); try again shortly`);
    if (s.allocation === 'provisioned') return 'done';
    if (s.allocation === 'unallocated') return fail(Status.FAILED_PRECONDITION, `sliver ${s.urn} is swapped out; swap the slice in (SWAP_IN) instead`);
    if (s.holdExpiresAt !== undefined && s.holdExpiresAt <= now) {
      return fail(Status.FAILED_PRECONDITION, `the hold on ${s.urn} expired at ${new Date(s.holdExpiresAt).toISOString()}; allocate again`);
    }
    const node = this.o.registry.get(s.nodeUrn);
    if (!node) return fail(Status.NOT_FOUND, `node ${s.nodeUrn} is no longer enrolled; allocate again`);
    if (!node.up) return fail(Status.UNAVAILABLE, `node ${s.nodeUrn} is DOWN (no heartbeat for three intervals); try again when it is UP or allocate elsewhere`);
    const owner = this.ownerProblem(node, now);
    if (owner) return fail(Status.FAILED_PRECONDITION, owner);
    const exp = asked ?? s.expiresAt;
    const latest = this.latest(access, s.createdAt, now, node);
    if (exp > latest.at) return fail(Status.PERMISSION_DENIED, `expiry ${new Date(exp).toISOString()} of ${s.urn} is past ${latest.rule} (${new Date(latest.at).toISOString()}); ask for an earlier one`);
    if (exp <= now) return fail(Status.FAILED_PRECONDITION, `sliver ${s.urn} expired at ${new Date(exp).toISOString()}; renew it or allocate again`);
    return OK;
  }

  /**
   * Instantiates slivers on their nodes: intent + busy marks in one batch, the
   * node calls in parallel, emulab namespaces and links, then one batch with
   * the outcome. Slivers that failed (all of them when `allOrNothing` and one
   * failed) are undone on their nodes and go back to where they were.
   */
  private async instantiate(
    slice: SliceRecord,
    candidates: readonly SliverRecord[],
    o: { kind: 'provision' | 'swap-in'; start: boolean; asked: number | undefined; deadline: number; allOrNothing: boolean; marked?: IntentRecord },
  ): Promise<Map<string, Outcome>> {
    const outcomes = new Map<string, Outcome>();
    const wantNetns = this.rules.links && (await this.o.netlab.supported()).ok;
    // 1. The intent and the busy marks, in one batch (checked again under the mutex).
    const intent =
      o.marked ??
      (await this.mutate((tx, now) => {
        const items: { sliverUrn: string; nodeUrn: string }[] = [];
        for (const s0 of candidates) {
          const s = this.book.slivers.get(s0.urn);
          if (!s || s.phase || s.allocation !== 'allocated' || (s.holdExpiresAt !== undefined && s.holdExpiresAt <= now)) {
            outcomes.set(s0.urn, fail(Status.FAILED_PRECONDITION, `sliver ${s0.urn} is no longer allocated (its hold may have just expired); allocate again`));
            continue;
          }
          items.push({ sliverUrn: s.urn, nodeUrn: s.nodeUrn });
          tx.putSliver({
            ...s,
            phase: 'provisioning',
            generation: s.generation + 1,
            expiresAt: o.asked ?? s.expiresAt,
            updatedAt: now,
            ...this.hostPresence(wantNetns, slice.links, s.clientId),
          });
        }
        const rec: IntentRecord = { id: `int-${randomBytes(8).toString('hex')}`, kind: o.kind, sliceUrn: slice.urn, items, createdAt: now };
        if (items.length) tx.putIntent(rec);
        return rec;
      }));
    if (intent.items.length === 0) return outcomes;
    const marked = intent.items.map((i) => this.book.slivers.get(i.sliverUrn) as SliverRecord);

    // 2. The node managers, in parallel, each call with a deadline; emulab: meanwhile the namespaces (the
    // intent names them, so undoing or recovery removes them whatever happens next).
    const namespaces = wantNetns ? marked.map((s) => s.netns).filter((ns): ns is string => ns !== undefined) : [];
    const madeNamespaces = namespaces.length
      ? this.o.netlab.createNamespaces(namespaces).then(
          () => undefined,
          (err: unknown) => {
            this.o.log.warn({ slice: slice.urn, err: (err as Error).message }, 'namespaces could not be made');
            return err instanceof FedlabError ? err.message : `could not make the nodes' network namespaces on the site host: ${(err as Error).message}`;
          },
        )
      : Promise.resolve(undefined);
    const created = await this.o.nodes.fanOut(
      marked,
      (s) => s.nodeUrn,
      (c, opts, s) =>
        c.createSliver(
          {
            requestId: `ma-${s.name}-g${s.generation}`,
            sliverUrn: s.urn,
            sliceUrn: s.sliceUrn,
            sliceAuthorityUrn: slice.sliceAuthorityUrn,
            sliceAuthorityJwk: JSON.stringify(slice.sliceAuthorityJwk),
            providerUrn: slice.providerUrn,
            resources: toSpec(s.resources),
            expiresAt: new Date(s.expiresAt),
            exclusive: s.exclusive,
            interfaces: [],
            allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
            clientId: s.clientId,
            start: o.start,
          },
          opts,
        ),
      { deadline: o.deadline },
    );
    const reply = new Map<string, NodeResult<{ sliver?: Sliver | undefined }>>();
    for (const [i, r] of created.entries()) reply.set((marked[i] as SliverRecord).urn, r);

    // 3. Emulab: every link whose endpoints all have a namespace.
    let wiringError = await madeNamespaces;
    if (wantNetns && wiringError === undefined && [...reply.values()].some((r) => r.ok)) {
      wiringError = await this.wire_(slice, marked.filter((s) => reply.get(s.urn)?.ok));
    }

    // 4. The outcome, in one batch: provisioned, or left for undoing.
    const anyFailed = wiringError !== undefined || [...reply.values()].some((r) => !r.ok);
    const keep = (urn: string): boolean => reply.get(urn)?.ok === true && wiringError === undefined && !(o.allOrNothing && anyFailed);
    await this.mutate((tx, now) => {
      const left = intent.items.filter((i) => !keep(i.sliverUrn));
      for (const item of intent.items) {
        if (!keep(item.sliverUrn)) continue;
        const s = this.book.slivers.get(item.sliverUrn) as SliverRecord;
        const r = reply.get(item.sliverUrn) as { ok: true; value: { sliver?: Sliver } };
        const nm = r.value.sliver;
        const { phase: _p, holdExpiresAt: _h, ...rest } = s;
        tx.putSliver({
          ...rest,
          allocation: 'provisioned',
          operational: operationalOf(nm?.operationalState, o.start ? 'configuring' : 'notready'),
          expiresAt: nm?.expiresAt?.getTime() ?? s.expiresAt,
          error: '',
          updatedAt: now,
        });
      }
      if (o.kind === 'swap-in' && !anyFailed) {
        const sl = this.book.slices.get(slice.urn);
        if (sl && sl.swappedOut) tx.putSlice({ ...sl, swappedOut: false });
      }
      if (left.length === 0) tx.delIntent(intent.id);
      else tx.putIntent({ ...intent, items: left });
    });
    for (const item of intent.items) {
      const r = reply.get(item.sliverUrn);
      if (keep(item.sliverUrn)) outcomes.set(item.sliverUrn, OK);
      else if (r && !r.ok) outcomes.set(item.sliverUrn, fail(r.code, r.reason));
      else if (wiringError) outcomes.set(item.sliverUrn, fail(Status.FAILED_PRECONDITION, wiringError));
      else outcomes.set(item.sliverUrn, fail(Status.ABORTED, 'not provisioned because another sliver of this all-or-nothing request failed; the others are listed with their reasons'));
    }
    // 5. Undo what did not make it; nodes new to the slice authority get its revocation list.
    if (this.book.intents.has(intent.id)) await this.settle(intent.id, { deadline: o.deadline });
    const kept = intent.items.filter((i) => keep(i.sliverUrn)).map((i) => i.nodeUrn);
    if (kept.length) await this.relayTo(slice, kept, o.deadline);
    if (anyFailed) this.o.log.warn({ slice: slice.urn, failed: [...outcomes.values()].filter((x) => !x.ok).length }, `${o.kind} failed on some nodes; undone there`);
    else this.o.log.info({ slice: slice.urn, slivers: intent.items.length }, o.kind === 'provision' ? 'provisioned' : 'swapped in');
    return outcomes;
  }

  /** Wires the links that newly instantiated slivers (their namespaces made) complete. Returns why it failed, or undefined. */
  private async wire_(slice: SliceRecord, fresh: readonly SliverRecord[]): Promise<string | undefined> {
    try {
      const freshIds = new Set(fresh.map((s) => s.clientId));
      const byClient = new Map(this.book.sliversOf(slice.urn).map((s) => [s.clientId, s]));
      for (const [index, l] of slice.links.entries()) {
        if (!l.endpoints.some((e) => freshIds.has(e))) continue;
        const ends = l.endpoints.map((e) => byClient.get(e));
        // A link is wired once all its endpoints have a namespace (now, or from before).
        if (ends.some((s) => !s?.netns || (s.allocation !== 'provisioned' && !freshIds.has(s.clientId)))) continue;
        await this.o.netlab.createLink({
          name: l.name,
          index,
          bandwidthKbps: l.bandwidthKbps,
          delayMs: l.delayMs,
          lossPercent: l.lossPercent,
          endpoints: ends.map((s) => {
            const iface = (s as SliverRecord).interfaces.find((i) => i.link === l.name) as InterfaceRecord;
            return { netns: (s as SliverRecord).netns as string, ifname: iface.name, address: iface.address };
          }),
        });
      }
      return undefined;
    } catch (err) {
      const why = err instanceof FedlabError ? err.message : `could not wire the slice's links on the site host: ${(err as Error).message}`;
      this.o.log.warn({ slice: slice.urn, err: (err as Error).message }, 'link wiring failed');
      return why;
    }
  }

  // ---- settling intents: undo (provision, swap-in) or finish (delete, swap-out) ---------------

  /**
   * Deletes an intent's remaining slivers on their nodes and removes their
   * namespaces, then records each one that is done: provision → back to
   * allocated (or released when the hold ended), swap-in and swap-out →
   * unallocated, delete → forgotten. Slivers whose node could not be reached
   * stay in the intent for the next try. Callers hold the slice's lock.
   */
  private async settle(id: string, o: { deadline?: number }): Promise<Map<string, Outcome>> {
    const out = new Map<string, Outcome>();
    const intent = this.book.intents.get(id);
    if (!intent) return out;
    const phase = intent.kind === 'provision' || intent.kind === 'swap-in' ? 'provisioning' : intent.kind === 'delete' ? 'deleting' : 'swapping-out';
    const items = intent.items.filter((i) => this.book.slivers.get(i.sliverUrn)?.phase === phase);
    const deleted = await this.o.nodes.fanOut(
      items,
      (i) => i.nodeUrn,
      async (c, opts, i) => c.deleteSliver({ sliverUrn: i.sliverUrn }, opts),
      o.deadline !== undefined ? { deadline: o.deadline } : {},
    );
    const ok = new Set<string>();
    // The namespaces of the slivers deleted on their nodes, all at once.
    const namespaces = items.map((item, k) => (deleted[k]?.ok ? this.book.slivers.get(item.sliverUrn)?.netns : undefined)).filter((ns): ns is string => ns !== undefined);
    const stuck = namespaces.length ? await this.o.netlab.deleteNamespaces(namespaces).catch((err: unknown) => new Map(namespaces.map((ns) => [ns, (err as Error).message]))) : new Map<string, string>();
    for (const [k, r] of deleted.entries()) {
      const item = items[k] as (typeof items)[number];
      const s = this.book.slivers.get(item.sliverUrn);
      if (r.ok && s?.netns && stuck.has(s.netns)) {
        out.set(item.sliverUrn, fail(Status.INTERNAL, `could not remove namespace ${s.netns}: ${stuck.get(s.netns)}; the MA retries`));
        continue;
      }
      if (r.ok) {
        ok.add(item.sliverUrn);
        out.set(item.sliverUrn, OK);
      } else {
        // A node that no longer knows the MA's sliver has nothing to undo.
        if (r.code === Status.NOT_FOUND && !this.o.registry.has(item.nodeUrn)) ok.add(item.sliverUrn);
        else out.set(item.sliverUrn, fail(r.code, `${r.reason} (the MA keeps trying; the node also reaps the sliver when it expires)`));
      }
    }
    await this.mutate((tx, now) => {
      for (const urn of ok) {
        const s = this.book.slivers.get(urn);
        if (!s || s.phase !== phase) continue;
        const { phase: _p, netns: _n, ...rest } = s;
        const base = { ...rest, interfaces: [], updatedAt: now };
        if (intent.kind === 'delete') tx.delSliver(urn);
        else if (intent.kind === 'provision') {
          if (s.holdExpiresAt !== undefined && s.holdExpiresAt > now) tx.putSliver({ ...base, allocation: 'allocated', operational: 'pending' });
          else tx.delSliver(urn);
        } else {
          const { holdExpiresAt: _h, ...unheld } = base;
          tx.putSliver({ ...unheld, allocation: 'unallocated', operational: 'pending' });
        }
      }
      const left = intent.items.filter((i) => {
        if (ok.has(i.sliverUrn)) return false;
        return this.book.slivers.get(i.sliverUrn)?.phase === phase;
      });
      if (left.length) tx.putIntent({ ...intent, items: left });
      else tx.delIntent(intent.id);
      const slice = this.book.slices.get(intent.sliceUrn);
      if (slice && intent.kind === 'swap-in') tx.putSlice({ ...slice, swappedOut: true });
      // A slice with no sliver left is gone.
      const remaining = this.book.sliversOf(intent.sliceUrn).filter((s) => !(ok.has(s.urn) && (intent.kind === 'delete' || (intent.kind === 'provision' && !(s.holdExpiresAt !== undefined && s.holdExpiresAt > now)))));
      if (slice && remaining.length === 0) tx.delSlice(slice.urn);
    });
    return out;
  }

  // ---- Delete, Renew, Status, Describe -------------------------------------------------------

  /** Delete: releases holds at once; deletes provisioned slivers on their nodes (retried until done). Always per sliver. */
  async delete(ctx: CallContext, urns: readonly string[]): Promise<SliverResult[]> {
    const access = this.o.access.chain(ctx, 'sliver.delete');
    // Deleting what is already gone succeeds: gone slivers are reported UNALLOCATED.
    const gone = Array.isArray(urns) ? urns.filter((u) => !this.book.slivers.has(u) && !this.book.slices.has(u)) : [];
    if (gone.length === urns.length && urns.length > 0) {
      urns.forEach((u, i) => urnField(`urns[${i}]`, u, parseKind(u, i)));
      return gone
        .filter((u) => parseUrn(u).kind === 'sliver')
        .map((u) => ({ sliverUrn: u, nodeUrn: '', status: { code: 0, reason: '' }, sliver: goneSliver(u, '', this.o.maUrn) }));
    }
    const { slice, slivers } = this.resolve(urns.filter((u) => !gone.includes(u)));
    this.ownSlice(access, slice, slivers);
    const results = await this.sliceLocks.run(slice.urn, () => this.deleteLocked(slice.urn, slivers, ctx.deadline));
    return [...results, ...gone.map((u) => ({ sliverUrn: u, nodeUrn: '', status: { code: 0, reason: '' }, sliver: goneSliver(u, slice.urn, this.o.maUrn) }))];
  }

  private async deleteLocked(sliceUrn: string, slivers: readonly SliverRecord[], deadline: number): Promise<SliverResult[]> {
    const outcomes = new Map<string, Outcome>();
    const last = new Map<string, SliverRecord>();
    const intent = await this.mutate((tx, now) => {
      const items: { sliverUrn: string; nodeUrn: string }[] = [];
      for (const s0 of slivers) {
        const s = this.book.slivers.get(s0.urn);
        if (!s) {
          outcomes.set(s0.urn, OK);
          continue;
        }
        last.set(s.urn, s);
        if (s.phase === 'provisioning') {
          outcomes.set(s.urn, fail(Status.UNAVAILABLE, `sliver ${s.urn} is being provisioned or recovered; try again shortly`));
        } else if (s.phase === 'deleting' || s.phase === 'swapping-out' || s.allocation === 'provisioned') {
          items.push({ sliverUrn: s.urn, nodeUrn: s.nodeUrn });
          if (s.phase !== 'deleting') tx.putSliver({ ...s, phase: 'deleting', updatedAt: now });
        } else {
          // Held or swapped out: nothing on any node.
          tx.delSliver(s.urn);
          outcomes.set(s.urn, OK);
        }
      }
      // Slivers of earlier unfinished deletes are taken over by this one.
      for (const [id, i] of this.book.intents) {
        if (i.sliceUrn === sliceUrn && (i.kind === 'delete' || i.kind === 'swap-out')) {
          const mine = new Set(items.map((x) => x.sliverUrn));
          const rest = i.items.filter((x) => !mine.has(x.sliverUrn));
          if (rest.length === i.items.length) continue;
          if (rest.length) tx.putIntent({ ...i, items: rest });
          else tx.delIntent(id);
        }
      }
      const rec: IntentRecord = { id: `int-${randomBytes(8).toString('hex')}`, kind: 'delete', sliceUrn, items, createdAt: now };
      if (items.length) tx.putIntent(rec);
      const remaining = this.book.sliversOf(sliceUrn).filter((s) => !outcomes.has(s.urn) || !outcomes.get(s.urn)?.ok);
      if (items.length === 0 && remaining.length === 0 && this.book.slices.has(sliceUrn)) tx.delSlice(sliceUrn);
      return rec;
    });
    if (intent.items.length) {
      const settled = await this.settle(intent.id, { deadline });
      for (const [u, o] of settled) outcomes.set(u, o);
      this.o.log.info({ slice: sliceUrn, deleted: [...settled.values()].filter((o) => o.ok).length, pending: [...settled.values()].filter((o) => !o.ok).length }, 'deleted');
    }
    return slivers.map((s) => {
      const o = outcomes.get(s.urn) ?? OK;
      const now = this.book.slivers.get(s.urn);
      return {
        sliverUrn: s.urn,
        nodeUrn: s.nodeUrn,
        status: o.ok ? { code: 0, reason: '' } : { code: o.code, reason: o.reason },
        sliver: now ? this.wire(now) : { ...this.wire(last.get(s.urn) ?? s), allocationState: AllocationState.ALLOCATION_STATE_UNALLOCATED, nodeUrn: '' },
      };
    });
  }

  /** Renew: never past the site maximum, the chain's expiry or ttl, or the node owner's credential. */
  async renew(ctx: CallContext, req: AggregateRenewRequest): Promise<SliverResult[]> {
    const access = this.o.access.chain(ctx, 'sliver.renew');
    const { slice, slivers } = this.resolve(req.urns);
    this.ownSlice(access, slice, slivers);
    const at = req.expiresAt?.getTime();
    if (at === undefined || !Number.isFinite(at)) throw new InvalidArgumentError('expires_at is required', { field: 'expires_at' });
    if (at <= this.now) throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
    return this.sliceLocks.run(slice.urn, async () => {
      const now = this.now;
      const outcomes = new Map<string, Outcome>();
      const onNodes: SliverRecord[] = [];
      const local: SliverRecord[] = [];
      for (const s0 of slivers) {
        const s = this.book.slivers.get(s0.urn);
        if (!s) {
          outcomes.set(s0.urn, fail(Status.NOT_FOUND, `sliver ${s0.urn} is gone`));
          continue;
        }
        if (s.phase) {
          outcomes.set(s.urn, fail(Status.UNAVAILABLE, `sliver ${s.urn} is busy (${s.phase}); try again shortly`));
          continue;
        }
        const latest = this.latest(access, s.createdAt, now, s.allocation === 'unallocated' ? undefined : this.o.registry.get(s.nodeUrn));
        if (at > latest.at) {
          outcomes.set(s.urn, fail(Status.PERMISSION_DENIED, `cannot renew ${s.urn} to ${new Date(at).toISOString()}: that is past ${latest.rule} (${new Date(latest.at).toISOString()})`));
          continue;
        }
        if (s.allocation === 'provisioned') onNodes.push(s);
        else local.push(s);
      }
      if (!req.bestEffort && [...outcomes.values()].some((o) => !o.ok)) {
        throwFailures('Renew', [...outcomes].map(([u, o]) => ({ sliver: this.book.slivers.get(u) ?? slivers.find((x) => x.urn === u)!, outcome: o })));
      }
      const renewed = await this.o.nodes.fanOut(onNodes, (s) => s.nodeUrn, (c, opts, s) => c.renewSliver({ sliverUrn: s.urn, expiresAt: new Date(at) }, opts), { deadline: ctx.deadline });
      await this.mutate((tx, t) => {
        for (const s of local) {
          const cur = this.book.slivers.get(s.urn);
          if (cur && !cur.phase) tx.putSliver({ ...cur, expiresAt: at, updatedAt: t });
          outcomes.set(s.urn, OK);
        }
        for (const [i, r] of renewed.entries()) {
          const s = onNodes[i] as SliverRecord;
          if (!r.ok) {
            outcomes.set(s.urn, fail(r.code, r.reason));
            continue;
          }
          const cur = this.book.slivers.get(s.urn);
          if (cur && !cur.phase) tx.putSliver({ ...cur, expiresAt: r.value.sliver?.expiresAt?.getTime() ?? at, updatedAt: t });
          outcomes.set(s.urn, OK);
        }
      });
      return slivers.map((s) => this.result(this.book.slivers.get(s.urn) ?? s, outcomes.get(s.urn) ?? OK));
    });
  }

  /** Status: the slivers' states, refreshed from their node managers (each call with a deadline). */
  async status(ctx: CallContext, urns: readonly string[]): Promise<AggregateStatusResponse> {
    const access = this.o.access.chain(ctx, 'sliver.read');
    const { slice, slivers } = this.resolve(urns);
    this.ownSlice(access, slice, slivers);
    const live = slivers.filter((s) => s.allocation === 'provisioned' && !s.phase);
    const got = await this.o.nodes.fanOut(live, (s) => s.nodeUrn, (c, opts, s) => c.getSliver({ sliverUrn: s.urn }, opts), { deadline: ctx.deadline, signal: ctx.signal });
    const errors = new Map<string, string>();
    await this.mutate((tx, t) => {
      for (const [i, r] of got.entries()) {
        const s = live[i] as SliverRecord;
        const cur = this.book.slivers.get(s.urn);
        if (!cur || cur.phase || cur.allocation !== 'provisioned') continue;
        if (!r.ok) {
          if (r.code === Status.NOT_FOUND) {
            tx.putSliver({ ...cur, operational: 'failed', error: `the node no longer has this sliver (${r.reason}); delete it and allocate again`, updatedAt: t });
          } else errors.set(s.urn, `last known state; ${r.reason}`);
          continue;
        }
        const nm = r.value.sliver;
        const operational = operationalOf(nm?.operationalState, cur.operational);
        const expiresAt = nm?.expiresAt?.getTime() ?? cur.expiresAt;
        const error = nm?.error ?? '';
        if (operational !== cur.operational || expiresAt !== cur.expiresAt || error !== cur.error) tx.putSliver({ ...cur, operational, expiresAt, error, updatedAt: t });
      }
    });
    const after = this.book.slices.get(slice.urn) ?? slice;
    return {
      sliceUrn: slice.urn,
      slivers: slivers.map((s) => {
        const w = this.wire(this.book.slivers.get(s.urn) ?? s);
        const e = errors.get(s.urn);
        return e ? { ...w, error: w.error ? `${w.error}; ${e}` : e } : w;
      }),
      swappedOut: after.swappedOut,
      shutDown: after.shutDown !== undefined,
    };
  }

  /** Describe: the manifest of a slice at this site (from the MA's books). */
  describe(ctx: CallContext, urns: readonly string[]): AggregateDescribeResponse {
    const access = this.o.access.chain(ctx, 'sliver.read');
    const { slice, slivers } = this.resolve(urns);
    this.ownSlice(access, slice, slivers);
    return {
      sliceUrn: slice.urn,
      slivers: slivers.map((s) => this.wire(s)),
      links: linksToWire(slice.links),
      manifestDocument: slice.documentFormat ? manifestDocument(slice, slivers, this.o.maUrn) : '',
      swappedOut: slice.swappedOut,
      shutDown: slice.shutDown !== undefined,
    };
  }

  // ---- PerformOperationalAction, Shutdown ----------------------------------------------------

  /** PerformOperationalAction: start, stop, restart; emulab swap-out and swap-in. */
  async act(ctx: CallContext, req: AggregatePerformOperationalActionRequest): Promise<SliverResult[]> {
    const action = req.action;
    if (action === OperationalAction.OPERATIONAL_ACTION_SWAP_OUT || action === OperationalAction.OPERATIONAL_ACTION_SWAP_IN) {
      if (!this.rules.swap) throw new FailedPreconditionError(`this is a ${this.o.settings.style}-style site; swap-out and swap-in are emulab actions`, { rule: 'style' });
      const access = this.o.access.chain(ctx, 'sliver.control');
      if (action === OperationalAction.OPERATIONAL_ACTION_SWAP_IN) this.o.access.chain(ctx, 'sliver.create');
      const { slice } = this.resolve(req.urns);
      if (req.urns.length !== 1 || req.urns[0] !== slice.urn) throw new InvalidArgumentError('swap-out and swap-in act on a whole slice: name the slice URN alone', { field: 'urns' });
      this.ownSlice(access, slice, this.book.sliversOf(slice.urn));
      return this.sliceLocks.run(slice.urn, () => (action === OperationalAction.OPERATIONAL_ACTION_SWAP_OUT ? this.swapOut(slice.urn, ctx.deadline) : this.swapIn(access, slice.urn, ctx.deadline)));
    }
    const wireAction =
      action === OperationalAction.OPERATIONAL_ACTION_START
        ? SliverAction.SLIVER_ACTION_START
        : action === OperationalAction.OPERATIONAL_ACTION_STOP
          ? SliverAction.SLIVER_ACTION_STOP
          : action === OperationalAction.OPERATIONAL_ACTION_RESTART
            ? SliverAction.SLIVER_ACTION_RESTART
            : undefined;
    if (wireAction === undefined) throw new InvalidArgumentError('action must be START, STOP, RESTART, SWAP_OUT or SWAP_IN', { field: 'action' });
    const access = this.o.access.chain(ctx, 'sliver.control');
    const { slice, slivers } = this.resolve(req.urns);
    this.ownSlice(access, slice, slivers);
    return this.sliceLocks.run(slice.urn, async () => {
      const cur = this.book.slices.get(slice.urn) ?? slice;
      if (cur.shutDown && wireAction !== SliverAction.SLIVER_ACTION_STOP) {
        throw new FailedPreconditionError(`slice ${slice.urn} is shut down at this site (${cur.shutDown.reason}); only the site's administrators can lift that`, { rule: 'shutdown' });
      }
      if (cur.swappedOut) throw new FailedPreconditionError(`slice ${slice.urn} is swapped out; swap it in first (SWAP_IN)`, { rule: 'swapped-out' });
      return this.control(slivers, wireAction, req.bestEffort, ctx.deadline);
    });
  }

  private async control(slivers: readonly SliverRecord[], action: SliverAction, bestEffort: boolean, deadline: number): Promise<SliverResult[]> {
    const outcomes = new Map<string, Outcome>();
    const actionable: SliverRecord[] = [];
    for (const s0 of slivers) {
      const s = this.book.slivers.get(s0.urn);
      if (!s) outcomes.set(s0.urn, fail(Status.NOT_FOUND, `sliver ${s0.urn} is gone`));
      else if (s.phase) outcomes.set(s.urn, fail(Status.UNAVAILABLE, `sliver ${s.urn} is busy (${s.phase}); try again shortly`));
      else if (s.allocation !== 'provisioned') outcomes.set(s.urn, fail(Status.FAILED_PRECONDITION, `sliver ${s.urn} is ${s.allocation}, not provisioned; provision it first`));
      else if (!this.o.registry.get(s.nodeUrn)?.up) outcomes.set(s.urn, fail(Status.UNAVAILABLE, `node ${s.nodeUrn} is DOWN; try again when it is UP`));
      else actionable.push(s);
    }
    if (!bestEffort && outcomes.size) throwFailures('the action', [...outcomes].map(([u, o]) => ({ sliver: this.book.slivers.get(u) ?? slivers.find((x) => x.urn === u)!, outcome: o })));
    const res = await this.o.nodes.fanOut(actionable, (s) => s.nodeUrn, (c, opts, s) => c.controlSliver({ sliverUrn: s.urn, action }, opts), { deadline });
    await this.mutate((tx, t) => {
      for (const [i, r] of res.entries()) {
        const s = actionable[i] as SliverRecord;
        if (!r.ok) {
          outcomes.set(s.urn, fail(r.code, r.reason));
          continue;
        }
        outcomes.set(s.urn, OK);
        const cur = this.book.slivers.get(s.urn);
        const nm = r.value.sliver;
        if (cur && !cur.phase) tx.putSliver({ ...cur, operational: operationalOf(nm?.operationalState, cur.operational), error: nm?.error ?? '', updatedAt: t });
      }
    });
    return slivers.map((s) => this.result(this.book.slivers.get(s.urn) ?? s, outcomes.get(s.urn) ?? OK));
  }

  /** Emulab swap-out: every sliver's node released (deleted there), the experiment kept. */
  private async swapOut(sliceUrn: string, deadline: number): Promise<SliverResult[]> {
    const slivers = this.book.sliversOf(sliceUrn);
    if (slivers.some((s) => s.phase === 'provisioning')) throw new UnavailableError(`slice ${sliceUrn} is being provisioned or recovered; try again shortly`);
    const intent = await this.mutate((tx, now) => {
      const slice = this.book.slices.get(sliceUrn) as SliceRecord;
      tx.putSlice({ ...slice, swappedOut: true });
      const items: { sliverUrn: string; nodeUrn: string }[] = [];
      for (const s of this.book.sliversOf(sliceUrn)) {
        if (s.allocation === 'provisioned' || s.phase === 'swapping-out') {
          items.push({ sliverUrn: s.urn, nodeUrn: s.nodeUrn });
          tx.putSliver({ ...s, phase: 'swapping-out', updatedAt: now });
        } else if (s.allocation === 'allocated') {
          const { holdExpiresAt: _h, ...rest } = s;
          tx.putSliver({ ...rest, allocation: 'unallocated', operational: 'pending', updatedAt: now });
        }
      }
      const rec: IntentRecord = { id: `int-${randomBytes(8).toString('hex')}`, kind: 'swap-out', sliceUrn, items, createdAt: now };
      if (items.length) tx.putIntent(rec);
      return rec;
    });
    const outcomes = intent.items.length ? await this.settle(intent.id, { deadline }) : new Map<string, Outcome>();
    this.o.log.info({ slice: sliceUrn, slivers: intent.items.length }, 'swapped out');
    return slivers.map((s) => this.result(this.book.slivers.get(s.urn) ?? s, outcomes.get(s.urn) ?? OK));
  }

  /** Emulab swap-in: nodes allocated again (named nodes must be free) and provisioned and started, all or nothing. */
  private async swapIn(access: ChainAccess, sliceUrn: string, deadline: number): Promise<SliverResult[]> {
    const slice = this.book.slices.get(sliceUrn) as SliceRecord;
    if (!slice.swappedOut) throw new FailedPreconditionError(`slice ${sliceUrn} is not swapped out`, { rule: 'swapped-out' });
    if (slice.shutDown) throw new FailedPreconditionError(`slice ${sliceUrn} is shut down at this site (${slice.shutDown.reason})`, { rule: 'shutdown' });
    const wantNetns = this.rules.links && (await this.o.netlab.supported()).ok;
    const intent = await this.mutate((tx, now) => {
      const slivers = this.book.sliversOf(sliceUrn);
      if (slivers.some((s) => s.phase)) throw new UnavailableError(`slice ${sliceUrn} is still being swapped out on some node; try again shortly`);
      this.releaseExpiredHolds(tx, now);
      const taken = new Set<string>();
      const placed: { s: SliverRecord; node: string }[] = [];
      for (const s of slivers) {
        if (s.expiresAt <= now) throw new FailedPreconditionError(`sliver ${s.urn} expired at ${new Date(s.expiresAt).toISOString()}; the experiment cannot be swapped in`, { rule: 'expired' });
        if (s.explicitNode) {
          const o = this.unfit(this.o.registry.get(s.nodeUrn), s.nodeUrn, sliceUrn, s, now, undefined);
          if (!o.ok) throw errorFor(o.code === Status.UNAVAILABLE ? Status.RESOURCE_EXHAUSTED : o.code, `cannot swap in: ${o.reason}. Nothing changed.`);
          if (!access.covers(s.nodeUrn)) throw new PermissionDeniedError(`the chain does not cover node ${s.nodeUrn}`, { rule: 'grant-object' });
          taken.add(s.nodeUrn);
          placed.push({ s, node: s.nodeUrn });
        }
      }
      const order = this.pickOrder(access);
      for (const s of slivers) {
        if (s.explicitNode) continue;
        const want: WantedSliver = { clientId: s.clientId, resources: s.resources, minFree: s.resources, exclusive: s.exclusive };
        const node = this.pick(order, sliceUrn, want, now, taken);
        if (!node) throw new ResourceExhaustedError(`cannot swap in ${sliceUrn}: no free node for ${s.clientId}. Nothing changed.`, { rule: 'selector' });
        taken.add(node);
        placed.push({ s, node });
      }
      this.checkQuota(
        access,
        slivers.map((s) => s.resources),
      );
      const items: { sliverUrn: string; nodeUrn: string }[] = [];
      for (const { s, node } of placed) {
        tx.putSliver({
          ...s,
          nodeUrn: node,
          allocation: 'allocated',
          phase: 'provisioning',
          holdExpiresAt: now + this.o.settings.holdS * 1000,
          generation: s.generation + 1,
          updatedAt: now,
          ...this.hostPresence(wantNetns, slice.links, s.clientId),
        });
        items.push({ sliverUrn: s.urn, nodeUrn: node });
      }
      const rec: IntentRecord = { id: `int-${randomBytes(8).toString('hex')}`, kind: 'swap-in', sliceUrn, items, createdAt: now };
      tx.putIntent(rec);
      return rec;
    });
    const cur = this.book.slices.get(sliceUrn) as SliceRecord;
    const swapIns = intent.items.map((i) => this.book.slivers.get(i.sliverUrn) as SliverRecord);
    const outcomes = await this.instantiate(cur, swapIns, { kind: 'swap-in', start: true, asked: undefined, deadline, allOrNothing: true, marked: intent });
    const bad = [...outcomes].filter(([, o]) => !o.ok);
    if (bad.length) throwFailures('SWAP_IN', bad.map(([u, o]) => ({ sliver: this.book.slivers.get(u) ?? swapIns.find((s) => s.urn === u)!, outcome: o })));
    return this.book.sliversOf(sliceUrn).map((s) => this.result(s, OK));
  }

  /** Shutdown: stops every sliver of the slice here and freezes the slice (administrators and the slice's authority). */
  async shutdown(peer: Peer, isAdmin: boolean, req: AggregateShutdownRequest, deadline: number): Promise<SliverResult[]> {
    urnField('slice_urn', req.sliceUrn, 'slice');
    const reason = text('reason', req.reason, 500);
    const slice = this.book.slices.get(req.sliceUrn);
    if (!slice) throw new NotFoundError(`no slice ${req.sliceUrn} at this site`);
    if (!isAdmin && !(peer.urn === slice.sliceAuthorityUrn && peer.thumbprint === slice.sliceAuthorityKid)) {
      throw new PermissionDeniedError(`only the site's administrators and the slice's authority (${slice.sliceAuthorityUrn}) may shut ${req.sliceUrn} down`, { rule: 'shutdown' });
    }
    return this.sliceLocks.run(slice.urn, async () => {
      await this.mutate((tx, now) => {
        const cur = this.book.slices.get(slice.urn);
        if (cur) tx.putSlice({ ...cur, shutDown: { reason: reason || 'emergency stop', by: peer.urn, at: now } });
      });
      this.o.log.warn({ slice: slice.urn, by: peer.urn, reason }, 'slice shut down at this site');
      const running = this.book.sliversOf(slice.urn).filter((s) => s.allocation === 'provisioned' && !s.phase);
      return this.control(running, SliverAction.SLIVER_ACTION_STOP, true, deadline);
    });
  }

  /** The host network namespace of each instantiated sliver of a slice, by client id (emulab; for site tools and tests). */
  hostNamespaces(sliceUrn: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const s of this.book.sliversOf(sliceUrn)) if (s.netns && s.allocation === 'provisioned') out.set(s.clientId, s.netns);
    return out;
  }

  /** Counts for diagnostics and tests. */
  stats(): { slices: number; slivers: number; holds: number; intents: number } {
    return { slices: this.book.slices.size, slivers: this.book.slivers.size, holds: this.book.holds.size, intents: this.book.intents.size };
  }

  /** Whether any sliver counts on a node (tests). */
  committedOn(nodeUrn: string): { committed: Resources; slivers: number } {
    const u = this.book.use(nodeUrn);
    return { committed: u.committed, slivers: u.slivers };
  }
}

function parseKind(u: string, i: number): 'slice' | 'sliver' {
  try {
    const k = parseUrn(u).kind;
    if (k === 'slice' || k === 'sliver') return k;
  } catch {
    // urnField reports the malformed URN.
  }
  throw new InvalidArgumentError(`urns[${i}] must be a slice or sliver URN`, { field: 'urns' });
}

function specJson(r: { cpuMillis: number; memMb: number; diskMb: number; pids: number } | undefined): Record<string, number> {
  return { cpu_millis: r?.cpuMillis ?? 0, mem_mb: r?.memMb ?? 0, disk_mb: r?.diskMb ?? 0, pids: r?.pids ?? 0 };
}
