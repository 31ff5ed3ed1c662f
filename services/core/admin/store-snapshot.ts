/**
 * Reading a running service's store as of one moment: an explicit LevelDB
 * snapshot is taken first, then every range asked for (the whole store, or
 * one range per table) is iterated over that same snapshot, in key order, as
 * raw bytes. Writes that land meanwhile are not seen, so what comes out is
 * exactly the store as it was when the snapshot was taken — also across
 * tables, which is what makes a backup consistent without stopping the
 * service. Entries come in runs, for the caller to send as they come.
 */
import { DeadlineExceededError, InvalidArgumentError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { RawEntry } from './snapshot-digest.js';

/** Largest run of entries handed out at once (bytes of keys and values). */
const RUN_BYTES = 256 * 1024;
/** Most entries in one run. */
const RUN_ENTRIES = 1000;

/** A table's sublevel keys start with `!<table>!` ('!' sorts before every table name character). */
export function tableRange(table: string): { gte: Buffer; lt: Buffer } {
  if (!/^[a-z][a-z0-9_-]*$/.test(table))
    throw new InvalidArgumentError(`table name ${JSON.stringify(table.slice(0, 80))} must be lower-case letters, digits, _ or -`, {
      field: 'tables',
    });
  // '"' is the character after '!': every key of the table sorts below `!<table>"`.
  return { gte: Buffer.from(`!${table}!`), lt: Buffer.from(`!${table}"`) };
}

/** The table a raw key belongs to (the sublevel name between the first two '!'), or undefined for a key outside any table. */
export function tableOfKey(key: Buffer): { table: string; key: string } | undefined {
  const text = key.toString('utf8');
  const m = /^!([a-z][a-z0-9_-]*)!(.*)$/s.exec(text);
  return m ? { table: m[1] as string, key: m[2] as string } : undefined;
}

/** The root database under a store's tables (the store keeps it to itself; its sublevels name it). */
async function rootOf(store: Store) {
  return (await store.readHandle('store-probe')).db;
}

/** An open snapshot of a store: read it with {@link StoreSnapshot.runs}, then close it. */
export interface StoreSnapshot {
  /** When the snapshot was taken (ms since the epoch). */
  readonly takenAt: number;
  /**
   * Yields the entries as of the snapshot, in runs: the whole store when `tables` is empty, else the
   * named tables in the order given. Throws DeadlineExceededError when `signal` aborts.
   */
  runs(tables: readonly string[], signal?: AbortSignal): AsyncGenerator<RawEntry[]>;
  /** Releases the snapshot. Safe to call twice. */
  close(): Promise<void>;
}

/** Takes a snapshot of the store now. */
export async function openStoreSnapshot(store: Store): Promise<StoreSnapshot> {
  const db = await rootOf(store);
  const snapshot = db.snapshot();
  const takenAt = Date.now();
  let closed = false;
  return {
    takenAt,
    async *runs(tables, signal) {
      const ranges = tables.length === 0 ? [{}] : [...new Set(tables)].map(tableRange);
      let run: RawEntry[] = [];
      let bytes = 0;
      for (const range of ranges) {
        const it = db.iterator({ ...range, snapshot, keyEncoding: 'buffer', valueEncoding: 'buffer' });
        try {
          for await (const [key, value] of it as AsyncIterable<[Buffer, Buffer]>) {
            if (signal?.aborted)
              throw new DeadlineExceededError('the call ended (cancelled, or its deadline passed) before the whole snapshot was sent');
            run.push({ key, value });
            bytes += key.length + value.length;
            if (bytes >= RUN_BYTES || run.length >= RUN_ENTRIES) {
              yield run;
              run = [];
              bytes = 0;
            }
          }
        } finally {
          await it.close();
        }
      }
      if (run.length > 0) yield run;
    },
    async close() {
      if (closed) return;
      closed = true;
      await snapshot.close();
    },
  };
}
