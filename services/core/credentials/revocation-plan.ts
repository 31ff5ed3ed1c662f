/**
 * What an issuer sends a receiver of its revocation list, so that no message
 * outgrows what a server takes (1 MiB by default): the whole list when it is
 * small (as before deltas, readable by every receiver); else the entries added
 * since the version the receiver holds, as signed deltas of bounded size; and
 * a snapshot — deltas from version 0 — when the receiver is new or its
 * version is unknown. Only the last message carries `iat` / `next_update`
 * (revocation-delta.ts), so a receiver is fresh only once it has all of them.
 */
import type { KeyObject } from 'node:crypto';
import { thumbprintOf, toPublicJwk } from './keys.js';
import { emptyRevocationList, isExpiredEntry, signRevocationList, type RevocationEntry, type RevocationValidity } from './revocation.js';
import { signRevocationDelta } from './revocation-delta.js';
import type { RevocationStore } from './revocation-store.js';

/** Most bytes of one signed list or delta: well under every server's receive limit. */
export const MAX_UPDATE_BYTES = 192 * 1024;
/** Most bytes of signed updates one call carries (several updates may share a call). */
export const MAX_CALL_BYTES = 512 * 1024;
/** Most updates one call carries (node managers take 64). */
export const MAX_UPDATES_PER_CALL = 64;

// Header, key, signature and field names around the entries, base64url included (generous: RSA keys).
const OVERHEAD_BYTES = 2048;

/** What {@link planUpdates} is asked. */
export interface UpdatePlanRequest {
  readonly revocations: Pick<RevocationStore, 'list' | 'entriesSince'>;
  readonly privateKey: KeyObject;
  readonly iss?: string;
  /** The version the receiver holds; undefined when not known (a snapshot is sent). */
  readonly from?: number;
  /** The stamp of the last message. */
  readonly validity: RevocationValidity;
  readonly maxBytes?: number;
}

/** The messages to send, in order. */
export interface UpdatePlan {
  /** `list`: the whole list in one message; `snapshot`: deltas from 0; `delta`: deltas from `from`. */
  readonly kind: 'list' | 'snapshot' | 'delta';
  /** The version the receiver holds once it took them all. */
  readonly version: number;
  readonly messages: readonly string[];
}

function entryBytes(e: RevocationEntry): number {
  // Base64url makes 4 bytes of 3; a comma between entries.
  return Math.ceil(((Buffer.byteLength(JSON.stringify(e)) + 1) * 4) / 3);
}

/** Plans the signed messages that bring a receiver at `from` to the issuer's current list. */
export function planUpdates(r: UpdatePlanRequest): UpdatePlan {
  const maxBytes = r.maxBytes ?? MAX_UPDATE_BYTES;
  const budget = maxBytes - OVERHEAD_BYTES;
  if (budget < 1024) throw new RangeError('maxBytes is too small for a revocation update');
  const kid = thumbprintOf(toPublicJwk(r.privateKey));
  const held = r.revocations.list(kid) ?? emptyRevocationList(r.privateKey, r.iss);
  // Entries of credentials expired by the signing time are left out (compaction may not have run yet).
  const live = (e: RevocationEntry) => !isExpiredEntry(e, r.validity.iat);
  const list = held.entries.every(live) ? held : { ...held, entries: held.entries.filter(live) };
  let whole = 0;
  for (const e of list.entries) {
    whole += entryBytes(e);
    if (whole > budget) break;
  }
  if (whole <= budget) return { kind: 'list', version: list.version, messages: [signRevocationList(list, r.privateKey, r.validity)] };

  const known = r.from !== undefined && r.from <= list.version;
  const base0 = known ? (r.from as number) : 0;
  const items = r.revocations.entriesSince(kid, base0).filter((x) => live(x.entry));
  const messages: string[] = [];
  let base = base0;
  let chunk: RevocationEntry[] = [];
  let bytes = 0;
  for (let i = 0; i < items.length; i++) {
    const { entry, v } = items[i] as { entry: RevocationEntry; v: number };
    chunk.push(entry);
    bytes += entryBytes(entry);
    const nextV = items[i + 1]?.v;
    // A part ends between two versions only (never inside one), once the next entry could overflow it.
    if (nextV !== undefined && nextV !== v && bytes + entryBytes(items[i + 1]!.entry) > budget) {
      messages.push(
        signRevocationDelta(r.privateKey, { ...(list.iss !== undefined ? { iss: list.iss } : {}), base, version: v, entries: chunk }),
      );
      base = v;
      chunk = [];
      bytes = 0;
    }
  }
  messages.push(
    signRevocationDelta(r.privateKey, {
      ...(list.iss !== undefined ? { iss: list.iss } : {}),
      base,
      version: list.version,
      entries: chunk,
      validity: r.validity,
    }),
  );
  return { kind: known ? 'delta' : 'snapshot', version: list.version, messages };
}

/** Groups messages into calls of at most {@link MAX_CALL_BYTES} and {@link MAX_UPDATES_PER_CALL}, order kept. */
export function groupForCalls(messages: readonly string[]): string[][] {
  const calls: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const m of messages) {
    if (current.length && (bytes + m.length > MAX_CALL_BYTES || current.length >= MAX_UPDATES_PER_CALL)) {
      calls.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += m.length;
  }
  if (current.length) calls.push(current);
  return calls;
}
