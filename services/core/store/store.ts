/**
 * Each service's state in its own LevelDB (DESIGN §6): one sublevel per record
 * type ("table"), JSON values, and atomic batches that span tables. LevelDB
 * applies a write batch all or nothing, also across a crash, so a change that
 * spans records goes through {@link Store.batch}.
 */
import { mkdirSync } from 'node:fs';
import { Level } from 'level';
import { FailedPreconditionError } from '../errors.js';

type Db = Level<string, unknown>;
type Sub = ReturnType<Db['sublevel']>;


/** Options for a write. `sync: true` waits for the OS to flush (use for intents and money-like records). */
export interface WriteOptions {
  readonly sync?: boolean;
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

/** One typed record type in a store. */
export class Table<V> {
  /** @internal */
  readonly sub: Sub;

  constructor(
    readonly name: string,
    sub: Sub,
  ) {
    this.sub = sub;
  }

  async get(key: string): Promise<V | undefined> {
    return (await this.sub.get(key)) as V | undefined;
  }

  /** Reads several keys at once; missing keys give `undefined`. */
  async getMany(keys: readonly string[]): Promise<(V | undefined)[]> {
    if (keys.length === 0) return [];
    return (await this.sub.getMany([...keys])) as (V | undefined)[];
  }

  async has(key: string): Promise<boolean> {
    return (await this.sub.get(key)) !== undefined;
  }

  async put(key: string, value: V, options: WriteOptions = {}): Promise<void> {
    await this.sub.put(key, value, { sync: options.sync ?? false } as never);
  }

  async del(key: string, options: WriteOptions = {}): Promise<void> {
    await this.sub.del(key, { sync: options.sync ?? false } as never);
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
    for await (const [k, v] of this.sub.iterator(opts) as AsyncIterable<[string, unknown]>) yield [k, v as V];
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
  private readonly ops: { type: 'put' | 'del'; key: string; value?: unknown; sublevel: Sub }[] = [];

  constructor(private readonly db: Db) {}

  put<V>(table: Table<V>, key: string, value: V): this {
    this.ops.push({ type: 'put', key, value, sublevel: table.sub });
    return this;
  }

  del<V>(table: Table<V>, key: string): this {
    this.ops.push({ type: 'del', key, sublevel: table.sub });
    return this;
  }

  get length(): number {
    return this.ops.length;
  }

  /** Writes every collected operation, all or nothing. */
  async write(options: WriteOptions = {}): Promise<void> {
    if (this.ops.length === 0) return;
    await this.db.batch(this.ops as never, { sync: options.sync ?? false } as never);
  }
}

/** A service's LevelDB. Only one process may open a data directory at a time. */
export class Store {
  private readonly tables = new Map<string, Table<unknown>>();

  private constructor(
    readonly dir: string,
    private readonly db: Db,
  ) {}

  /** Opens (creating if needed) the store in `dir`; fails clearly if another process holds it. */
  static async open(dir: string): Promise<Store> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db: Db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED' || /lock/i.test(cause?.message ?? '')) {
        throw new FailedPreconditionError(`the store at ${dir} is in use by another process; stop it or choose another data directory`, {}, { cause: err });
      }
      throw new FailedPreconditionError(`cannot open the store at ${dir}: ${cause?.message ?? (err as Error).message}`, {}, { cause: err });
    }
    return new Store(dir, db);
  }

  /** The table (sublevel) for one record type; the same name always gives the same table. */
  table<V>(name: string): Table<V> {
    if (!/^[a-z][a-z0-9_-]*$/.test(name)) throw new TypeError(`table name ${JSON.stringify(name)} must be lower-case letters, digits, _ or -`);
    let t = this.tables.get(name);
    if (!t) {
      t = new Table<unknown>(name, this.db.sublevel<string, unknown>(name, { valueEncoding: 'json' }) as unknown as Sub);
      this.tables.set(name, t);
    }
    return t as Table<V>;
  }

  /** A new atomic batch over this store's tables. */
  batch(): Batch {
    return new Batch(this.db);
  }

  get isOpen(): boolean {
    return this.db.status === 'open';
  }

  /** Closes the store; pending writes are flushed first. Safe to call twice. */
  async close(): Promise<void> {
    if (this.db.status === 'closed') return;
    await this.db.close();
  }
}
