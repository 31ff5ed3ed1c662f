/**
 * Every authority's audit log: each call that changes state, allowed or
 * refused, is appended as one record of a hash chain (audit-chain.ts) to the
 * append-only `audit` table. When the role writes its change with the call's
 * signal (`WriteOptions.signal`), the record goes into that same atomic batch
 * (outcome `committed`): the change and its record land together or not at
 * all. A call that wrote nothing (refused, or a replay) gets a record of its
 * own with its status code once it ends. Records older than the retention are
 * pruned; the anchor keeps the hash before the first record kept, so the rest
 * still verifies.
 */
import type { Logger } from '../log.js';
import type { Store, Table, WriteDecorator, WrittenExtra } from '../store/store.js';
import {
  auditKey,
  chainRecord,
  GENESIS,
  verifyChain,
  type AuditAnchor,
  type AuditEntry,
  type AuditRecord,
  type ChainCheck,
} from './audit-chain.js';

/** The audit tables. */
export const AUDIT_TABLE = 'audit';
export const AUDIT_META_TABLE = 'audit-meta';

/** A call being audited: its entry, and whether a write already carried its record. */
interface Open {
  entry: AuditEntry;
  recorded: boolean;
}

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  readonly now: () => number;
  readonly log: Logger;
  /** Records older than this are pruned by {@link AuditLog.prune}; 0 keeps everything. */
  readonly retentionMs: number;
}

/** The audit log of one service's store. */
export class AuditLog implements WriteDecorator {
  private readonly open = new WeakMap<AbortSignal, Open>();
  private head: { seq: number; hash: string };
  private tentative: { seq: number; hash: string };
  /** Calls whose record the group being written carries (reset if the write fails). */
  private inFlight: Open[] = [];
  private readonly table: Table<AuditRecord>;
  private readonly meta: Table<AuditAnchor>;

  private constructor(
    private readonly store: Store,
    private readonly options: AuditLogOptions,
    head: { seq: number; hash: string },
  ) {
    this.table = store.table<AuditRecord>(AUDIT_TABLE);
    this.meta = store.table<AuditAnchor>(AUDIT_META_TABLE);
    this.head = head;
    this.tentative = head;
  }

  /** Opens the log on `store` (reading its head) and attaches it to the store's writes. */
  static async open(store: Store, options: AuditLogOptions): Promise<AuditLog> {
    const table = store.table<AuditRecord>(AUDIT_TABLE);
    const anchor = await readAnchor(store);
    let head = { seq: anchor.seq, hash: anchor.prev };
    for await (const [, last] of table.entries({ reverse: true, limit: 1 })) head = { seq: last.seq + 1, hash: last.hash };
    const audit = new AuditLog(store, options, head);
    store.setWriteDecorator(audit);
    return audit;
  }

  /** Starts auditing the call whose signal is `signal`. */
  begin(signal: AbortSignal, entry: Omit<AuditEntry, 'time' | 'outcome' | 'rule'>): void {
    this.open.set(signal, { entry: { ...entry, time: this.options.now(), outcome: 'committed', rule: '' }, recorded: false });
  }

  /** Ends the call: if no write carried its record, appends one with its outcome. */
  async finish(signal: AbortSignal, outcome: string, rule = ''): Promise<void> {
    const call = this.open.get(signal);
    this.open.delete(signal);
    if (!call || call.recorded) return;
    // A key the store's writes never carry: this record stands alone.
    const own = new AbortController().signal;
    this.open.set(own, { entry: { ...call.entry, outcome, rule }, recorded: false });
    try {
      await this.store.writeExtrasOnly(own);
    } catch (err) {
      this.options.log.error({ err, method: call.entry.method, caller: call.entry.caller }, 'could not append to the audit log');
    } finally {
      this.open.delete(own);
    }
  }

  /** @internal Store hook: the audit record a write of `signal`'s call carries, if it has none yet. */
  extras(signal: AbortSignal | undefined): readonly WrittenExtra[] {
    const call = signal ? this.open.get(signal) : undefined;
    if (!call || call.recorded) return [];
    const record = chainRecord(call.entry, this.tentative.seq, this.tentative.hash);
    this.tentative = { seq: record.seq + 1, hash: record.hash };
    call.recorded = true;
    this.inFlight.push(call);
    return [{ table: AUDIT_TABLE, key: auditKey(record.seq), value: record }];
  }

  /** @internal Store hook: the group was written (or not). */
  settle(written: boolean): void {
    if (written) this.head = this.tentative;
    else {
      this.tentative = this.head;
      for (const call of this.inFlight) call.recorded = false;
    }
    this.inFlight = [];
  }

  /** The next sequence number and the hash it will link to. */
  get position(): { readonly seq: number; readonly hash: string } {
    return this.head;
  }

  /** Records in order, filtered; at most `limit`, after sequence `afterSeq`. */
  async list(filter: {
    afterSeq?: number;
    since?: number;
    until?: number;
    caller?: string;
    object?: string;
    method?: string;
    limit: number;
  }): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    const range = filter.afterSeq !== undefined ? { gt: auditKey(filter.afterSeq) } : {};
    for await (const [, r] of this.table.entries(range)) {
      if (filter.since !== undefined && r.time < filter.since) continue;
      if (filter.until !== undefined && r.time > filter.until) break;
      if (filter.caller && r.caller !== filter.caller) continue;
      if (filter.object && r.object !== filter.object) continue;
      if (filter.method && r.method !== filter.method) continue;
      out.push(r);
      if (out.length >= filter.limit) break;
    }
    return out;
  }

  /** Deletes records older than the retention, in one batch with the new anchor; returns how many. */
  async prune(): Promise<number> {
    if (this.options.retentionMs <= 0) return 0;
    const cutoff = this.options.now() - this.options.retentionMs;
    const batch = this.store.batch();
    let last: AuditRecord | undefined;
    for await (const [key, r] of this.table.entries({ limit: 10_000 })) {
      if (r.time >= cutoff) break;
      batch.del(this.table, key);
      last = r;
    }
    if (!last) return 0;
    batch.put(this.meta, 'anchor', { seq: last.seq + 1, prev: last.hash });
    await batch.write({ sync: true });
    this.options.log.info({ pruned: batch.length - 1, firstKept: last.seq + 1 }, 'audit records past their retention pruned');
    return batch.length - 1;
  }

  /** Walks the whole chain from its anchor. */
  async verify(): Promise<ChainCheck> {
    return verifyAuditStore(this.store);
  }
}

async function readAnchor(store: Store): Promise<AuditAnchor> {
  return (await store.table<AuditAnchor>(AUDIT_META_TABLE).get('anchor')) ?? { seq: 0, prev: GENESIS };
}

/** Verifies the audit chain of a store (the service may be stopped: `fedlab audit verify`). */
export async function verifyAuditStore(store: Store): Promise<ChainCheck> {
  return verifyChain(store.table<unknown>(AUDIT_TABLE).entries(), await readAnchor(store));
}
