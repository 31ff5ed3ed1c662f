/**
 * What every operation on the slice authority's slices shares: the slices
 * and intents in memory and their tables, the admission mutex and per-slice
 * locks, the work in progress (so a stop can wait for it), and the numbering
 * and publishing of progress events. The operations (read, create, delete,
 * renew, watch, recovery) are functions over this state; `SliceBook` is
 * their facade.
 */
import type { Logger } from '../../core/log.js';
import { KeyedMutex, Mutex } from '../../core/mutex.js';
import type { Store, Table } from '../../core/store/store.js';
import { parseUrn } from '../../core/identity/urn.js';
import type { ResultStatus } from '../../generated/fedlab/v1/common.js';
import type { Slice, WatchSliceResponse } from '../../generated/fedlab/v1/slice_authority.js';
import type { Accounts } from '../accounts.js';
import type { SaConfig } from '../config.js';
import type { EventHub } from '../events.js';
import { LIVE, sliceToWire, stateToWire, TABLES, type IntentRecord, type RequestRecord, type SliceRecord } from '../records.js';
import type { Sites } from '../sites.js';
import { SliceIndex } from './slice-index.js';

/**
 * How far event sequence numbers jump at a restart: events are numbered in
 * memory and the number is written with the slice's next write, so the last
 * few events before a stop may not be on disk; the jump keeps numbers unique.
 */
const SEQUENCE_GAP = 1_000_000;

/** What the slice book is built from. */
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

/** What an event says, before it gets its sequence number. */
export interface EventInput {
  readonly message: string;
  readonly site?: string;
  readonly nodeUrn?: string;
  readonly sliverUrn?: string;
  readonly status?: ResultStatus;
  readonly snapshot?: boolean;
}

/** The slices, their intents and the locks and work around them. */
export class SliceBookState {
  /** By URN, with the provider and URN-order indexes and wire forms the reads use (slice-index.ts). */
  readonly slices = new SliceIndex();
  readonly intents = new Map<string, IntentRecord>();
  readonly sliceTable: Table<SliceRecord>;
  readonly requestTable: Table<RequestRecord>;
  readonly intentTable: Table<IntentRecord>;
  /** Quota checks and the write of a new slice, one CreateSlice at a time. */
  readonly admission = new Mutex();
  /** One piece of work per slice at a time. */
  readonly locks = new KeyedMutex();
  /** Create intents whose outcome the store refused: the intent retries roll them back. */
  readonly stranded = new Set<string>();
  /** When each slice's slivers were last asked of its sites (GetSlice). */
  readonly refreshedAt = new Map<string, number>();
  /** GetSlice's refresh of a slice from its sites while one runs: later readers share its answer. */
  readonly refreshing = new Map<string, Promise<Slice>>();
  /** The domain slice URNs are made in. */
  readonly domain: string;
  private readonly running = new Set<Promise<unknown>>();
  private stoppingNow = false;

  constructor(readonly deps: SliceBookOptions) {
    this.sliceTable = deps.store.table<SliceRecord>(TABLES.slices);
    this.requestTable = deps.store.table<RequestRecord>(TABLES.requests);
    this.intentTable = deps.store.table<IntentRecord>(TABLES.intents);
    this.domain = parseUrn(deps.saUrn).domain;
  }

  /** The time now (ms). */
  get now(): number {
    return this.deps.now();
  }

  /** Whether a stop has begun (no new work is taken). */
  get stopping(): boolean {
    return this.stoppingNow;
  }

  /** Loads the books from the store. */
  async load(): Promise<void> {
    for await (const [k, v] of this.sliceTable.entries()) this.slices.set(k, { ...v, seq: v.seq + SEQUENCE_GAP });
    for await (const [k, v] of this.intentTable.entries()) this.intents.set(k, v);
  }

  /** Counts for the start-up log. */
  stats(): { slices: number; live: number; intents: number } {
    return {
      slices: this.slices.size,
      live: [...this.slices.values()].filter((s) => LIVE.has(s.state)).length,
      intents: this.intents.size,
    };
  }

  /** Keeps `p` among the work a stop waits for. */
  track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    void p.then(
      () => this.running.delete(p),
      () => this.running.delete(p),
    );
    return p;
  }

  /** Stops taking new work and waits for work in progress (each part is bounded by the site deadline). */
  async stop(): Promise<void> {
    this.stoppingNow = true;
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  /** The slice's intent of a kind, if any. */
  intentOf(sliceUrn: string, kind: IntentRecord['kind']): IntentRecord | undefined {
    return [...this.intents.values()].find((i) => i.sliceUrn === sliceUrn && i.kind === kind);
  }

  /** Gives an event the slice's next sequence number (kept in memory; written with the slice's next write) and publishes it. */
  publish(rec: SliceRecord, e: EventInput): void {
    const cur = this.slices.get(rec.urn) ?? rec;
    const seq = cur.seq + 1;
    const next = { ...cur, seq };
    this.slices.set(rec.urn, next);
    this.deps.hub.publish(this.event(next, e, seq));
  }

  /** The wire form of an event of a slice. */
  event(rec: SliceRecord, e: EventInput, sequence: number): WatchSliceResponse {
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
}
