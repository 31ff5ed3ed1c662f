/**
 * Slice authorities' signed revocation lists, as this MA relays them to its
 * node managers. A node manager trusts a slice authority's key for that
 * authority's slices only, so its revocations must reach the nodes that hold
 * those slices: the slice authority hands its signed list to every site, and
 * the site passes it on (now to the nodes that hold the authority's slivers,
 * later to each node that gets a new sliver of it). The lists are kept signed,
 * as they came: a node checks the signature itself. Kept on disk, one record
 * per slice authority key, the freshest copy only (a higher version, or the
 * same version signed later: the authority re-publishes before `next_update`).
 * A copy already past its `next_update` is refused (FAILED_PRECONDITION): a
 * node would refuse it as stale anyway.
 */
import { FailedPreconditionError, InvalidArgumentError, PermissionDeniedError } from '../core/errors.js';
import { parseSignedRevocationList, staleListMessage, type RevocationList } from '../core/credentials/index.js';
import type { Store, Table } from '../core/store/store.js';

/** The table of relayed lists (keyed by the slice authority's key thumbprint). */
export const RELAYED_LISTS_TABLE = 'relayed-revocation-lists';

interface RelayedRecord {
  readonly jws: string;
  readonly version: number;
  /** The copy's iat (s), when it carries one. */
  readonly iat?: number;
}

/** The signed revocation lists of slice authorities, newest only, by key. */
export class RevocationRelay {
  private readonly table: Table<RelayedRecord>;
  private readonly lists = new Map<string, RelayedRecord>();

  /** `now`: milliseconds since the epoch (the MA's clock). */
  constructor(
    store: Store,
    private readonly now: () => number = Date.now,
  ) {
    this.table = store.table<RelayedRecord>(RELAYED_LISTS_TABLE);
  }

  /** Loads the kept lists. */
  async load(): Promise<void> {
    for await (const [kid, rec] of this.table.entries()) this.lists.set(kid, rec);
  }

  /**
   * Takes `jws` from the slice authority whose key is `callerKid`: it must be that authority's own list
   * (PERMISSION_DENIED otherwise), a well-signed list (INVALID_ARGUMENT) and not past its next_update
   * (FAILED_PRECONDITION). Keeps it when fresher. Returns the list and whether it was new here.
   */
  async accept(jws: string, callerKid: string): Promise<{ list: RevocationList; newer: boolean }> {
    let list: RevocationList;
    try {
      list = parseSignedRevocationList(jws);
    } catch (err) {
      throw new InvalidArgumentError(`signed_list: ${(err as Error).message}`, { field: 'signed_list' });
    }
    if (list.kid !== callerKid) {
      throw new PermissionDeniedError(
        'a slice authority relays only its own revocation list (signed with the key its MA → SA chain names)',
        { rule: 'own-list' },
      );
    }
    if (list.next_update !== undefined && list.next_update * 1000 <= this.now()) {
      const issuer = list.iss ?? list.kid;
      throw new FailedPreconditionError(
        `${staleListMessage({ issuer, version: list.version, nextUpdate: list.next_update, refuseAfter: list.next_update })}; sign a fresh copy`,
        { rule: 'revocation-list-stale', field: 'signed_list' },
      );
    }
    const held = this.lists.get(list.kid);
    const fresher =
      !held || list.version > held.version || (list.version === held.version && list.iat !== undefined && list.iat > (held.iat ?? -1));
    if (!fresher) return { list, newer: false };
    const rec: RelayedRecord = { jws: jws.trim(), version: list.version, ...(list.iat !== undefined ? { iat: list.iat } : {}) };
    await this.table.put(list.kid, rec, { sync: true });
    this.lists.set(list.kid, rec);
    return { list, newer: true };
  }

  /** The signed list of a slice authority key, if one is held (with entries, or with a next_update to keep). */
  signedFor(kid: string): string | undefined {
    const rec = this.lists.get(kid);
    return rec && (rec.version > 0 || rec.iat !== undefined) ? rec.jws : undefined;
  }
}
