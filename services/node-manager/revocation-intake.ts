/**
 * UpdateRevocations on a node: which signed revocation lists the node takes.
 * A list counts here only where its key signs chains the node accepts: a slice
 * authority's key roots the chains of its slices on this node, and the node's
 * management authority (the holder of the owner → MA chain, which proves its
 * key over TLS) signs the delegations it makes under the owner's chain. So a
 * list is taken when its key is that of a slice authority of a sliver here, or
 * the key of the node's own MA when the MA itself makes the call. A list whose
 * `next_update` has already passed is refused as stale at once: it cannot make
 * the issuer's chains pass again (docs/api.md, Revocation freshness).
 *
 * A signed delta (`fedlab-revocations-delta+jwt`, same issuer rules) is
 * applied in place when the node holds at least its base version; one whose
 * base is above what the node holds is skipped (its sender then sends the
 * missing parts or a snapshot). The lists of one call are taken in order, so
 * the parts of a snapshot may travel together.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { CallContext } from '../core/rpc/context.js';
import type { Clock } from '../core/clock.js';
import { staleListMessage, type RevocationStore } from '../core/credentials/index.js';
import {
  applyRevocationDelta,
  parseSignedRevocationUpdate,
  updateSummary,
  type RevocationUpdate,
} from '../core/credentials/revocation-delta.js';
import type { ImportOutcome } from '../core/credentials/revocation-store.js';
import type { Grant } from './access.js';

/** Most revocation lists one UpdateRevocations call may carry. */
export const MAX_REVOCATION_LISTS = 64;

/** What {@link takeRevocationLists} needs of the node. */
export interface RevocationIntake {
  /** The node's store (`importUpdate` applies deltas in place; without it a delta is applied and the whole list imported). */
  readonly revocations: Pick<RevocationStore, 'importList' | 'list'> & Partial<Pick<RevocationStore, 'importUpdate'>>;
  /** Key thumbprints of the slice authorities of the slivers here. */
  readonly sliceAuthorityKids: () => ReadonlySet<string>;
  /** The node's management authority (its URN; empty when the node has none configured). */
  readonly maUrn: string;
  readonly clock: Clock;
}

/** What an UpdateRevocations call took. */
export interface IntakeResult {
  installed: number;
  current: number;
  skipped: number;
}

function parseAll(signedLists: readonly string[]): RevocationUpdate[] {
  if (signedLists.length > MAX_REVOCATION_LISTS)
    throw new InvalidArgumentError(`at most ${MAX_REVOCATION_LISTS} lists per call`, { field: 'signed_lists' });
  return signedLists.map((jws, i) => {
    try {
      return parseSignedRevocationUpdate(jws);
    } catch (err) {
      throw new InvalidArgumentError(`signed_lists[${i}]: ${(err as Error).message}`, { field: 'signed_lists' });
    }
  });
}

async function importUpdate(r: RevocationIntake['revocations'], u: RevocationUpdate, nowS: number): Promise<ImportOutcome> {
  if (r.importUpdate) return r.importUpdate(u, nowS);
  if (u.kind === 'list') return (await r.importList(u.list)) ? 'installed' : 'current';
  const out = applyRevocationDelta(r.list(u.delta.kid), u.delta, nowS);
  if (out.kind !== 'applied') return out.kind;
  return (await r.importList(out.list)) ? 'installed' : 'current';
}

/**
 * Installs each list of an authorised UpdateRevocations call (`grant`: its owner-rooted chain) that
 * is of an issuer this node takes lists of, not already past `next_update`, and fresher than the one
 * held. A list that is not even a signed list is INVALID_ARGUMENT, and then nothing is installed.
 */
export async function takeRevocationLists(
  o: RevocationIntake,
  ctx: CallContext,
  grant: Grant,
  signedLists: readonly string[],
): Promise<IntakeResult> {
  const lists = parseAll(signedLists);
  const anchors = new Set(o.sliceAuthorityKids());
  // The node's own MA hands over its own list (signed by the key it holds the owner's chain with).
  if (grant.root === 'owner' && o.maUrn !== '' && grant.holder === o.maUrn && ctx.peer.urn === o.maUrn) anchors.add(ctx.peer.thumbprint);
  const nowS = o.clock.now() / 1000;
  const out: IntakeResult = { installed: 0, current: 0, skipped: 0 };
  for (const update of lists) {
    const u = updateSummary(update);
    const issuer = u.issuer;
    if (!anchors.has(u.kid)) out.skipped++;
    else if (u.nextUpdate !== undefined && u.nextUpdate <= nowS) {
      out.skipped++;
      ctx.log.warn(
        { issuer, version: u.version, nextUpdate: u.nextUpdate },
        `stale revocation list refused: ${staleListMessage({ issuer, version: u.version, nextUpdate: u.nextUpdate, refuseAfter: u.nextUpdate })}`,
      );
    } else {
      const taken = await importUpdate(o.revocations, update, Math.floor(nowS));
      if (taken === 'installed') {
        out.installed++;
        ctx.log.info(
          { issuer, base: u.base, version: u.version, entries: u.entries, nextUpdate: u.nextUpdate },
          'revocation list installed',
        );
      } else if (taken === 'current') out.current++;
      else {
        out.skipped++;
        ctx.log.info(
          { issuer, base: u.base, version: u.version, held: o.revocations.list(u.kid)?.version ?? 0 },
          'revocation delta skipped: its base is above the version held here',
        );
      }
    }
  }
  return out;
}
