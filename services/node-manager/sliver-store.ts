/**
 * The node's slivers as stored: the LevelDB tables (`slivers`, `requests`,
 * `meta`, and the deleted slivers' tombstones), an in-memory copy of every
 * record, and the indexes admission needs (slivers per slice, exclusive
 * slivers, the committed totals), kept in step with the tables by every write
 * that goes through here.
 */
import { FailedPreconditionError, NotFoundError } from '../core/errors.js';
import type { Store, Table } from '../core/store/store.js';
import type { Clock } from '../core/clock.js';
import { addCommitted, ZERO_COMMITTED, type Committed, type RequestRecord, type SliverRecord } from './records.js';
import type { IdRange } from './runtime/id-ranges.js';
import { SliverTombstones } from './sliver-tombstones.js';

/** Key of the committed totals in the `meta` table. */
export const COMMITTED_KEY = 'committed';

/** Request ids are idempotency keys per caller (a retry comes from the same caller). */
export function requestKey(caller: string, requestId: string): string {
  return `${caller} ${requestId}`;
}

/** The records, their indexes and their tables. */
export class SliverStore {
  readonly slivers: Table<SliverRecord>;
  readonly requests: Table<RequestRecord>;
  readonly meta: Table<Committed>;
  /** What DeleteSliver left: fences stale creates of deleted slivers (sliver-tombstones.ts). */
  readonly tombstones: SliverTombstones;
  private readonly records = new Map<string, SliverRecord>();
  /** Sliver URNs per slice, and the exclusive ones: admission checks stay O(1) in the number of slivers. */
  private readonly bySlice = new Map<string, Set<string>>();
  private readonly exclusiveUrns = new Set<string>();
  /**
   * Request keys of the live records (requestKey of their caller and request id) → their URN. The
   * `requests` table holds exactly these: each is written and deleted in its sliver's batches, and
   * reconcile drops any left by a sliver that is gone. Admission reads this instead of the table.
   */
  private readonly byRequest = new Map<string, string>();
  private committedTotals: Committed = ZERO_COMMITTED;
  /** Last measured disk use per sliver name (bytes), from the quota check. */
  readonly diskUse = new Map<string, number>();
  private isLoaded = false;

  constructor(
    readonly store: Store,
    private readonly clock: Clock,
  ) {
    this.slivers = store.table<SliverRecord>('slivers');
    this.requests = store.table<RequestRecord>('requests');
    this.meta = store.table<Committed>('meta');
    this.tombstones = new SliverTombstones(store);
  }

  /** The node's clock, now. */
  now(): number {
    return this.clock.now();
  }

  get loaded(): boolean {
    return this.isLoaded;
  }

  /** Resources committed to slivers (allocated or provisioned). */
  get committed(): Committed {
    return this.committedTotals;
  }

  /** Sets the committed totals (after the batch that wrote them). */
  setCommitted(c: Committed): void {
    this.committedTotals = c;
  }

  get count(): number {
    return this.records.size;
  }

  get(urn: string): SliverRecord | undefined {
    return this.records.get(urn);
  }

  has(urn: string): boolean {
    return this.records.has(urn);
  }

  /** Every record, in URN order. */
  list(): SliverRecord[] {
    return [...this.records.values()].sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));
  }

  /** Every record, unordered (a copy: safe to iterate while records change). */
  all(): SliverRecord[] {
    return [...this.records.values()];
  }

  /** Loads the tables into memory. */
  async load(): Promise<void> {
    this.records.clear();
    this.bySlice.clear();
    this.exclusiveUrns.clear();
    this.byRequest.clear();
    for await (const [, rec] of this.slivers.entries()) this.put(rec);
    await this.tombstones.load();
    this.committedTotals = this.sum();
    this.isLoaded = true;
  }

  assertLoaded(): void {
    if (!this.isLoaded) throw new FailedPreconditionError('the node manager is still starting; retry in a moment');
  }

  /** The committed totals as the records add them up. */
  sum(): Committed {
    let c = ZERO_COMMITTED;
    for (const r of this.records.values()) c = addCommitted(c, r.resources, 1);
    return c;
  }

  /** Number of slivers of one slice. */
  sliceCount(sliceUrn: string): number {
    return this.bySlice.get(sliceUrn)?.size ?? 0;
  }

  sliceRecords(sliceUrn: string): SliverRecord[] {
    return [...(this.bySlice.get(sliceUrn) ?? [])].map((u) => this.records.get(u) as SliverRecord);
  }

  sliceCommitted(sliceUrn: string): Committed {
    let c = ZERO_COMMITTED;
    for (const r of this.sliceRecords(sliceUrn)) c = addCommitted(c, r.resources, 1);
    return c;
  }

  /** Id ranges held by records (with the host ids each was made with). */
  usedIdRanges(): IdRange[] {
    const used: IdRange[] = [];
    for (const r of this.records.values()) if (r.ids) used.push(r.ids);
    return used;
  }

  /** Id range slots held by records. */
  usedIdSlots(): Set<number> {
    const used = new Set<number>();
    for (const r of this.records.values()) if (r.ids) used.add(r.ids.slot);
    return used;
  }

  /** The exclusive slivers. */
  exclusive(): SliverRecord[] {
    return [...this.exclusiveUrns].map((u) => this.records.get(u) as SliverRecord);
  }

  /**
   * The live sliver a caller's request id made (or promoted), with the request's fingerprint: what the
   * `requests` table holds for it, from memory.
   */
  requestOf(key: string): { readonly sliverUrn: string; readonly fingerprint: string } | undefined {
    const urn = this.byRequest.get(key);
    const rec = urn === undefined ? undefined : this.records.get(urn);
    return rec ? { sliverUrn: rec.urn, fingerprint: rec.requestFingerprint } : undefined;
  }

  /** Puts a record into memory and the indexes (the caller wrote it, or will). */
  put(rec: SliverRecord): void {
    const before = this.records.get(rec.urn);
    if (before) this.dropRequest(before);
    this.byRequest.set(requestKey(rec.requestCaller, rec.requestId), rec.urn);
    this.records.set(rec.urn, rec);
    let set = this.bySlice.get(rec.sliceUrn);
    if (!set) this.bySlice.set(rec.sliceUrn, (set = new Set()));
    set.add(rec.urn);
    if (rec.exclusive) this.exclusiveUrns.add(rec.urn);
  }

  /** Drops a record from memory and the indexes (the caller deleted it). */
  drop(urn: string): void {
    const rec = this.records.get(urn);
    if (!rec) return;
    this.records.delete(urn);
    this.dropRequest(rec);
    const set = this.bySlice.get(rec.sliceUrn);
    set?.delete(urn);
    if (set?.size === 0) this.bySlice.delete(rec.sliceUrn);
    this.exclusiveUrns.delete(urn);
    this.diskUse.delete(rec.name);
  }

  private dropRequest(rec: SliverRecord): void {
    const key = requestKey(rec.requestCaller, rec.requestId);
    if (this.byRequest.get(key) === rec.urn) this.byRequest.delete(key);
  }

  /**
   * Writes one record (replacing the cached one). Intents (wantRunning,
   * deleting) are flushed to disk; settled states need not be: a lost one after
   * a power cut only makes reconcile redo the step (and no container survives a
   * power cut to be adopted), while a kill -9 loses nothing written. With a
   * call's `signal`, nothing is written once that call has ended.
   */
  async save(rec: SliverRecord, sync: boolean, signal?: AbortSignal): Promise<SliverRecord> {
    await this.slivers.put(rec.urn, rec, { sync, signal });
    this.put(rec);
    return rec;
  }

  /** Changes a record's fields, stamps updatedAt, writes it (with a call's `signal`: not once that call has ended). */
  async update(urn: string, change: Partial<SliverRecord>, signal?: AbortSignal): Promise<SliverRecord> {
    const cur = this.records.get(urn);
    if (!cur) throw new NotFoundError(`sliver ${urn} is gone`);
    const intent = (change.wantRunning !== undefined && change.wantRunning !== cur.wantRunning) || change.deleting !== undefined;
    return this.save({ ...cur, ...change, updatedAt: this.clock.now() }, intent, signal);
  }

  /**
   * Shows a passing state (configuring) to readers without writing it: what a
   * restart needs is already durable (the record's wantRunning and its last
   * settled state), and reconcile redoes the step either way.
   */
  touch(urn: string, change: Partial<SliverRecord>): SliverRecord {
    const cur = this.records.get(urn);
    if (!cur) throw new NotFoundError(`sliver ${urn} is gone`);
    const next = { ...cur, ...change, updatedAt: this.clock.now() };
    this.put(next);
    return next;
  }
}
