/**
 * Revocation lists kept in a service's LevelDB: the service's own list (it
 * revokes with its key) and the lists it imported from peers. Two tables:
 * `revocation-lists` (one record per issuer key: URN, key, version) and
 * `revocation-entries` (one record per entry, keyed `<issuer kid>/<jti or kid>`),
 * changed together in one atomic batch. Everything is also held in a
 * {@link RevocationSet} so the verifier reads it synchronously.
 */
import type { KeyObject } from 'node:crypto';
import type { Batch, Store, Table } from '../store/store.js';
import type { ChainCache } from './cache.js';
import { thumbprintOf, toPublicJwk, type PublicJwk } from './keys.js';
import {
  checkRevocationEntry,
  checkRevocationList,
  emptyRevocationList,
  signRevocationList,
  withRevocation,
  RevocationSet,
  type RevocationEntry,
  type RevocationIndex,
  type RevocationList,
  type RevocationLookup,
} from './revocation.js';

interface ListRecord {
  readonly iss?: string;
  readonly jwk: PublicJwk;
  readonly kid: string;
  readonly version: number;
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

  /** Loads every list from `store`. Newly revoked items clear `cache` (the process-wide cache by default). */
  static async open(store: Store, options: { readonly cache?: ChainCache | null } = {}): Promise<RevocationStore> {
    const rs = new RevocationStore(store, new RevocationSet(options.cache === undefined ? {} : { cache: options.cache }));
    for await (const [kid, rec] of rs.lists.entries()) {
      const entries = await rs.entries.values({ prefix: `${kid}/` });
      rs.set.put(
        checkRevocationList({
          v: 1,
          ...(rec.iss !== undefined ? { iss: rec.iss } : {}),
          jwk: rec.jwk,
          kid: rec.kid,
          version: rec.version,
          entries,
        }),
      );
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
      const rec: ListRecord = { ...(next.iss !== undefined ? { iss: next.iss } : {}), jwk: next.jwk, kid, version: next.version };
      const batch = this.store.batch().put(this.lists, kid, rec).put(this.entries, entryKey(kid, added), added);
      alsoWrite?.(batch, next);
      await batch.write({ sync: true });
      this.set.put(next);
      return next;
    });
  }

  /**
   * Installs a list from elsewhere (e.g. a peer's, already signature-checked)
   * when newer than the one held; the whole list is replaced in one batch.
   */
  importList(list: RevocationList): Promise<boolean> {
    return this.serial(async () => {
      const checked = checkRevocationList(list);
      const old = this.set.get(checked.kid);
      if (old && checked.version <= old.version) return false;
      const batch = this.store.batch();
      for (const e of old?.entries ?? []) batch.del(this.entries, entryKey(checked.kid, e));
      for (const e of checked.entries) batch.put(this.entries, entryKey(checked.kid, e), e);
      batch.put(this.lists, checked.kid, {
        ...(checked.iss !== undefined ? { iss: checked.iss } : {}),
        jwk: checked.jwk,
        kid: checked.kid,
        version: checked.version,
      });
      await batch.write({ sync: true });
      return this.set.put(checked);
    });
  }

  /** The list of `privateKey`'s owner, signed for publication (an empty version 0 list when nothing is revoked). */
  exportSigned(privateKey: KeyObject, iss?: string): string {
    const kid = thumbprintOf(toPublicJwk(privateKey));
    return signRevocationList(this.set.get(kid) ?? emptyRevocationList(privateKey, iss), privateKey);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
