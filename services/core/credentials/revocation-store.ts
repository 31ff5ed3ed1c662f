/**
 * Revocation lists kept in a service's LevelDB: the service's own list (it
 * revokes with its key) and the lists it imported from peers. Two tables:
 * `revocation-lists` (one record per issuer key: URN, key, version) and
 * `revocation-entries` (one record per entry, keyed `<issuer kid>/<jti or kid>`),
 * changed together in one atomic batch. Everything is also held in a
 * {@link RevocationSet} so the verifier reads it synchronously. An imported
 * list keeps its `iat` / `next_update` (the verifier fails closed past them);
 * a re-publication of the same version only moves them on.
 */
import type { KeyObject } from 'node:crypto';
import type { Batch, Store, Table } from '../store/store.js';
import type { ChainCache } from './cache.js';
import { thumbprintOf, toPublicJwk, type PublicJwk } from './keys.js';
import {
  checkRevocationEntry,
  checkRevocationList,
  emptyRevocationList,
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

interface ListRecord {
  readonly iss?: string;
  readonly jwk: PublicJwk;
  readonly kid: string;
  readonly version: number;
  readonly iat?: number;
  readonly next_update?: number;
}

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

function entryKey(issuerKid: string, e: RevocationEntry): string {
  return `${issuerKid}/${e.jti !== undefined ? `jti:${e.jti}` : `kid:${e.kid}`}`;
}

/** Persistent revocation lists of one service. */
export class RevocationStore implements RevocationLookup {
  private readonly lists: Table<ListRecord>;
  private readonly entries: Table<RevocationEntry>;
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
    this.entries = store.table<RevocationEntry>(REVOCATION_TABLES.entries);
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
      const entries = await rs.entries.values({ prefix: `${kid}/` });
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

  /**
   * Revokes a credential (`jti`) or key (`kid`) on the list of `issuerKey`'s
   * owner, raising its version; persists before it takes effect in memory.
   * Revoking twice is a no-op. Returns the list.
   *
   * `alsoWrite`, called only when the entry is new, adds the caller's own
   * records (e.g. who revoked it) to the same atomic batch, so they land with
   * the entry or not at all.
   */
  revoke(
    issuerKey: KeyObject | PublicJwk,
    entry: RevocationEntry,
    iss?: string,
    alsoWrite?: (batch: Batch, next: RevocationList) => void,
  ): Promise<RevocationList> {
    return this.serial(async () => {
      const jwk = toPublicJwk(issuerKey as KeyObject);
      const kid = thumbprintOf(jwk);
      const current = this.set.get(kid) ?? emptyRevocationList(jwk, iss);
      const next = withRevocation(current, checkRevocationEntry(entry));
      if (next === current) return current;
      const added = next.entries[next.entries.length - 1] as RevocationEntry;
      const rec = recordOf(next);
      const batch = this.store.batch().put(this.lists, kid, rec).put(this.entries, entryKey(kid, added), added);
      alsoWrite?.(batch, next);
      await batch.write({ sync: true });
      this.set.put(next);
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
      if (!old || old.version !== checked.version) {
        for (const e of old?.entries ?? []) batch.del(this.entries, entryKey(checked.kid, e));
        for (const e of checked.entries) batch.put(this.entries, entryKey(checked.kid, e), e);
      }
      batch.put(this.lists, checked.kid, recordOf(checked));
      await batch.write({ sync: true });
      return this.set.put(checked);
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

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
