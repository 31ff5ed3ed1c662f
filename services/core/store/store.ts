/**
 * Each service's state in its own LevelDB: one sublevel per record type
 * ("table"), JSON values, and atomic batches that span tables. LevelDB applies
 * a write batch all or nothing, also across a crash, so a change that spans
 * records goes through {@link Store.batch}.
 *
 * The store fails safe. LevelDB's log writer advances its block offset even
 * when an append fails (a full disk), so every record written after a failed
 * one on the same handle is framed wrongly and silently dropped at the next
 * open — acknowledged writes lost. So after the first write error this store
 * attempts no further write on that handle: writes are refused with
 * UNAVAILABLE naming the store and the cause, reads go on, and a recovery loop
 * reopens the database (which replays the intact log and starts a fresh one)
 * and resumes writing once a synced probe write succeeds.
 *
 * Writes go through one queue: while one LevelDB write is in flight, the next
 * ones wait and are then written together as one batch (group commit at our
 * layer). That keeps throughput, and it guarantees that no write is already
 * queued inside LevelDB behind a failing one.
 */
import { mkdirSync } from 'node:fs';
import { open as openFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { DeadlineExceededError, FailedPreconditionError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';

import { Batch, Table, type Op, type StoreAccess, type Sublevel, type WriteOptions } from './table.js';

type Db = Level<string, unknown>;
type Sub = Sublevel;

export { Batch, Table, type Op, type RangeQuery, type WriteOptions } from './table.js';

/** A write waiting in the queue. */
interface Pending {
  readonly ops: readonly Op[];
  readonly sync: boolean;
  readonly signal: AbortSignal | undefined;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** How a store behaves after a write error. */
export interface StoreOptions {
  /** Transitions (failed, reopened, recovered) are logged here. */
  readonly log?: Logger;
  /** First wait before a recovery attempt; doubles up to `maxRetryMs`. Default 500 ms. */
  readonly retryMs?: number;
  /** Longest wait between recovery attempts. Default 10 s. */
  readonly maxRetryMs?: number;
}

/** One operation of a LevelDB write, as {@link Store.onWrite} reports it. */
export interface WrittenOp {
  readonly type: 'put' | 'del';
  readonly table: string;
  readonly key: string;
}

/** A put a {@link WriteDecorator} adds to a write. */
export interface WrittenExtra {
  readonly table: string;
  readonly key: string;
  readonly value: unknown;
}

/**
 * Adds puts to writes just before they go to LevelDB, in the same atomic batch and in write order
 * (the audit log adds its record to the write of the call it audits).
 */
export interface WriteDecorator {
  /** The puts to add to one queued write, by the signal it was written with. */
  extras(signal: AbortSignal | undefined): readonly WrittenExtra[];
  /** Told whether the group those puts went into was written. */
  settle(written: boolean): void;
}

/** Why writes are refused, and since when. */
export interface StoreFailure {
  readonly cause: string;
  readonly since: number;
}

const PROBE_TABLE = 'store-probe';

/** The refusal of a write whose call ended before it was committed. */
function lateWrite(): DeadlineExceededError {
  return new DeadlineExceededError(
    'the call ended (its deadline passed or it was cancelled) before its change was committed; nothing was changed — try again with a longer deadline',
  );
}

/** What a failed LevelDB call says, in words an operator acts on. */
function causeOf(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  const text = [e?.message, e?.cause?.message].filter(Boolean).join(': ') || String(err);
  if (/No space left on device|ENOSPC/i.test(text)) return `disk full (${text})`;
  if (/Read-only file system|EROFS/i.test(text)) return `read-only file system (${text})`;
  return `I/O error (${text})`;
}

/** A service's LevelDB. Only one process may open a data directory at a time. */
export class Store implements StoreAccess {
  private readonly tables = new Map<string, Table<unknown>>();
  private subs = new Map<string, Sub>();
  private queue: Pending[] = [];
  private writing = false;
  private failed: StoreFailure | undefined;
  /** Set while the handle is being replaced; reads wait for it. */
  private reopening: Promise<void> | undefined;
  private recoveryTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private readonly writeObservers = new Set<(ops: readonly WrittenOp[]) => void>();
  private decorator: WriteDecorator | undefined;

  private constructor(
    readonly dir: string,
    private db: Db,
    private readonly options: StoreOptions,
  ) {}

  /** Opens (creating if needed) the store in `dir`; fails clearly if another process holds it. */
  static async open(dir: string, options: StoreOptions = {}): Promise<Store> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new Store(dir, await Store.openDb(dir), options);
  }

  private static async openDb(dir: string): Promise<Db> {
    const db: Db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED' || /lock/i.test(cause?.message ?? '')) {
        throw new FailedPreconditionError(
          `the store at ${dir} is in use by another process; stop it or choose another data directory`,
          {},
          { cause: err },
        );
      }
      throw new FailedPreconditionError(`cannot open the store at ${dir}: ${cause?.message ?? (err as Error).message}`, {}, { cause: err });
    }
    return db;
  }

  /** The table (sublevel) for one record type; the same name always gives the same table. */
  table<V>(name: string): Table<V> {
    if (!/^[a-z][a-z0-9_-]*$/.test(name))
      throw new TypeError(`table name ${JSON.stringify(name)} must be lower-case letters, digits, _ or -`);
    let t = this.tables.get(name);
    if (!t) {
      t = new Table<unknown>(name, this);
      this.tables.set(name, t);
    }
    return t as Table<V>;
  }

  /** A new atomic batch over this store's tables. */
  batch(): Batch {
    return new Batch(this);
  }

  get isOpen(): boolean {
    return !this.closing && (this.db.status === 'open' || this.reopening !== undefined);
  }

  /** Why writes are refused now, or undefined while the store accepts them. */
  get failure(): StoreFailure | undefined {
    return this.failed;
  }

  /**
   * Calls `observe` with the operations of every LevelDB write from now on
   * (one call per atomic write); returns the function that stops it. For tests
   * that check what went into one batch.
   */
  onWrite(observe: (ops: readonly WrittenOp[]) => void): () => void {
    this.writeObservers.add(observe);
    return () => this.writeObservers.delete(observe);
  }

  /** Installs the decorator that adds puts to every write (one per store: the audit log). */
  setWriteDecorator(decorator: WriteDecorator): void {
    this.decorator = decorator;
  }

  /** @internal A write of nothing but what the decorator adds for `signal` (an audit record of its own). */
  writeExtrasOnly(signal: AbortSignal): Promise<void> {
    return this.write([], { signal });
  }

  /** @internal The sublevel of `table` on the current handle, once any reopen is done. */
  async readHandle(table: string): Promise<Sub> {
    if (this.reopening) await this.reopening;
    return this.sub(table);
  }

  private sub(table: string): Sub {
    let s = this.subs.get(table);
    if (!s) {
      s = this.db.sublevel<string, unknown>(table, { valueEncoding: 'json' }) as unknown as Sub;
      this.subs.set(table, s);
    }
    return s;
  }

  private refusal(): UnavailableError {
    const f = this.failed as StoreFailure;
    return new UnavailableError(
      `the store at ${this.dir} refuses writes since ${new Date(f.since).toISOString()}: ${f.cause}; nothing was changed — the service resumes by itself once the store is writable again (free disk space), so try again later`,
      { store: this.dir },
    );
  }

  /** @internal Queues `ops` as one atomic write; resolves once it is on disk (or in the OS, without sync). */
  write(ops: readonly Op[], options: WriteOptions): Promise<void> {
    if (this.closing) return Promise.reject(new UnavailableError(`the store at ${this.dir} is closed; the service is stopping`));
    if (this.failed) return Promise.reject(this.refusal());
    if (options.signal?.aborted) return Promise.reject(lateWrite());
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, sync: options.sync ?? false, signal: options.signal, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /** Writes what is queued, as one batch at a time, until the queue is empty or the store fails. */
  private async drain(): Promise<void> {
    this.writing = true;
    // The first batch waits for the I/O already read to be handled: a cancellation that came in the same
    // read as its call (a client that gave up while this process was stopped) has then aborted the call's
    // signal, and its write is not committed — whether or not the handler awaited anything before writing.
    // It also gathers the writes of this turn into one batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.queue.length > 0) {
        // A call that ended while its write waited is not committed (fencing: no stale call lands).
        const group: Pending[] = [];
        for (const p of this.queue) {
          if (p.signal?.aborted) p.reject(lateWrite());
          else group.push(p);
        }
        this.queue = [];
        if (group.length === 0) continue;
        if (this.failed) {
          for (const p of group) p.reject(this.refusal());
          continue;
        }
        const extras = this.decorator ? group.map((p) => this.decorator?.extras(p.signal) ?? []) : [];
        const ops = group.flatMap((p, i) => [
          ...p.ops.map((op) => ({ type: op.type, key: op.key, value: op.value, sublevel: this.sub(op.table) })),
          ...(extras[i] ?? []).map((x) => ({ type: 'put', key: x.key, value: x.value, sublevel: this.sub(x.table) })),
        ]);
        try {
          if (ops.length > 0) await this.db.batch(ops as never, { sync: group.some((p) => p.sync) } as never);
          this.decorator?.settle(true);
        } catch (err) {
          this.decorator?.settle(false);
          this.fail(err);
          // The writes of this group were not acknowledged; each learns why.
          const refusal = this.refusal();
          for (const p of group) p.reject(refusal);
          continue;
        }
        if (this.writeObservers.size > 0) {
          const written = group.flatMap((p, i) => [
            ...p.ops.map(({ type, table, key }) => ({ type, table, key })),
            ...(extras[i] ?? []).map(({ table, key }) => ({ type: 'put' as const, table, key })),
          ]);
          for (const observe of this.writeObservers) observe(written);
        }
        for (const p of group) p.resolve();
      }
    } finally {
      this.writing = false;
    }
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = { cause: causeOf(err), since: Date.now() };
    this.options.log?.error(
      { store: this.dir, cause: this.failed.cause },
      'store write failed; refusing writes until the store is reopened and a probe write succeeds',
    );
    this.scheduleRecovery(this.options.retryMs ?? 500);
  }

  private scheduleRecovery(waitMs: number): void {
    if (this.closing) return;
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = undefined;
      void this.recover(waitMs);
    }, waitMs);
    this.recoveryTimer.unref();
  }

  /** Reopens the database and probes it; on success writes resume, otherwise tries again later. */
  private async recover(lastWaitMs: number): Promise<void> {
    if (this.closing || !this.failed) return;
    // Keep the old handle (and reads) while the disk is plainly still not writable.
    const room = await this.hasRoom();
    if (room !== true) {
      this.options.log?.warn({ store: this.dir, cause: causeOf(room) }, 'store still not writable; will try again');
      this.scheduleRecovery(Math.min(lastWaitMs * 2, this.options.maxRetryMs ?? 10_000));
      return;
    }
    let done!: () => void;
    this.reopening = new Promise<void>((r) => (done = r));
    try {
      await this.db.close().catch(() => undefined);
      this.subs = new Map();
      this.db = await Store.openDb(this.dir);
      await this.db
        .sublevel<string, unknown>(PROBE_TABLE, { valueEncoding: 'json' })
        .put('probe', { at: Date.now() }, { sync: true } as never);
      const was = this.failed;
      this.failed = undefined;
      this.options.log?.warn(
        { store: this.dir, failedSince: new Date(was.since).toISOString() },
        'store reopened and a probe write succeeded; writes resume',
      );
    } catch (err) {
      const cause = causeOf(err);
      this.options.log?.warn({ store: this.dir, cause }, 'store still not writable; will try again');
      const next = Math.min(lastWaitMs * 2, this.options.maxRetryMs ?? 10_000);
      this.scheduleRecovery(next);
    } finally {
      this.reopening = undefined;
      done();
    }
  }

  /** Whether a synced 256 KiB file can be written beside the database (true), or the error. */
  private async hasRoom(): Promise<true | unknown> {
    const path = join(this.dir, 'write-probe.tmp');
    try {
      const file = await openFile(path, 'w', 0o600);
      try {
        await file.write(Buffer.alloc(256 * 1024));
        await file.sync();
      } finally {
        await file.close();
      }
      return true;
    } catch (err) {
      return err;
    } finally {
      await rm(path, { force: true }).catch(() => undefined);
    }
  }

  /** Closes the store; writes already queued are written first. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
    if (this.reopening) await this.reopening;
    while (this.writing) await new Promise((r) => setImmediate(r));
    if (this.db.status === 'closed') return;
    await this.db.close();
  }
}
