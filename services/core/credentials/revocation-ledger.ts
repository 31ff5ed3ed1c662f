/**
 * A service's own revocation list as its Revoke and ListRevocations calls see
 * it: the versioned list in {@link RevocationStore} plus, per entry, who
 * revoked it and at which version. Both are written in one atomic batch, so an
 * entry never stands without its "revoked by" (nor the other way round).
 * Authorization stays with the role that calls it; this class returns plain
 * records and each role maps them to its wire messages.
 */
import type { KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { decodePageToken, encodePageToken } from '../paging.js';
import type { Logger } from '../log.js';
import type { Store, Table } from '../store/store.js';
import { thumbprintOf, toPublicJwk, type PublicJwk } from './keys.js';
import type { RevocationEntry } from './revocation.js';
import type { RevocationStore } from './revocation-store.js';
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
}

interface MetaRecord {
  readonly revokedBy: string;
  readonly version: number;
}

const VERSION = /^[0-9]{1,15}$/;

function metaKey(e: RevocationTarget): string {
  return e.jti !== undefined ? `jti:${e.jti}` : `kid:${e.kid}`;
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

  constructor(private readonly o: RevocationLedgerOptions) {
    if (o.revocations.store !== o.store) throw new TypeError('the revocation ledger must use the store its RevocationStore was opened on');
    this.meta = o.store.table<MetaRecord>(o.metaTable);
    this.jwk = toPublicJwk(o.issuerKey as KeyObject);
    this.kid = thumbprintOf(this.jwk);
  }

  /** The list's version (0 while nothing is revoked). */
  get version(): number {
    return this.o.revocations.list(this.kid)?.version ?? 0;
  }

  /**
   * Puts `target` on the list, recording `by` as who revoked it, in one atomic
   * batch. Revoking what is revoked changes nothing and returns the existing
   * entry. A malformed jti, thumbprint or reason throws InvalidArgumentError.
   */
  async revoke(target: RevocationTarget, reason: string, by: string): Promise<{ readonly entry: LedgerEntry; readonly version: number }> {
    const time = Math.floor(this.o.now() / 1000);
    const item: RevocationEntry = target.jti !== undefined ? { jti: target.jti, reason, time } : { kid: target.kid, reason, time };
    const key = metaKey(target);
    // Set only when the entry is new (the callback runs inside the store's serial section).
    let written = undefined as MetaRecord | undefined;
    const list = await this.o.revocations.revoke(this.jwk, item, this.o.issuerUrn, (batch, next) => {
      written = { revokedBy: by, version: next.entries.length };
      batch.put(this.meta, key, written);
    });
    const index = list.entries.findIndex((e) => (target.jti !== undefined ? e.jti === target.jti : e.kid === target.kid));
    const entry = list.entries[index] as RevocationEntry;
    if (written) this.o.log.info({ jti: entry.jti, kid: entry.kid, by, version: list.version }, 'revoked');
    const meta = written ?? (await this.meta.get(key));
    return { entry: this.entryOf(entry, index + 1, meta), version: list.version };
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
    const list = this.o.revocations.list(this.kid);
    const all = list?.entries ?? [];
    const page = all.slice(from, from + q.pageSize);
    const metas = await this.meta.getMany(page.map(metaKey));
    const last = from + page.length;
    return {
      version: list?.version ?? 0,
      entries: page.map((e, i) => this.entryOf(e, from + i + 1, metas[i])),
      nextPageToken: last < all.length ? encodePageToken('revocations', String(last)) : '',
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
