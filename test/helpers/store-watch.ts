// What a test needs to show that a call changed nothing in a server's store: a dump of the store (every
// key and value, tables left out on request), the difference of two dumps,
// and a watch over several stores that learns which tables the servers' own timers write while nobody
// calls them (heartbeats, sweeps) and says when a store has been quiet for a while.
import type { Store } from '../../services/core/store/store.js';
import { sleep } from '../../services/core/timing.js';

/** A store's content: raw key → raw value (both as text). */
export type StoreDump = ReadonlyMap<string, string>;

/** Key ranges of the root database that leave out the `ignored` tables (a table's keys are `!<table>!...`). */
function rangesWithout(ignored: ReadonlySet<string>): { gte?: string; lt?: string }[] {
  const ranges: { gte?: string; lt?: string }[] = [];
  let from: string | undefined;
  for (const table of [...ignored].sort()) {
    // '"' follows '!': `!<table>"` is just past every key of the table.
    ranges.push({ ...(from !== undefined ? { gte: from } : {}), lt: `!${table}!` });
    from = `!${table}"`;
  }
  ranges.push(from !== undefined ? { gte: from } : {});
  return ranges;
}

/**
 * Every key and value of `store` but those of the `ignored` tables, read straight from its root database
 * (an append-only table such as the audit log would otherwise make each dump slower than the last).
 */
export async function dumpStore(store: Store, ignored: ReadonlySet<string> = new Set()): Promise<StoreDump> {
  const out = new Map<string, string>();
  const db = (await store.readHandle('store-probe')).db;
  for (const range of rangesWithout(ignored)) {
    for await (const [k, v] of db.iterator({ ...range, keyEncoding: 'utf8', valueEncoding: 'utf8' }) as AsyncIterable<[string, string]>) {
      out.set(k, v);
    }
  }
  return out;
}

/** The keys that differ between two dumps (`+` added, `-` removed, `~` changed). */
export function dumpDifference(before: StoreDump, after: StoreDump): string[] {
  const out: string[] = [];
  for (const [k, v] of after) {
    const was = before.get(k);
    if (was === undefined) out.push(`+${k}`);
    else if (was !== v) out.push(`~${k}`);
  }
  for (const k of before.keys()) if (!after.has(k)) out.push(`-${k}`);
  return out;
}

/** Watches the stores of several servers. */
export class StoreWatch {
  /** Tables the servers write on their own (learnt while idle): not compared. */
  readonly background = new Set<string>();
  private readonly lastWriteAt = new Map<Store, number>();
  private readonly stops: (() => void)[] = [];

  constructor(stores: readonly Store[]) {
    for (const s of stores) {
      this.stops.push(
        s.onWrite((ops) => {
          if (ops.some((op) => !this.background.has(op.table))) this.lastWriteAt.set(s, Date.now());
        }),
      );
    }
  }

  /** Watches for `ms` while nobody calls: every table written meanwhile is the servers' own. */
  async learnBackground(stores: readonly Store[], ms: number): Promise<void> {
    const stops = stores.map((s) => s.onWrite((ops) => ops.forEach((op) => this.background.add(op.table))));
    await sleep(ms);
    for (const stop of stops) stop();
  }

  /** When a store (or, without one, any store) last wrote outside the background tables (ms since the epoch). */
  lastWrite(store?: Store): number {
    return store ? (this.lastWriteAt.get(store) ?? 0) : Math.max(0, ...this.lastWriteAt.values());
  }

  /**
   * Waits until `store` (without one: every store) has not written outside the background tables for
   * `quietMs`; false if that took longer than `maxMs`.
   */
  async quiet(store: Store | undefined, quietMs: number, maxMs: number): Promise<boolean> {
    const until = Date.now() + maxMs;
    while (Date.now() - this.lastWrite(store) < quietMs) {
      if (Date.now() > until) return false;
      await sleep(5);
    }
    return true;
  }

  close(): void {
    for (const stop of this.stops.splice(0)) stop();
  }
}
