/**
 * A service's own revocation list as its Revoke and ListRevocations calls see
 * it: the versioned list in {@link RevocationStore} plus, per entry, who
 * revoked it and at which version. Both are written in one atomic batch, so an
 * entry never stands without its "revoked by" (nor the other way round).
 * Authorization stays with the role that calls it; this class returns plain
 * records and each role maps them to its wire messages.
 *
 * The list stays compact: an entry given its credential's expiry (`exp`)
 * leaves once that has passed ({@link RevocationLedger.compact}), and live
 * entries are capped in all and, for callers the role names, per revoker
 * (RESOURCE_EXHAUSTED past either, naming the cap).
 */
import type { KeyObject } from 'node:crypto';
import { InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { decodePageToken, encodePageToken } from '../paging.js';
import type { Logger } from '../log.js';
import type { Store, Table } from '../store/store.js';
import { thumbprintOf, toPublicJwk, type PublicJwk } from './keys.js';
import type { RevocationEntry, RevocationList } from './revocation.js';
import { entryId, type RevocationStore } from './revocation-store.js';
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_ENTRIES_PER_REVOKER, type RevocationCaps } from './revocation-config.js';
import type { RevocationEntry as RevocationEntryMessage } from '../../generated/fedlab/v1/common.js';
import { pageSize } from '../validate.js';

/** What a Revoke names: a credential (`jti`) or a key (`kid`, its RFC 7638 thumbprint). */
export type RevocationTarget = { readonly jti: string; readonly kid?: undefined } | { readonly kid: string; readonly jti?: undefined };

/** One entry of the list with who revoked it and where it stands. */
export interface LedgerEntry {
  /** The revoked credential or key, its reason and time (seconds since the epoch). */
  readonly item: RevocationEntry;
  /** Who revoked it (the issuer's URN for an entry without a record of who). */
  readonly revokedBy: string;
  /** Its place in the list from 1: the list version that added it. */
  readonly version: number;
}

/** A page of the list. */
export interface LedgerPage {
  /** The list's version. */
  readonly version: number;
  readonly entries: readonly LedgerEntry[];
  /** Token for the next page; empty on the last one. */
  readonly nextPageToken: string;
}

/** What a listing asks for. */
export interface LedgerQuery {
  /** Entries after this version only (0: from the start). */
  readonly sinceVersion: number;
  /** A token from an earlier page, or empty. */
  readonly pageToken: string;
  /** The effective page size (the role's paging rules already applied). */
  readonly pageSize: number;
}

/** Options of {@link RevocationLedger}. */
export interface RevocationLedgerOptions {
  /** The store `revocations` was opened on (one batch spans both). */
  readonly store: Store;
  readonly revocations: RevocationStore;
  /** The key the list is signed with (private or public). */
  readonly issuerKey: KeyObject | PublicJwk;
  /** The issuer's URN, named on the list and as the revoker of entries with no record of who. */
  readonly issuerUrn: string;
  /** Table of who revoked what, keyed `jti:<id>` or `kid:<thumbprint>` (each role keeps its own name). */
  readonly metaTable: string;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  readonly log: Logger;
  /** Caps on live entries (the defaults of revocation-config.ts when absent). */
  readonly caps?: RevocationCaps;
}

/** How one revocation is made. */
export interface RevokeOptions {
  /** The revoked credential's expiry (s since the epoch), when known: the entry leaves after it. */
  readonly exp?: number;
  /** Count the entry against the revoker's own cap (callers who are not administrators). */
  readonly capRevoker?: boolean;
}

interface MetaRecord {
  readonly revokedBy: string;
  readonly version: number;
}

const VERSION = /^[0-9]{1,15}$/;

function metaKey(e: RevocationTarget | RevocationEntry): string {
  return entryId(e);
}

/**
 * The item a Revoke request names: exactly one of `jti` and `key_thumbprint`
 * (InvalidArgumentError on field `jti` otherwise).
 */
export function revocationTarget(jti: string, keyThumbprint: string): RevocationTarget {
  if ((jti !== '') === (keyThumbprint !== ''))
    throw new InvalidArgumentError('give exactly one of jti and key_thumbprint', { field: 'jti' });
  return jti !== '' ? { jti } : { kid: keyThumbprint };
}

/** One issuer's own revocation list with who revoked each entry, and its paged listing. */
export class RevocationLedger {
  private readonly meta: Table<MetaRecord>;
  private readonly jwk: PublicJwk;
  private readonly kid: string;
  private readonly caps: RevocationCaps;
  /** Live entries by revoker, and who revoked each live entry (loaded on first need). */
  private revokers: Promise<{ readonly count: Map<string, number>; readonly by: Map<string, string> }> | undefined;

  constructor(private readonly o: RevocationLedgerOptions) {
    if (o.revocations.store !== o.store) throw new TypeError('the revocation ledger must use the store its RevocationStore was opened on');
    this.meta = o.store.table<MetaRecord>(o.metaTable);
    this.jwk = toPublicJwk(o.issuerKey as KeyObject);
    this.kid = thumbprintOf(this.jwk);
    this.caps = o.caps ?? { maxEntries: DEFAULT_MAX_ENTRIES, maxEntriesPerRevoker: DEFAULT_MAX_ENTRIES_PER_REVOKER };
  }

  /** The list's version (0 while nothing is revoked). */
  get version(): number {
    return this.o.revocations.list(this.kid)?.version ?? 0;
  }

  /** Live entries on the list. */
  get size(): number {
    return this.o.revocations.list(this.kid)?.entries.length ?? 0;
  }

  /** Live entries `revoker` put on the list. */
  async liveBy(revoker: string): Promise<number> {
    return (await this.loadRevokers()).count.get(revoker) ?? 0;
  }

  private loadRevokers(): Promise<{ readonly count: Map<string, number>; readonly by: Map<string, string> }> {
    this.revokers ??= (async () => {
      const ids = (this.o.revocations.list(this.kid)?.entries ?? []).map(metaKey);
      const metas = await this.meta.getMany(ids);
      const by = new Map<string, string>();
      const count = new Map<string, number>();
      const live = new Set((this.o.revocations.list(this.kid)?.entries ?? []).map(metaKey));
      ids.forEach((id, i) => {
        if (!live.has(id)) return;
        const who = metas[i]?.revokedBy ?? this.o.issuerUrn;
        by.set(id, who);
        count.set(who, (count.get(who) ?? 0) + 1);
      });
      return { count, by };
    })();
    const pending = this.revokers;
    // A failed read is not kept: the next Revoke reads again (else one store error would refuse every Revoke until restart).
    pending.catch(() => {
      if (this.revokers === pending) this.revokers = undefined;
    });
    return pending;
  }

  /**
   * Puts `target` on the list, recording `by` as who revoked it, in one atomic
   * batch. Revoking what is revoked changes nothing and returns the existing
   * entry. A malformed jti, thumbprint or reason throws InvalidArgumentError; a
   * new entry past a cap ResourceExhaustedError (rule `revocation-cap`).
   */
  async revoke(
    target: RevocationTarget,
    reason: string,
    by: string,
    options: RevokeOptions = {},
  ): Promise<{ readonly entry: LedgerEntry; readonly version: number }> {
    const time = Math.floor(this.o.now() / 1000);
    const exp = options.exp !== undefined ? { exp: Math.max(0, Math.ceil(options.exp)) } : {};
    const item: RevocationEntry =
      target.jti !== undefined ? { jti: target.jti, reason, time, ...exp } : { kid: target.kid, reason, time, ...exp };
    const key = metaKey(target);
    const revokers = await this.loadRevokers();
    // At a cap, entries of expired credentials leave first: only live ones count.
    if (this.size >= this.caps.maxEntries || (options.capRevoker && (revokers.count.get(by) ?? 0) >= this.caps.maxEntriesPerRevoker))
      while ((await this.compact()) > 0);
    // Set only when the entry is new (the callback runs inside the store's serial section).
    let written = undefined as MetaRecord | undefined;
    const guard = (current: RevocationList): void => {
      if (current.entries.length >= this.caps.maxEntries)
        throw new ResourceExhaustedError(
          `the revocation list of ${this.o.issuerUrn} holds ${current.entries.length} live entries, its cap (revocation.max_entries = ${this.caps.maxEntries}); entries leave as their credentials expire: revoke a key instead of its credentials one by one, wait, or ask the operator to raise the cap`,
          { rule: 'revocation-cap', limit: 'max_entries' },
        );
      const mine = revokers.count.get(by) ?? 0;
      if (options.capRevoker && mine >= this.caps.maxEntriesPerRevoker)
        throw new ResourceExhaustedError(
          `${by} has ${mine} live entries on the revocation list of ${this.o.issuerUrn}, its cap (revocation.max_entries_per_revoker = ${this.caps.maxEntriesPerRevoker}); entries leave as their credentials expire: issue credentials with shorter lifetimes, delete the slice (its credentials die with it), or ask an administrator`,
          { rule: 'revocation-cap', limit: 'max_entries_per_revoker' },
        );
    };
    let list: RevocationList;
    try {
      list = await this.o.revocations.revoke(
        this.jwk,
        item,
        this.o.issuerUrn,
        (batch, next) => {
          written = { revokedBy: by, version: next.version };
          batch.put(this.meta, key, written);
          revokers.by.set(key, by);
          revokers.count.set(by, (revokers.count.get(by) ?? 0) + 1);
        },
        guard,
      );
    } catch (err) {
      // The batch did not land: the count taken for it is given back.
      if (written && revokers.by.get(key) === by) {
        revokers.by.delete(key);
        revokers.count.set(by, (revokers.count.get(by) ?? 1) - 1);
      }
      throw err;
    }
    const entry = list.entries.find((e) => metaKey(e) === key) as RevocationEntry;
    if (written) this.o.log.info({ jti: entry.jti, kid: entry.kid, by, version: list.version }, 'revoked');
    const meta = written ?? (await this.meta.get(key));
    const v = meta?.version ?? this.o.revocations.entriesSince(this.kid, 0).find((x) => metaKey(x.entry) === key)?.v ?? list.version;
    return { entry: this.entryOf(entry, v, meta), version: list.version };
  }

  /**
   * Drops up to `maxEntries` entries whose credential expired more than the margin ago, with their
   * "revoked by" records, in one atomic batch (every list of the store is compacted alike; records of
   * who revoked are this issuer's only). Returns how many left; call again while it returns `maxEntries`.
   */
  async compact(maxEntries = 1000): Promise<number> {
    const revokers = await this.loadRevokers();
    const gone: string[] = [];
    const n = await this.o.revocations.compact(Math.floor(this.o.now() / 1000), maxEntries, (batch, kid, dropped) => {
      if (kid !== this.kid) return;
      for (const e of dropped) {
        batch.del(this.meta, metaKey(e));
        gone.push(metaKey(e));
      }
    });
    for (const id of gone) {
      const who = revokers.by.get(id);
      if (who === undefined) continue;
      revokers.by.delete(id);
      revokers.count.set(who, (revokers.count.get(who) ?? 1) - 1);
    }
    if (n) this.o.log.info({ dropped: n, live: this.size }, 'revocation list compacted: entries of expired credentials dropped');
    return n;
  }

  /** Entries in version order, optionally after a version; page tokens carry the version a page ended at. */
  async page(q: LedgerQuery): Promise<LedgerPage> {
    if (!Number.isSafeInteger(q.sinceVersion) || q.sinceVersion < 0)
      throw new InvalidArgumentError('since_version must be 0 or more', { field: 'since_version' });
    if (!Number.isSafeInteger(q.pageSize) || q.pageSize < 1) throw new RangeError('pageSize must be a whole number of 1 or more');
    let from = q.sinceVersion;
    const after = decodePageToken('revocations', q.pageToken);
    if (after !== '') {
      if (!VERSION.test(after))
        throw new InvalidArgumentError('page_token is not one this server gave out; start again with an empty token', {
          field: 'page_token',
        });
      from = Math.max(from, Number(after));
    }
    const all = this.o.revocations.entriesSince(this.kid, from);
    const page = all.slice(0, q.pageSize);
    const metas = await this.meta.getMany(page.map((x) => metaKey(x.entry)));
    const last = page[page.length - 1]?.v ?? from;
    return {
      version: this.version,
      entries: page.map((x, i) => this.entryOf(x.entry, metas[i]?.version ?? x.v, metas[i])),
      nextPageToken: all.length > page.length ? encodePageToken('revocations', String(last)) : '',
    };
  }

  /** A page as the ListRevocations RPCs answer it (the MA's and the SA's alike). */
  async listPage(req: { readonly pageSize: number; readonly sinceVersion: number; readonly pageToken: string }): Promise<{
    version: number;
    entries: RevocationEntryMessage[];
    nextPageToken: string;
  }> {
    const page = await this.page({ pageSize: pageSize(req.pageSize), sinceVersion: req.sinceVersion, pageToken: req.pageToken });
    return { version: page.version, entries: page.entries.map(ledgerEntryToWire), nextPageToken: page.nextPageToken };
  }

  private entryOf(item: RevocationEntry, version: number, meta: MetaRecord | undefined): LedgerEntry {
    return { item, revokedBy: meta?.revokedBy ?? this.o.issuerUrn, version };
  }
}

/** A ledger entry as the API's RevocationEntry. */
export function ledgerEntryToWire(r: LedgerEntry): RevocationEntryMessage {
  return {
    jti: r.item.jti ?? '',
    keyThumbprint: r.item.kid ?? '',
    reason: r.item.reason,
    revokedAt: new Date(r.item.time * 1000),
    revokedBy: r.revokedBy,
    version: r.version,
  };
}
