/**
 * The aggregate's ledger of slices: slices, slivers, intents and Allocate
 * request ids, in memory (for fast admission and reports) and in LevelDB (the
 * truth across restarts), plus what is committed on every node and by every
 * slice authority, derived from the sliver records. Every change goes through
 * a {@link SliceLedgerTx}: one atomic batch is written first, and only then
 * are the in-memory views updated, so memory never runs ahead of the store.
 * The ledger also keeps the tombstones of slices their authority deleted
 * here (see tombstones.ts), written in the same batches.
 */
import type { Store, Table, WriteOptions } from '../../core/store/store.js';
import {
  addResources,
  TABLES,
  ZERO,
  type AllocateRequestRecord,
  type IntentRecord,
  type Resources,
  type SliceRecord,
  type SliverRecord,
} from '../records.js';

/** What is committed on one node. */
export interface NodeUse {
  committed: Resources;
  slivers: number;
  /** Slivers per slice. */
  readonly slices: Map<string, number>;
  /** Slivers per slice that hold the node exclusively. */
  readonly exclusive: Map<string, number>;
}

/** What one slice authority holds at this site (its credential's `lim` caps it). */
export interface AuthorityUse {
  committed: Resources;
  slivers: number;
}

/** The table of tombstones (keyed by slice URN). */
export const TOMBSTONE_TABLE = 'slice-tombstones';

/**
 * What a Delete of a whole slice by its slice authority leaves (table `slice-tombstones`, keyed by
 * slice URN): Allocates and Provisions of the slice that arrived before it are refused with it.
 */
export interface TombstoneRecord {
  readonly sliceUrn: string;
  /** The slice authority whose Delete it was: only its calls are fenced. */
  readonly sliceAuthorityUrn: string;
  /** When the Delete was committed (ms, MA clock); swept a retention period later. */
  readonly deletedAt: number;
}

/** A tombstone in memory: its record, and the arrival number of its Delete in this process (0: an earlier process). */
export interface Tombstone {
  readonly record: TombstoneRecord;
  readonly arrival: number;
}

/** Whether a sliver counts against its node's capacity (anything but swapped out). */
export function counts(s: SliverRecord): boolean {
  return s.allocation !== 'unallocated';
}

/** The aggregate's slices, slivers and intents, and what they commit. */
export class SliceLedger {
  readonly slices = new Map<string, SliceRecord>();
  readonly slivers = new Map<string, SliverRecord>();
  readonly intents = new Map<string, IntentRecord>();
  /** Tombstones of slices deleted by their authority, by slice URN. */
  readonly tombstones = new Map<string, Tombstone>();
  /** Slivers that are ALLOCATED (holding capacity until their hold ends). */
  readonly holds = new Set<string>();
  private readonly bySlice = new Map<string, Set<string>>();
  private readonly nodes = new Map<string, NodeUse>();
  private readonly authorities = new Map<string, AuthorityUse>();
  readonly sliceTable: Table<SliceRecord>;
  readonly sliverTable: Table<SliverRecord>;
  readonly intentTable: Table<IntentRecord>;
  readonly allocationTable: Table<AllocateRequestRecord>;
  readonly tombstoneTable: Table<TombstoneRecord>;

  constructor(readonly store: Store) {
    this.sliceTable = store.table<SliceRecord>(TABLES.slices);
    this.sliverTable = store.table<SliverRecord>(TABLES.slivers);
    this.intentTable = store.table<IntentRecord>(TABLES.intents);
    this.allocationTable = store.table<AllocateRequestRecord>(TABLES.allocations);
    this.tombstoneTable = store.table<TombstoneRecord>(TOMBSTONE_TABLE);
  }

  /** Loads everything from the store. */
  async load(): Promise<void> {
    for await (const [, s] of this.sliceTable.entries()) this.slices.set(s.urn, s);
    for await (const [, s] of this.sliverTable.entries()) this.setSliver(s);
    for await (const [, i] of this.intentTable.entries()) this.intents.set(i.id, i);
    for await (const [, t] of this.tombstoneTable.entries()) this.tombstones.set(t.sliceUrn, { record: t, arrival: 0 });
  }

  /** A new transaction. */
  tx(): SliceLedgerTx {
    return new SliceLedgerTx(this);
  }

  /** The slivers of a slice, in URN order. */
  sliversOf(sliceUrn: string): SliverRecord[] {
    const urns = [...(this.bySlice.get(sliceUrn) ?? [])].sort();
    return urns.map((u) => this.slivers.get(u) as SliverRecord);
  }

  /** What is committed on a node. */
  use(nodeUrn: string): NodeUse {
    let u = this.nodes.get(nodeUrn);
    if (!u) {
      u = { committed: ZERO, slivers: 0, slices: new Map(), exclusive: new Map() };
      this.nodes.set(nodeUrn, u);
    }
    return u;
  }

  /** What a slice authority holds here. */
  authorityUse(saUrn: string): AuthorityUse {
    return this.authorities.get(saUrn) ?? { committed: ZERO, slivers: 0 };
  }

  /** The slice holding a node exclusively, if any. */
  exclusiveHolder(nodeUrn: string): string | undefined {
    const u = this.nodes.get(nodeUrn);
    if (!u) return undefined;
    for (const [slice, n] of u.exclusive) if (n > 0) return slice;
    return undefined;
  }

  private account(s: SliverRecord, sign: 1 | -1): void {
    if (!counts(s)) return;
    const u = this.use(s.nodeUrn);
    u.committed = addResources(u.committed, s.resources, sign);
    u.slivers += sign;
    bump(u.slices, s.sliceUrn, sign);
    if (s.exclusive) bump(u.exclusive, s.sliceUrn, sign);
    const sa = this.slices.get(s.sliceUrn)?.sliceAuthorityUrn;
    if (sa) {
      const a = this.authorities.get(sa) ?? { committed: ZERO, slivers: 0 };
      a.committed = addResources(a.committed, s.resources, sign);
      a.slivers += sign;
      this.authorities.set(sa, a);
    }
  }

  /** @internal Installs a sliver record in memory. */
  setSliver(s: SliverRecord): void {
    const old = this.slivers.get(s.urn);
    if (old) this.account(old, -1);
    this.slivers.set(s.urn, s);
    if (s.allocation === 'allocated') this.holds.add(s.urn);
    else this.holds.delete(s.urn);
    let set = this.bySlice.get(s.sliceUrn);
    if (!set) {
      set = new Set();
      this.bySlice.set(s.sliceUrn, set);
    }
    set.add(s.urn);
    this.account(s, 1);
  }

  /** @internal Removes a sliver record from memory. */
  dropSliver(urn: string): void {
    const old = this.slivers.get(urn);
    if (!old) return;
    this.account(old, -1);
    this.slivers.delete(urn);
    this.holds.delete(urn);
    const set = this.bySlice.get(old.sliceUrn);
    set?.delete(urn);
    if (set && set.size === 0) this.bySlice.delete(old.sliceUrn);
  }
}

function bump(m: Map<string, number>, k: string, by: number): void {
  const v = (m.get(k) ?? 0) + by;
  if (v <= 0) m.delete(k);
  else m.set(k, v);
}

/** One atomic change of the ledger. */
export class SliceLedgerTx {
  private readonly batch;
  private readonly apply: (() => void)[] = [];

  constructor(private readonly ledger: SliceLedger) {
    this.batch = ledger.store.batch();
  }

  putSlice(s: SliceRecord): this {
    this.batch.put(this.ledger.sliceTable, s.urn, s);
    this.apply.push(() => this.ledger.slices.set(s.urn, s));
    return this;
  }

  delSlice(urn: string): this {
    this.batch.del(this.ledger.sliceTable, urn);
    this.apply.push(() => this.ledger.slices.delete(urn));
    return this;
  }

  putSliver(s: SliverRecord): this {
    this.batch.put(this.ledger.sliverTable, s.urn, s);
    this.apply.push(() => this.ledger.setSliver(s));
    return this;
  }

  delSliver(urn: string): this {
    this.batch.del(this.ledger.sliverTable, urn);
    this.apply.push(() => this.ledger.dropSliver(urn));
    return this;
  }

  putIntent(i: IntentRecord): this {
    this.batch.put(this.ledger.intentTable, i.id, i);
    this.apply.push(() => this.ledger.intents.set(i.id, i));
    return this;
  }

  delIntent(id: string): this {
    this.batch.del(this.ledger.intentTable, id);
    this.apply.push(() => this.ledger.intents.delete(id));
    return this;
  }

  putAllocation(key: string, rec: AllocateRequestRecord): this {
    this.batch.put(this.ledger.allocationTable, key, rec);
    return this;
  }

  delAllocation(key: string): this {
    this.batch.del(this.ledger.allocationTable, key);
    return this;
  }

  /** Puts a tombstone; `arrival` is the arrival number of the Delete that leaves it. */
  putTombstone(t: TombstoneRecord, arrival: number): this {
    this.batch.put(this.ledger.tombstoneTable, t.sliceUrn, t);
    this.apply.push(() => this.ledger.tombstones.set(t.sliceUrn, { record: t, arrival }));
    return this;
  }

  delTombstone(sliceUrn: string): this {
    this.batch.del(this.ledger.tombstoneTable, sliceUrn);
    this.apply.push(() => this.ledger.tombstones.delete(sliceUrn));
    return this;
  }

  get empty(): boolean {
    return this.batch.length === 0;
  }

  /**
   * Writes the batch (synced: holds and intents must survive a crash), then updates memory. With
   * the call's `signal`, a call that has ended is not committed (DEADLINE_EXCEEDED, nothing changed).
   */
  async commit(options: Pick<WriteOptions, 'signal'> = {}): Promise<void> {
    if (this.batch.length > 0) await this.batch.write({ sync: true, ...(options.signal ? { signal: options.signal } : {}) });
    for (const f of this.apply) f();
  }
}
