/**
 * The typed views of a store: a {@link Table} per record type and a
 * {@link Batch} that writes puts and deletes over several tables as one
 * atomic LevelDB write. Both go through the store's fail-safe write queue.
 */
import type { Level } from 'level';

/** Options for a write. `sync: true` waits for the OS to flush (use for intents and money-like records). */
export interface WriteOptions {
  readonly sync?: boolean;
  /**
   * The signal of the call the write belongs to (`ctx.signal`): once it has aborted — the call's
   * deadline passed, the caller cancelled, the server is stopping — the write is not committed and
   * rejects with DeadlineExceededError. Checked when queued and again just before LevelDB writes it.
   */
  readonly signal?: AbortSignal;
}

/** A key range for {@link Table.entries}. Keys sort as UTF-8 strings. */
export interface RangeQuery {
  readonly gt?: string;
  readonly gte?: string;
  readonly lt?: string;
  readonly lte?: string;
  /** Only keys that start with this (combined with the bounds above). */
  readonly prefix?: string;
  readonly limit?: number;
  readonly reverse?: boolean;
}

/** One put or delete, by table name (bound to the open handle only when written). */
export interface Op {
  readonly type: 'put' | 'del';
  readonly table: string;
  readonly key: string;
  readonly value?: unknown;
}

/** What tables and batches need of their store. */
export interface StoreAccess {
  /** Queues `ops` as one atomic write. */
  write(ops: readonly Op[], options: WriteOptions): Promise<void>;
  /** The sublevel of `table` on the current handle, once any reopen is done. */
  readHandle(table: string): Promise<Sublevel>;
}

/** A table's sublevel, as LevelDB gives it. */
export type Sublevel = ReturnType<Level<string, unknown>['sublevel']>;

/** One typed record type in a store. */
export class Table<V> {
  constructor(
    readonly name: string,
    private readonly store: StoreAccess,
  ) {}

  async get(key: string): Promise<V | undefined> {
    return (await (await this.store.readHandle(this.name)).get(key)) as V | undefined;
  }

  /** Reads several keys at once; missing keys give `undefined`. */
  async getMany(keys: readonly string[]): Promise<(V | undefined)[]> {
    if (keys.length === 0) return [];
    return (await (await this.store.readHandle(this.name)).getMany([...keys])) as (V | undefined)[];
  }

  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  async put(key: string, value: V, options: WriteOptions = {}): Promise<void> {
    await this.store.write([{ type: 'put', table: this.name, key, value }], options);
  }

  async del(key: string, options: WriteOptions = {}): Promise<void> {
    await this.store.write([{ type: 'del', table: this.name, key }], options);
  }

  /** Iterates `[key, value]` pairs in key order. */
  async *entries(query: RangeQuery = {}): AsyncGenerator<[string, V]> {
    const opts: Record<string, unknown> = {};
    if (query.prefix !== undefined) {
      opts.gte = query.prefix;
      // U+FFFF sorts after every character that can appear in our keys.
      opts.lt = `${query.prefix}\uffff`;
    }
    for (const k of ['gt', 'gte', 'lt', 'lte'] as const) if (query[k] !== undefined) opts[k] = query[k];
    if (query.limit !== undefined) opts.limit = query.limit;
    if (query.reverse) opts.reverse = true;
    const sub = await this.store.readHandle(this.name);
    for await (const [k, v] of sub.iterator(opts) as AsyncIterable<[string, unknown]>) yield [k, v as V];
  }

  /** Collects every value of a range (use only on bounded ranges). */
  async values(query: RangeQuery = {}): Promise<V[]> {
    const out: V[] = [];
    for await (const [, v] of this.entries(query)) out.push(v);
    return out;
  }

  /** Counts the records of a range. */
  async count(query: RangeQuery = {}): Promise<number> {
    let n = 0;
    for await (const _ of this.entries(query)) n++;
    return n;
  }
}

/** Collects puts and deletes over any tables of one store and writes them as one atomic LevelDB batch. */
export class Batch {
  private readonly ops: Op[] = [];

  constructor(private readonly store: StoreAccess) {}

  put<V>(table: Table<V>, key: string, value: V): this {
    this.ops.push({ type: 'put', table: table.name, key, value });
    return this;
  }

  del<V>(table: Table<V>, key: string): this {
    this.ops.push({ type: 'del', table: table.name, key });
    return this;
  }

  get length(): number {
    return this.ops.length;
  }

  /** Writes every collected operation, all or nothing. */
  async write(options: WriteOptions = {}): Promise<void> {
    if (this.ops.length === 0) return;
    await this.store.write(this.ops, options);
  }
}
