/**
 * The site's nodes and their health. Enrolled nodes live in memory (sorted by
 * URN for paging) and in the `nodes` table; health is kept in memory and
 * written to `node-health` in coalesced batches, because heartbeats are the
 * hottest path of the authority (10,000 nodes at a 5 s interval is 2,000
 * calls a second): a heartbeat updates a few fields in place and marks the
 * node dirty, nothing more. A monitor tick marks a node DOWN once three
 * intervals passed without a heartbeat; the next heartbeat makes it UP again.
 *
 * Restart grace: what the store says of a node's health was true when the
 * previous process last wrote it. So a node loaded at start-up is *unheard*
 * (UNKNOWN: not UP, and not known to be down) until its first heartbeat to
 * this process, or until the grace period (`restartGraceMs`, three heartbeat
 * intervals by default) has passed, when it becomes DOWN. The aggregate
 * answers UNAVAILABLE with a retry hint instead of "no node is UP" meanwhile.
 */
import { PermissionDeniedError, NotFoundError, InvalidArgumentError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import { NodeHealth, SiteStyle, type Node } from '../generated/fedlab/v1/common.js';
import type { HeartbeatRequest } from '../generated/fedlab/v1/management_authority.js';
import type { Clock } from '../core/clock.js';
import type { StyleName } from './config.js';
import { parseEndpoint } from '../core/endpoint.js';
import { insertSorted } from '../core/paging.js';
import type { SshEndpointInput } from '../core/identity/ssh-keys.js';
import { sshEndpointToWire, takeSshReport, type SshOffers } from './node-ssh.js';
import { takeUnderlayReport } from './node-underlay.js';
import type { WarningThrottle } from './node-warning-throttle.js';
import { imagesOf, imagesOfNode, sameResources, toSpec } from './node-resources.js';
import { resourcesOf, TABLES, ZERO, type NodeHealthRecord, type NodeRecord, type Resources } from './records.js';

/** Heartbeats missed in a row that make a node DOWN. */
export const MISSED_FOR_DOWN = 3;
/** A node's routine heartbeat data is written at most once per this many intervals (changes at once). */
export const PERSIST_EVERY = 12;

/** A node as held in memory: its enrolment record and its live health. */
export interface LiveNode {
  readonly record: NodeRecord;
  up: boolean;
  lastHeartbeatAt: number | undefined;
  sequence: number;
  endpoint: string;
  capacity: Resources;
  reportedAllocated: Resources;
  usage: Resources;
  reportedSlivers: number;
  version: string;
  /** Images the node offers slivers, sorted (its heartbeats say); absent: only `host` ({@link imagesOfNode}). */
  images?: readonly string[];
  /** The node's SSH endpoint, checked (node-ssh.ts); absent: it serves none. */
  ssh?: SshEndpointInput;
  /** What the node last offered as its SSH endpoint (so a repeat is not checked again); made at the first heartbeat when absent. */
  sshOffers?: SshOffers;
  /** The node's underlay address for links (node-underlay.ts); absent: it takes no links. */
  underlayAddress?: string;
  /** The last underlay address refused (not logged again). */
  underlayRefused?: string;
  /** Refused underlay addresses' log lines, at most one a minute. */
  underlayWarnings?: WarningThrottle;
  /** The most a link at the node may carry (kbit/s); 0: not reported. */
  linkKbps?: number;
  /** When health was last written (ms, MA clock). */
  persistedAt: number;
  /** Loaded at start-up and not heard from since (UNKNOWN during the restart grace; see the module's notes). */
  unheard?: boolean;
}

/** What the aggregate has committed on a node (holds and slivers), for reports. */
export type CommittedOf = (nodeUrn: string) => { readonly committed: Resources; readonly slivers: number };

/** Options of {@link NodeRegistry}. */
export interface NodeRegistryOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly intervalMs: number;
  readonly style: StyleName;
  readonly aggregateUrn: string;
  /**
   * How long after start-up nodes that have not sent a heartbeat yet are UNKNOWN rather than DOWN
   * (ms). Default {@link MISSED_FOR_DOWN} heartbeat intervals: a node that is up beats within one.
   */
  readonly restartGraceMs?: number;
}

/** A health change the monitor or a heartbeat made. */
export interface HealthChange {
  readonly nodeUrn: string;
  readonly up: boolean;
}

const STYLE: Record<StyleName, SiteStyle> = {
  planetlab: SiteStyle.SITE_STYLE_PLANETLAB,
  emulab: SiteStyle.SITE_STYLE_EMULAB,
  protogeni: SiteStyle.SITE_STYLE_PROTOGENI,
};

/** The site's enrolled nodes and their health. */
export class NodeRegistry {
  private readonly nodes = new Map<string, LiveNode>();
  private readonly sorted: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly nodeTable: Table<NodeRecord>;
  private readonly healthTable: Table<NodeHealthRecord>;
  private readonly listeners: ((change: HealthChange) => void)[] = [];
  private committedOf: CommittedOf = () => ({ committed: ZERO, slivers: 0 });
  /** Heartbeats accepted since start (diagnostics and the benchmark). */
  heartbeats = 0;
  /** When this process started (MA clock): the restart grace runs from here. */
  private readonly startedAt: number;
  private readonly graceMs: number;

  constructor(private readonly deps: NodeRegistryOptions) {
    this.nodeTable = deps.store.table<NodeRecord>(TABLES.nodes);
    this.healthTable = deps.store.table<NodeHealthRecord>(TABLES.nodeHealth);
    this.startedAt = deps.clock.now();
    this.graceMs = deps.restartGraceMs ?? MISSED_FOR_DOWN * deps.intervalMs;
  }

  /** The heartbeat interval nodes are asked to keep (ms). */
  get intervalMs(): number {
    return this.deps.intervalMs;
  }

  /** What is left of the restart grace (ms; 0 once it is over). */
  graceLeftMs(): number {
    return Math.max(0, this.startedAt + this.graceMs - this.deps.clock.now());
  }

  /** Whether a node is UNKNOWN now: loaded at start-up, not heard from since, and the grace still running. */
  isUnknown(urn: string): boolean {
    return this.nodes.get(urn)?.unheard === true && this.graceLeftMs() > 0;
  }

  /** The table of enrolment records (enrolment writes it in its own batch). */
  get table(): Table<NodeRecord> {
    return this.nodeTable;
  }

  /** The table of health records. */
  get health(): Table<NodeHealthRecord> {
    return this.healthTable;
  }

  /** Where reports read what the aggregate has committed on a node. */
  setCommittedOf(fn: CommittedOf): void {
    this.committedOf = fn;
  }

  /** Calls `fn` on every UP/DOWN change. */
  onHealthChange(fn: (change: HealthChange) => void): void {
    this.listeners.push(fn);
  }

  /** Loads every node and its last health. */
  async load(): Promise<void> {
    for await (const [urn, rec] of this.nodeTable.entries()) {
      const h = await this.healthTable.get(urn);
      this.install(rec, h, this.graceMs > 0);
    }
  }

  private install(rec: NodeRecord, h: NodeHealthRecord | undefined, unheard: boolean): LiveNode {
    // Health, once written, says what the node last reported (a node that stopped serving SSH has none).
    const ssh: SshEndpointInput | undefined = h ? h.ssh : rec.ssh;
    const underlay = h ? h.underlayAddress : rec.underlayAddress;
    const live: LiveNode = {
      record: rec,
      // An unheard node is not UP: its last known health is the previous process's.
      up: unheard ? false : (h?.up ?? false),
      lastHeartbeatAt: h?.lastHeartbeatAt,
      sequence: h?.sequence ?? 0,
      endpoint: h?.endpoint ?? rec.endpoint,
      capacity: h?.capacity ?? rec.capacity,
      reportedAllocated: h?.allocated ?? ZERO,
      usage: h?.usage ?? ZERO,
      reportedSlivers: h?.sliverCount ?? 0,
      version: h?.version ?? rec.version,
      ...(h?.images ? { images: [...h.images] } : {}),
      ...(ssh ? { ssh } : {}),
      // What is kept counts as offered: a first heartbeat without one then clears it.
      sshOffers: ssh ? { lastOffered: ssh } : {},
      ...(underlay ? { underlayAddress: underlay } : {}),
      linkKbps: (h ? h.linkKbps : rec.linkKbps) ?? 0,
      persistedAt: 0,
      unheard,
    };
    this.nodes.set(rec.urn, live);
    insertSorted(this.sorted, rec.urn);
    return live;
  }

  /** Adds a node whose enrolment batch was written. It is DOWN until its first heartbeat. */
  added(rec: NodeRecord): void {
    this.install(rec, undefined, false);
  }

  get size(): number {
    return this.nodes.size;
  }

  get(urn: string): LiveNode | undefined {
    return this.nodes.get(urn);
  }

  has(urn: string): boolean {
    return this.nodes.has(urn);
  }

  /** Every node, in URN order. */
  all(): LiveNode[] {
    return this.sorted.map((u) => this.nodes.get(u) as LiveNode);
  }

  /**
   * Takes a heartbeat from the node its caller's certificate names. Cheap on
   * purpose: validation, a few assignments, and the node marked dirty. `admit`
   * (the heartbeat rate) runs once the caller is known to be the enrolled node.
   */
  heartbeat(
    peer: { readonly urn: string; readonly thumbprint: string },
    req: HeartbeatRequest,
    admit?: (node: LiveNode) => void,
  ): LiveNode {
    if (req.nodeUrn !== peer.urn) {
      throw new PermissionDeniedError(
        `the caller is ${peer.urn}, not ${req.nodeUrn}: a node sends its own heartbeats with its own certificate`,
        { rule: 'node_urn' },
      );
    }
    const node = this.nodes.get(req.nodeUrn);
    if (!node) throw new NotFoundError(`node ${req.nodeUrn} is not enrolled here; enrol it with a token from \`fedlab node token\``);
    if (node.record.keyThumbprint !== peer.thumbprint) {
      throw new PermissionDeniedError(
        `the caller's key is not the key ${req.nodeUrn} enrolled with; use the certificate the enrolment returned`,
        { rule: 'node_key' },
      );
    }
    // The caller is this enrolled node: only now may it cost a rate bucket (one per node, never per stranger).
    admit?.(node);
    // What matters after a restart (endpoint, capacity, version, health) is written at the next flush; the
    // rest of a routine heartbeat (usage, time, sequence) at most once per PERSIST_EVERY intervals.
    // Every field that can refuse the message is checked before anything is assigned: a refused heartbeat changes nothing.
    const newEndpoint = req.endpoint !== node.endpoint && req.endpoint !== '';
    if (newEndpoint) parseEndpoint(req.endpoint);
    const newVersion = !!req.version && req.version !== node.version;
    if (newVersion && req.version.length > 64) throw new InvalidArgumentError('version is at most 64 characters', { field: 'version' });
    const images = imagesOf(req.images);
    const capacity = resourcesOf(req.capacity);
    let changed = false;
    if (newEndpoint) {
      node.endpoint = req.endpoint;
      changed = true;
    }
    if (req.capacity !== undefined && !sameResources(capacity, node.capacity)) {
      node.capacity = capacity;
      changed = true;
    }
    if (newVersion) {
      node.version = req.version;
      changed = true;
    }
    if (images && images.join('\n') !== imagesOfNode(node).join('\n')) {
      node.images = images;
      changed = true;
    }
    const now = this.deps.clock.now();
    if (takeSshReport(node, req.ssh, this.deps.log, now)) changed = true;
    if (takeUnderlayReport(node, req.underlayAddress, this.deps.log, now)) changed = true;
    const linkKbps = req.capacity?.bandwidthKbps ?? node.linkKbps ?? 0;
    if (Number.isSafeInteger(linkKbps) && linkKbps >= 0 && linkKbps !== (node.linkKbps ?? 0)) {
      node.linkKbps = linkKbps;
      changed = true;
    }
    node.reportedAllocated = resourcesOf(req.allocated);
    node.usage = resourcesOf(req.usage);
    node.reportedSlivers = req.sliverCount;
    node.sequence = req.sequence;
    node.lastHeartbeatAt = now;
    node.unheard = false;
    if (changed || !node.up || now - node.persistedAt >= PERSIST_EVERY * this.deps.intervalMs) this.dirty.add(node.record.urn);
    this.heartbeats++;
    if (!node.up) {
      node.up = true;
      this.deps.log.info({ node: node.record.urn }, 'node is UP');
      this.emit({ nodeUrn: node.record.urn, up: true });
    }
    return node;
  }

  /** Heartbeats missed in a row, as of now. */
  missed(node: LiveNode): number {
    const since = node.lastHeartbeatAt ?? node.record.enrolledAt;
    return Math.max(0, Math.floor((this.deps.clock.now() - since) / this.deps.intervalMs));
  }

  /**
   * The monitor tick: every UP node that missed three intervals goes DOWN, and once the restart grace
   * is over so does every node not heard from since start-up. Returns the changes.
   */
  check(): HealthChange[] {
    const changes: HealthChange[] = [];
    const limit = this.deps.clock.now() - MISSED_FOR_DOWN * this.deps.intervalMs;
    const graceOver = this.graceLeftMs() === 0;
    for (const node of this.nodes.values()) {
      if (node.unheard && graceOver) {
        node.unheard = false;
        this.dirty.add(node.record.urn);
        this.deps.log.warn(
          { node: node.record.urn, lastHeartbeatAt: node.lastHeartbeatAt, graceMs: this.graceMs },
          'node is DOWN: no heartbeat within the restart grace',
        );
        const change = { nodeUrn: node.record.urn, up: false };
        changes.push(change);
        this.emit(change);
        continue;
      }
      if (!node.up) continue;
      if ((node.lastHeartbeatAt ?? node.record.enrolledAt) > limit) continue;
      node.up = false;
      this.dirty.add(node.record.urn);
      this.deps.log.warn({ node: node.record.urn, lastHeartbeatAt: node.lastHeartbeatAt }, 'node is DOWN: three heartbeats missed');
      const change = { nodeUrn: node.record.urn, up: false };
      changes.push(change);
      this.emit(change);
    }
    return changes;
  }

  private emit(change: HealthChange): void {
    for (const fn of this.listeners) fn(change);
  }

  /** Writes the health of every node that changed since the last flush, in one batch. */
  async flush(): Promise<number> {
    if (this.dirty.size === 0) return 0;
    const urns = [...this.dirty];
    this.dirty.clear();
    const batch = this.deps.store.batch();
    const now = this.deps.clock.now();
    for (const urn of urns) {
      const n = this.nodes.get(urn);
      if (!n) continue;
      const rec: NodeHealthRecord = {
        up: n.up,
        ...(n.lastHeartbeatAt !== undefined ? { lastHeartbeatAt: n.lastHeartbeatAt } : {}),
        sequence: n.sequence,
        endpoint: n.endpoint,
        capacity: n.capacity,
        allocated: n.reportedAllocated,
        usage: n.usage,
        sliverCount: n.reportedSlivers,
        version: n.version,
        ...(n.images ? { images: n.images } : {}),
        ...(n.ssh ? { ssh: n.ssh } : {}),
        ...(n.underlayAddress ? { underlayAddress: n.underlayAddress } : {}),
        ...(n.linkKbps ? { linkKbps: n.linkKbps } : {}),
      };
      batch.put(this.healthTable, urn, rec);
    }
    try {
      await batch.write();
    } catch (err) {
      // Not written: try again at the next flush.
      for (const u of urns) this.dirty.add(u);
      throw err;
    }
    for (const urn of urns) {
      const n = this.nodes.get(urn);
      if (n) n.persistedAt = now;
    }
    return urns.length;
  }

  /** The protobuf form of a node. */
  toWire(n: LiveNode): Node {
    const { committed, slivers } = this.committedOf(n.record.urn);
    return {
      urn: n.record.urn,
      ownerUrn: n.record.ownerUrn,
      aggregateUrn: this.deps.aggregateUrn,
      style: STYLE[this.deps.style],
      health: n.up ? NodeHealth.NODE_HEALTH_UP : NodeHealth.NODE_HEALTH_DOWN,
      endpoint: n.endpoint,
      capacity: toSpec(n.capacity, n.linkKbps ?? 0),
      allocated: toSpec(committed),
      usage: toSpec(n.usage),
      sliverCount: slivers,
      isolation: n.record.isolation,
      version: n.version,
      exclusive: n.record.exclusive,
      netemAvailable: n.record.netemAvailable,
      enrolledAt: new Date(n.record.enrolledAt),
      ...(n.lastHeartbeatAt !== undefined ? { lastHeartbeatAt: new Date(n.lastHeartbeatAt) } : {}),
      missedHeartbeats: this.missed(n),
      images: { names: [...imagesOfNode(n)] },
      ssh: sshEndpointToWire(n.ssh),
      ...(n.underlayAddress ? { underlayAddress: n.underlayAddress } : {}),
    };
  }

  /** Sorted URNs (for paging elsewhere). */
  get urns(): readonly string[] {
    return this.sorted;
  }
}
