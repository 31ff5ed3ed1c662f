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
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { CallContext } from '../core/rpc/context.js';
import type { Clock } from '../core/clock.js';
import { parseSignedRevocationList, staleListMessage, type RevocationList, type RevocationStore } from '../core/credentials/index.js';
import type { Grant } from './access.js';

/** Most revocation lists one UpdateRevocations call may carry. */
export const MAX_REVOCATION_LISTS = 64;

/** What {@link takeRevocationLists} needs of the node. */
export interface RevocationIntake {
  readonly revocations: Pick<RevocationStore, 'importList' | 'list'>;
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

function parseAll(signedLists: readonly string[]): RevocationList[] {
  if (signedLists.length > MAX_REVOCATION_LISTS)
    throw new InvalidArgumentError(`at most ${MAX_REVOCATION_LISTS} lists per call`, { field: 'signed_lists' });
  return signedLists.map((jws, i) => {
    try {
      return parseSignedRevocationList(jws);
    } catch (err) {
      throw new InvalidArgumentError(`signed_lists[${i}]: ${(err as Error).message}`, { field: 'signed_lists' });
    }
  });
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
  for (const list of lists) {
    const issuer = list.iss ?? list.kid;
    if (!anchors.has(list.kid)) out.skipped++;
    else if (list.next_update !== undefined && list.next_update <= nowS) {
      out.skipped++;
      ctx.log.warn(
        { issuer, version: list.version, nextUpdate: list.next_update },
        `stale revocation list refused: ${staleListMessage({ issuer, version: list.version, nextUpdate: list.next_update, refuseAfter: list.next_update })}`,
      );
    } else if (await o.revocations.importList(list)) {
      out.installed++;
      ctx.log.info({ issuer, version: list.version, nextUpdate: list.next_update }, 'revocation list installed');
    } else out.current++;
  }
  return out;
}
