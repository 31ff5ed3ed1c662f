/**
 * Slice authorities' signed revocation lists, as this MA relays them to its
 * node managers. A node manager trusts a slice authority's key for that
 * authority's slices only, so its revocations must reach the nodes that hold
 * those slices: the slice authority hands its signed list to every site, and
 * the site passes it on (now to the nodes that hold the authority's slivers,
 * later to each node that gets a new sliver of it). Everything is kept signed,
 * as it came: a node checks the signature itself.
 *
 * What is kept per slice authority key is a chain of signed messages that
 * together bring a node from nothing to the newest version: a whole list, or
 * a snapshot (deltas from version 0, in parts) and the deltas since. A
 * message that only moves the stamp on (a delta adding nothing) replaces the
 * earlier such ones; a new snapshot is gathered apart and replaces the chain
 * once its last part (the one with `iat`) is in, so a node that comes meanwhile
 * still gets a whole chain. A copy already past its `next_update` is refused
 * (FAILED_PRECONDITION): a node would refuse it as stale anyway. A delta whose
 * base is above the version held is not kept (the answer names the version
 * held, and the authority sends a snapshot). So is a delta or snapshot part that would take the chain
 * (or the snapshot gathered) past {@link MAX_CHAIN_PARTS} messages or {@link MAX_CHAIN_BYTES}: a peer
 * sending many small deltas cannot grow the store, memory or what nodes are sent without bound (a
 * slice authority of this version sends a snapshot after 32 deltas, and when a site answers a version
 * below what it sent).
 */
import { FailedPreconditionError, InvalidArgumentError, PermissionDeniedError } from '../core/errors.js';
import { staleListMessage } from '../core/credentials/index.js';
import { parseSignedRevocationUpdate, updateSummary } from '../core/credentials/revocation-delta.js';
import type { Store, Table } from '../core/store/store.js';

/** The table of relayed lists (keyed by the slice authority's key thumbprint). */
export const RELAYED_LISTS_TABLE = 'relayed-revocation-lists';

/** Most messages kept per slice authority (the chain, and apart a snapshot being gathered). */
export const MAX_CHAIN_PARTS = 64;
/** Most bytes of messages kept per slice authority (the chain, and apart a snapshot being gathered). */
export const MAX_CHAIN_BYTES = 8 * 1024 * 1024;

/** Whether `parts` stays within the caps. */
function withinCaps(parts: readonly Part[]): boolean {
  if (parts.length > MAX_CHAIN_PARTS) return false;
  let bytes = 0;
  for (const p of parts) bytes += p.jws.length;
  return bytes <= MAX_CHAIN_BYTES;
}

/** One kept message. */
interface Part {
  readonly jws: string;
  readonly base: number;
  readonly version: number;
  /** Adds no entry and moves no version on: only a later stamp. */
  readonly stampOnly: boolean;
}

interface RelayedRecord {
  /** Messages from version 0 to `version`, in order (absent on records of one whole list, kept in `jws`). */
  readonly chain?: readonly Part[];
  /** Records from before chains: one whole list. */
  readonly jws?: string;
  readonly version: number;
  /** The newest stamp's iat (s), when one came. */
  readonly iat?: number;
  /** A snapshot being gathered. */
  readonly pending?: { readonly parts: readonly Part[]; readonly version: number };
}

/** What {@link RevocationRelay.accept} took. */
export interface Accepted {
  readonly issuer: string;
  /** The version the message brings a holder to. */
  readonly version: number;
  /** The version now held here for that authority. */
  readonly held: number;
  /** Whether it changed what is held here (then nodes are sent it). */
  readonly newer: boolean;
}

function chainOf(rec: RelayedRecord | undefined): readonly Part[] {
  if (!rec) return [];
  if (rec.chain) return rec.chain;
  return rec.jws ? [{ jws: rec.jws, base: 0, version: rec.version, stampOnly: false }] : [];
}

/** The signed revocation lists of slice authorities, by key: a chain of messages per authority. */
export class RevocationRelay {
  private readonly table: Table<RelayedRecord>;
  private readonly lists = new Map<string, RelayedRecord>();
  private queue: Promise<unknown> = Promise.resolve();
  /** By node, by slice authority key: the last message of that key's chain the node took from this MA. */
  private readonly delivered = new Map<string, Map<string, string>>();

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
   * Takes `jws` (a signed list or delta) from the slice authority whose key is `callerKid`: it must be
   * that authority's own (PERMISSION_DENIED otherwise), well signed (INVALID_ARGUMENT) and not past its
   * next_update (FAILED_PRECONDITION). Keeps it when it adds to what is held.
   */
  async accept(jws: string, callerKid: string): Promise<Accepted> {
    let update;
    try {
      update = parseSignedRevocationUpdate(jws);
    } catch (err) {
      throw new InvalidArgumentError(`signed_list: ${(err as Error).message}`, { field: 'signed_list' });
    }
    const u = updateSummary(update);
    if (u.kid !== callerKid) {
      throw new PermissionDeniedError(
        'a slice authority relays only its own revocation list (signed with the key its MA → SA chain names)',
        { rule: 'own-list' },
      );
    }
    if (u.nextUpdate !== undefined && u.nextUpdate * 1000 <= this.now()) {
      throw new FailedPreconditionError(
        `${staleListMessage({ issuer: u.issuer, version: u.version, nextUpdate: u.nextUpdate, refuseAfter: u.nextUpdate })}; sign a fresh copy`,
        { rule: 'revocation-list-stale', field: 'signed_list' },
      );
    }
    const part: Part = {
      jws: jws.trim(),
      base: u.base,
      version: u.version,
      stampOnly: update.kind === 'delta' && u.entries === 0 && u.base === u.version,
    };
    const whole = update.kind === 'list';
    const stamp = u.iat;
    return this.serial(async () => {
      const held = this.lists.get(u.kid);
      const heldVersion = held?.version ?? 0;
      const next = this.next(held, part, whole, stamp);
      if (!next) return { issuer: u.issuer, version: u.version, held: heldVersion, newer: false };
      await this.table.put(u.kid, next, { sync: true });
      this.lists.set(u.kid, next);
      return {
        issuer: u.issuer,
        version: u.version,
        held: next.version,
        newer: next.version > heldVersion || (stamp ?? -1) > (held?.iat ?? -1),
      };
    });
  }

  /** The record after `part`, or undefined when it changes nothing here. */
  private next(held: RelayedRecord | undefined, part: Part, whole: boolean, stamp: number | undefined): RelayedRecord | undefined {
    const version = held?.version ?? 0;
    const iat = held?.iat ?? -1;
    const stamped = (r: Omit<RelayedRecord, 'iat'>, at: number | undefined): RelayedRecord =>
      at !== undefined ? { ...r, iat: at } : held?.iat !== undefined ? { ...r, iat: held.iat } : r;
    if (whole) {
      if (part.version < version || (part.version === version && (stamp ?? -1) <= iat)) return undefined;
      return stamped({ chain: [part], version: part.version }, stamp);
    }
    // A snapshot (from 0) over a chain already held is gathered apart until its stamped last part.
    const gathering =
      held && chainOf(held).length > 0 && (part.base === 0 || (held.pending && part.base === held.pending.version && part.base > 0));
    if (gathering) {
      const parts = part.base === 0 ? [part] : [...(held.pending?.parts ?? []), part];
      if (!withinCaps(parts)) return undefined;
      const pending = { parts, version: part.version };
      if (stamp !== undefined && part.version >= version) return { chain: parts, version: part.version, iat: stamp };
      return { ...held, pending };
    }
    if (part.base > version) return undefined;
    if (part.version < version || (part.version === version && (stamp ?? -1) <= iat)) return undefined;
    // Earlier stamp-only messages say nothing the new one does not.
    const chain = [...chainOf(held).filter((p) => !p.stampOnly), part];
    if (!withinCaps(chain)) return undefined;
    const { pending } = held ?? {};
    return stamped({ chain, version: Math.max(version, part.version), ...(pending ? { pending } : {}) }, stamp);
  }

  /** The version held of a slice authority key's list (0 when none). */
  versionFor(kid: string): number {
    return this.lists.get(kid)?.version ?? 0;
  }

  /**
   * The messages that bring a node from nothing to the version held of a slice authority key's list,
   * in order (empty when nothing is held, or only an empty list without a stamp).
   */
  chainFor(kid: string): string[] {
    const rec = this.lists.get(kid);
    if (!rec || (rec.version === 0 && rec.iat === undefined)) return [];
    return chainOf(rec).map((p) => p.jws);
  }

  /** The last message of a key's chain, if one is held (with entries, or with a next_update to keep). */
  signedFor(kid: string): string | undefined {
    return this.chainFor(kid).at(-1);
  }

  /**
   * Whether `nodeUrn` has taken the chain of `kid` up to `last` (pass the last message of what is held
   * now, {@link chainFor}), as this MA last sent it. In memory: after a restart every node is sent its
   * chain again once.
   */
  nodeTookUpTo(nodeUrn: string, kid: string, last: string): boolean {
    return this.delivered.get(nodeUrn)?.get(kid) === last;
  }

  /** Records that `nodeUrn` took the messages of `kid`'s chain up to `last` (answered OK, none skipped). */
  nodeTook(nodeUrn: string, kid: string, last: string): void {
    let byKid = this.delivered.get(nodeUrn);
    if (!byKid) this.delivered.set(nodeUrn, (byKid = new Map()));
    byKid.set(kid, last);
  }

  /** Forgets what a node took (it came back UP: its copies are not known to be current). */
  forgetNode(nodeUrn: string): void {
    this.delivered.delete(nodeUrn);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
