/**
 * Revocation lists kept in a service's LevelDB: the service's own list (it
 * revokes with its key) and the lists it imported from peers. Two tables:
 * `revocation-lists` (one record per issuer key: URN, key, version) and
 * `revocation-entries` (one record per entry, keyed `<issuer kid>/<jti or kid>`),
 * changed together in one atomic batch. Everything is also held in a
 * {@link RevocationSet} so the verifier reads it synchronously. An imported
 * list keeps its `iat` / `next_update` (the verifier fails closed past them);
 * a re-publication of the same version only moves them on. Signed deltas
 * (revocation-delta.ts) are applied in place, entry by entry. Each entry
 * remembers the version that added it (field `v` on disk), so the issuer can
 * say what changed since a version; entries whose credential expired are
 * dropped by {@link RevocationStore.compact} in bounded batches.
 */
import type { KeyObject } from 'node:crypto';
import type { Batch, Store, Table } from '../store/store.js';
import type { ChainCache } from './cache.js';
import { thumbprintOf, toPublicJwk, type PublicJwk } from './keys.js';
import {
  checkRevocationEntry,
  checkRevocationList,
  emptyRevocationList,
  isExpiredEntry,
  isFresherList,
  signRevocationList,
  withRevocation,
  RevocationSet,
  type RevocationEntry,
  type RevocationIndex,
  type RevocationList,
  type RevocationLookup,
  type RevocationSetOptions,
  type RevocationValidity,
} from './revocation.js';
import { applyRevocationDelta, type RevocationUpdate } from './revocation-delta.js';

interface ListRecord {
  readonly iss?: string;
  readonly jwk: PublicJwk;
  readonly kid: string;
  readonly version: number;
  readonly iat?: number;
  readonly next_update?: number;
}

/** An entry as stored: with the version that added it (absent on entries stored before versions). */
type StoredEntry = RevocationEntry & { readonly v?: number };

/** An entry with the version that added it. */
export interface VersionedEntry {
  readonly entry: RevocationEntry;
  readonly v: number;
}

/** What {@link RevocationStore.importUpdate} did. */
export type ImportOutcome = 'installed' | 'current' | 'gap';

function recordOf(list: RevocationList): ListRecord {
  return {
    ...(list.iss !== undefined ? { iss: list.iss } : {}),
    jwk: list.jwk,
    kid: list.kid,
    version: list.version,
    ...(list.iat !== undefined ? { iat: list.iat, next_update: list.next_update } : {}),
  };
}

/** Table names used in the store. */
export const REVOCATION_TABLES = { lists: 'revocation-lists', entries: 'revocation-entries' } as const;

/** The key of an entry within its issuer's list (`jti:<id>` or `kid:<thumbprint>`). */
export function entryId(e: { readonly jti?: string | undefined; readonly kid?: string | undefined }): string {
  return e.jti !== undefined ? `jti:${e.jti}` : `kid:${e.kid}`;
}

function entryKey(issuerKid: string, e: RevocationEntry): string {
  return `${issuerKid}/${entryId(e)}`;
}

function stored(e: RevocationEntry, v: number): StoredEntry {
  return { ...e, v };
}

/** Persistent revocation lists of one service. */
export class RevocationStore implements RevocationLookup {
  private readonly lists: Table<ListRecord>;
  private readonly entries: Table<StoredEntry>;
  /** Per issuer key: entry id → the version that added it. */
  private readonly versions = new Map<string, Map<string, number>>();
  /** The in-memory view the verifier reads. */
  readonly set: RevocationSet;
  // One change at a time per store, so versions never race.
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    /** The store the lists live in (others may batch their own records with a revocation, see {@link revoke}). */
    readonly store: Store,
    set: RevocationSet,
  ) {
    this.lists = store.table<ListRecord>(REVOCATION_TABLES.lists);
    this.entries = store.table<StoredEntry>(REVOCATION_TABLES.entries);
    this.set = set;
  }

  /**
   * Loads every list from `store`. Newly revoked items clear `cache` (the process-wide cache by
   * default); `graceS` is how long past a held list's `next_update` its issuer's chains still pass.
   */
  static async open(
    store: Store,
    options: { readonly cache?: ChainCache | null; readonly graceS?: number } = {},
  ): Promise<RevocationStore> {
    const setOptions: RevocationSetOptions = {
      ...(options.cache !== undefined ? { cache: options.cache } : {}),
      ...(options.graceS !== undefined ? { graceS: options.graceS } : {}),
    };
    const rs = new RevocationStore(store, new RevocationSet(setOptions));
    for await (const [kid, rec] of rs.lists.entries()) {
      const rows = await rs.entries.values({ prefix: `${kid}/` });
      const versions = new Map<string, number>();
      const entries: RevocationEntry[] = [];
      // Entries from before versions were kept get distinct ones in load order: every receiver is sent
      // a snapshot after a restart, so only versions given out by this process name deltas.
      let legacy = 0;
      for (const row of rows) {
        const { v, ...entry } = row;
        const e = checkRevocationEntry(entry);
        entries.push(e);
        versions.set(entryId(e), v ?? Math.min(++legacy, rec.version));
      }
      rs.versions.set(kid, versions);
      rs.set.put(checkRevocationList({ v: 1, ...rec, entries }));
    }
    return rs;
  }

  listFor(issuerKid: string): RevocationIndex | undefined {
    return this.set.listFor(issuerKid);
  }

  /** The list of an issuer key (empty version 0 when none is held). */
  list(issuerKid: string): RevocationList | undefined {
    return this.set.get(issuerKid);
  }

  /** The entries of an issuer's list added after `version`, in the order they were added. */
  entriesSince(issuerKid: string, version: number): VersionedEntry[] {
    const list = this.set.get(issuerKid);
    if (!list) return [];
    const versions = this.versions.get(issuerKid);
    const out: VersionedEntry[] = [];
    for (const entry of list.entries) {
      const v = versions?.get(entryId(entry)) ?? list.version;
      if (v > version) out.push({ entry, v });
    }
    return out.sort((a, b) => a.v - b.v);
  }

  /**
   * Revokes a credential (`jti`) or key (`kid`) on the list of `issuerKey`'s
   * owner, raising its version; persists before it takes effect in memory.
   * Revoking twice is a no-op. Returns the list.
   *
   * `alsoWrite`, called only when the entry is new, adds the caller's own
   * records (e.g. who revoked it) to the same atomic batch, so they land with
   * the entry or not at all. `guard`, called with the current list before a
   * new entry is written, may throw to refuse it (e.g. a cap).
   */
  revoke(
    issuerKey: KeyObject | PublicJwk,
    entry: RevocationEntry,
    iss?: string,
    alsoWrite?: (batch: Batch, next: RevocationList) => void,
    guard?: (current: RevocationList) => void,
  ): Promise<RevocationList> {
    return this.serial(async () => {
      const jwk = toPublicJwk(issuerKey as KeyObject);
      const kid = thumbprintOf(jwk);
      const current = this.set.get(kid) ?? emptyRevocationList(jwk, iss);
      const next = withRevocation(current, checkRevocationEntry(entry));
      if (next === current) return current;
      guard?.(current);
      const added = next.entries[next.entries.length - 1] as RevocationEntry;
      const batch = this.store
        .batch()
        .put(this.lists, kid, recordOf(next))
        .put(this.entries, entryKey(kid, added), stored(added, next.version));
      alsoWrite?.(batch, next);
      await batch.write({ sync: true });
      this.versionsOf(kid).set(entryId(added), next.version);
      this.set.extend(next, [added]);
      return next;
    });
  }

  /**
   * Adds many entries to `issuerKey`'s own list in one atomic batch, one version each (entries already
   * on the list are skipped). For bulk imports and tests; Revoke goes through {@link revoke}.
   */
  revokeMany(issuerKey: KeyObject | PublicJwk, entries: readonly RevocationEntry[], iss?: string): Promise<RevocationList> {
    return this.serial(async () => {
      const jwk = toPublicJwk(issuerKey as KeyObject);
      const kid = thumbprintOf(jwk);
      const current = this.set.get(kid) ?? emptyRevocationList(jwk, iss);
      const have = new Set(current.entries.map(entryId));
      const added: RevocationEntry[] = [];
      const batch = this.store.batch();
      let version = current.version;
      const versions = new Map<string, number>();
      for (const raw of entries) {
        const e = checkRevocationEntry(raw);
        if (have.has(entryId(e))) continue;
        have.add(entryId(e));
        version++;
        added.push(e);
        versions.set(entryId(e), version);
        batch.put(this.entries, entryKey(kid, e), stored(e, version));
      }
      if (!added.length) return current;
      const { iat: _iat, next_update: _next, ...bare } = current;
      const next: RevocationList = { ...bare, version, entries: [...current.entries, ...added] };
      batch.put(this.lists, kid, recordOf(next));
      await batch.write({ sync: true });
      for (const [id, v] of versions) this.versionsOf(kid).set(id, v);
      this.set.extend(next, added);
      return next;
    });
  }

  /**
   * Installs a list from elsewhere (e.g. a peer's, already signature-checked)
   * when fresher than the one held: a higher version replaces the whole list in
   * one batch; the same version signed later only rewrites its `iat` / `next_update`.
   */
  importList(list: RevocationList): Promise<boolean> {
    return this.serial(async () => {
      const checked = checkRevocationList(list);
      const old = this.set.get(checked.kid);
      if (!isFresherList(checked, old)) return false;
      const batch = this.store.batch();
      const replaced = !old || old.version !== checked.version;
      if (replaced) {
        for (const e of old?.entries ?? []) batch.del(this.entries, entryKey(checked.kid, e));
        for (const e of checked.entries) batch.put(this.entries, entryKey(checked.kid, e), stored(e, checked.version));
      }
      batch.put(this.lists, checked.kid, recordOf(checked));
      await batch.write({ sync: true });
      if (replaced) this.versions.set(checked.kid, new Map(checked.entries.map((e) => [entryId(e), checked.version])));
      return this.set.put(checked);
    });
  }

  /**
   * Takes a signed update (already signature-checked): a whole list as {@link importList}; a delta is
   * applied in place when its base is at most the held version ('gap' otherwise, nothing changed).
   * Entries already expired at `nowS` are not added.
   */
  importUpdate(update: RevocationUpdate, nowS: number): Promise<ImportOutcome> {
    if (update.kind === 'list') return this.importList(update.list).then((ok) => (ok ? 'installed' : 'current'));
    const d = update.delta;
    return this.serial(async () => {
      const out = applyRevocationDelta(this.set.get(d.kid), d, nowS);
      if (out.kind !== 'applied') return out.kind;
      const batch = this.store.batch().put(this.lists, d.kid, recordOf(out.list));
      for (const e of out.added) batch.put(this.entries, entryKey(d.kid, e), stored(e, out.list.version));
      // A holder fed only deltas would keep every entry it ever got: the stamped part of an update
      // also drops (some of) the held entries that expired, in the same batch.
      const expired = d.iat !== undefined ? out.list.entries.filter((e) => isExpiredEntry(e, nowS)).slice(0, 1000) : [];
      for (const e of expired) batch.del(this.entries, entryKey(d.kid, e));
      await batch.write({ sync: true });
      for (const e of out.added) this.versionsOf(d.kid).set(entryId(e), out.list.version);
      this.set.extend(out.list, out.added);
      if (expired.length) {
        const gone = new Set(expired.map(entryId));
        for (const id of gone) this.versions.get(d.kid)?.delete(id);
        this.set.compacted({ ...out.list, entries: out.list.entries.filter((e) => !gone.has(entryId(e))) });
      }
      return 'installed';
    });
  }

  /**
   * Drops entries whose credential expired (see isExpiredEntry) from every list held, at most
   * `maxEntries` in one atomic batch (with what `alsoDelete` adds for the dropped entries of each
   * list). Versions do not change: nothing new is revoked. Returns how many were dropped; call again
   * while it returns `maxEntries`.
   */
  compact(
    nowS: number,
    maxEntries = 1000,
    alsoDelete?: (batch: Batch, issuerKid: string, dropped: readonly RevocationEntry[]) => void,
  ): Promise<number> {
    return this.serial(async () => {
      const batch = this.store.batch();
      const changed: { list: RevocationList; dropped: RevocationEntry[] }[] = [];
      let n = 0;
      for (const list of this.set.all()) {
        if (n >= maxEntries) break;
        const dropped: RevocationEntry[] = [];
        for (const e of list.entries) {
          if (n >= maxEntries) break;
          if (isExpiredEntry(e, nowS)) {
            dropped.push(e);
            n++;
          }
        }
        if (!dropped.length) continue;
        for (const e of dropped) batch.del(this.entries, entryKey(list.kid, e));
        alsoDelete?.(batch, list.kid, dropped);
        changed.push({ list, dropped });
      }
      if (!n) return 0;
      await batch.write({ sync: true });
      for (const { list, dropped } of changed) {
        const gone = new Set(dropped.map(entryId));
        const versions = this.versions.get(list.kid);
        for (const id of gone) versions?.delete(id);
        this.set.compacted({ ...list, entries: list.entries.filter((e) => !gone.has(entryId(e))) });
      }
      return n;
    });
  }

  /**
   * The list of `privateKey`'s owner, signed for publication (an empty version 0 list when nothing is
   * revoked); with `validity`, stamped with `iat` and `next_update`.
   */
  exportSigned(privateKey: KeyObject, iss?: string, validity?: RevocationValidity): string {
    const kid = thumbprintOf(toPublicJwk(privateKey));
    return signRevocationList(this.set.get(kid) ?? emptyRevocationList(privateKey, iss), privateKey, validity);
  }

  private versionsOf(kid: string): Map<string, number> {
    let m = this.versions.get(kid);
    if (!m) this.versions.set(kid, (m = new Map()));
    return m;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
