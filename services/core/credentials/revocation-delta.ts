/**
 * Revocation deltas: what changed in an issuer's list between two versions,
 * signed by the issuer like the list itself (compact JWS, `typ`
 * `fedlab-revocations-delta+jwt`), so that every hop still checks the
 * issuer's signature and no message carries the whole list. A delta names the
 * `base` version it applies to and the `version` it brings the list to, with
 * the entries added in between that are still live (compaction may have
 * dropped some). A holder at any version from `base` up applies it (adding is
 * a union, so a repeat changes nothing); a holder below `base` has a gap and
 * needs an earlier delta or a snapshot — a delta from base 0, sent in parts.
 *
 * Only a delta that carries `iat` / `next_update` moves the holder's
 * freshness on: the issuer stamps the last part of an update only, so a
 * holder that got the first parts of a snapshot and not the rest is not told
 * its list is fresh.
 */
import type { KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { algForKey } from '../identity/keys.js';
import { isUrn } from '../identity/urn.js';
import { decodeBase64url } from './base64url.js';
import { algOfJwk, keyObjectFor, publicJwkProblem, signBytes, thumbprintOf, toPublicJwk, verifySignature, type PublicJwk } from './keys.js';
import {
  checkRevocationEntry,
  isExpiredEntry,
  parseSignedRevocationList,
  REVOCATION_TYP,
  type RevocationEntry,
  type RevocationList,
  type RevocationValidity,
} from './revocation.js';
import { parseStrictJsonObject } from './strict-json.js';

/** The `typ` of a signed revocation delta. */
export const REVOCATION_DELTA_TYP = 'fedlab-revocations-delta+jwt';

/** What changed in one issuer's list from `base` to `version`. */
export interface RevocationDelta {
  readonly v: 1;
  readonly iss?: string;
  readonly jwk: PublicJwk;
  readonly kid: string;
  /** The version a holder must have at least for this delta to apply. */
  readonly base: number;
  /** The list's version once applied. */
  readonly version: number;
  /** Entries added after `base` up to `version` that are still live. */
  readonly entries: readonly RevocationEntry[];
  readonly iat?: number;
  readonly next_update?: number;
}

/** A signed update as it travels: a whole list or a delta. */
export type RevocationUpdate =
  { readonly kind: 'list'; readonly list: RevocationList } | { readonly kind: 'delta'; readonly delta: RevocationDelta };

const FIELDS = ['v', 'iss', 'jwk', 'kid', 'base', 'version', 'entries', 'iat', 'next_update'];

/** Checks a delta (throws InvalidArgumentError). */
export function checkRevocationDelta(value: unknown): RevocationDelta {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError('a revocation delta must be an object');
  const d = value as Record<string, unknown>;
  for (const k of Object.keys(d))
    if (!FIELDS.includes(k)) throw new InvalidArgumentError(`revocation delta: unknown field ${JSON.stringify(k.slice(0, 20))}`);
  if (d.v !== 1) throw new InvalidArgumentError('revocation delta: v must be 1');
  if (d.iss !== undefined && (typeof d.iss !== 'string' || !isUrn(d.iss)))
    throw new InvalidArgumentError('revocation delta: iss must be a Fedlab URN');
  const problem = publicJwkProblem(d.jwk);
  if (problem) throw new InvalidArgumentError(`revocation delta: jwk ${problem}`);
  const jwk = d.jwk as PublicJwk;
  if (d.kid !== thumbprintOf(jwk)) throw new InvalidArgumentError("revocation delta: kid is not the thumbprint of the delta's key");
  if (!Number.isSafeInteger(d.base) || (d.base as number) < 0)
    throw new InvalidArgumentError('revocation delta: base must be a non-negative integer');
  if (!Number.isSafeInteger(d.version) || (d.version as number) < (d.base as number))
    throw new InvalidArgumentError('revocation delta: version must be an integer of at least base');
  if (!Array.isArray(d.entries)) throw new InvalidArgumentError('revocation delta: entries must be a list');
  // Each added entry raised the version by one: a delta cannot hold more than it spans.
  if (d.entries.length > (d.version as number) - (d.base as number))
    throw new InvalidArgumentError('revocation delta: more entries than versions between base and version');
  const entries = d.entries.map((e, i) => checkRevocationEntry(e, `revocation delta entry ${i}`));
  if ((d.iat === undefined) !== (d.next_update === undefined))
    throw new InvalidArgumentError('revocation delta: iat and next_update go together');
  if (d.iat !== undefined) {
    if (!Number.isSafeInteger(d.iat) || (d.iat as number) < 0 || !Number.isSafeInteger(d.next_update))
      throw new InvalidArgumentError('revocation delta: iat and next_update must be whole seconds since the epoch');
    if ((d.next_update as number) <= (d.iat as number)) throw new InvalidArgumentError('revocation delta: next_update must be after iat');
  }
  return {
    v: 1,
    ...(d.iss !== undefined ? { iss: d.iss as string } : {}),
    jwk,
    kid: d.kid as string,
    base: d.base as number,
    version: d.version as number,
    entries,
    ...(d.iat !== undefined ? { iat: d.iat as number, next_update: d.next_update as number } : {}),
  };
}

/** What {@link signRevocationDelta} signs. */
export interface DeltaContent {
  readonly iss?: string;
  readonly base: number;
  readonly version: number;
  readonly entries: readonly RevocationEntry[];
  /** Only the last part of an update carries it (see the module comment). */
  readonly validity?: RevocationValidity;
}

/** Signs a delta with the issuer's private key. */
export function signRevocationDelta(privateKey: KeyObject, c: DeltaContent): string {
  const jwk = toPublicJwk(privateKey);
  const checked = checkRevocationDelta({
    v: 1,
    ...(c.iss !== undefined ? { iss: c.iss } : {}),
    jwk,
    kid: thumbprintOf(jwk),
    base: c.base,
    version: c.version,
    entries: c.entries,
    ...(c.validity ? { iat: c.validity.iat, next_update: c.validity.nextUpdate } : {}),
  });
  const alg = algForKey(privateKey);
  const header = Buffer.from(JSON.stringify({ alg, typ: REVOCATION_DELTA_TYP, kid: checked.kid })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(checked)).toString('base64url');
  const input = `${header}.${payload}`;
  return `${input}.${signBytes(alg, privateKey, input).toString('base64url')}`;
}

function headerTyp(jws: string): unknown {
  const h64 = jws.trim().split('.')[0] ?? '';
  const hb = decodeBase64url(h64);
  if (!hb) return undefined;
  const h = parseStrictJsonObject(hb);
  return h.ok ? h.value.typ : undefined;
}

/** Reads a signed delta: strict header, a signature by the key inside, a well-formed delta. Throws InvalidArgumentError. */
export function parseSignedRevocationDelta(jws: string): RevocationDelta {
  const parts = jws.trim().split('.');
  if (parts.length !== 3) throw new InvalidArgumentError('a signed revocation delta is one compact JWS');
  const [h64, p64, s64] = parts as [string, string, string];
  const hb = decodeBase64url(h64);
  const pb = decodeBase64url(p64);
  const sig = decodeBase64url(s64);
  if (!hb || !pb || !sig) throw new InvalidArgumentError('revocation delta: not canonical base64url');
  const h = parseStrictJsonObject(hb);
  const p = parseStrictJsonObject(pb);
  if (!h.ok || !p.ok) throw new InvalidArgumentError('revocation delta: header or payload is not strict JSON');
  if (Object.keys(h.value).sort().join(',') !== 'alg,kid,typ' || h.value.typ !== REVOCATION_DELTA_TYP)
    throw new InvalidArgumentError(`revocation delta: header must be exactly alg, typ ${REVOCATION_DELTA_TYP}, kid`);
  const delta = checkRevocationDelta(p.value);
  if (h.value.kid !== delta.kid || h.value.alg !== algOfJwk(delta.jwk))
    throw new InvalidArgumentError("revocation delta: header does not match the delta's key");
  if (!verifySignature(algOfJwk(delta.jwk), keyObjectFor(delta.jwk, delta.kid), `${h64}.${p64}`, sig))
    throw new InvalidArgumentError('revocation delta: the signature does not verify; it was altered or not signed by its issuer');
  return delta;
}

/** Reads a signed list or delta (by its header's `typ`). Throws InvalidArgumentError. */
export function parseSignedRevocationUpdate(jws: string): RevocationUpdate {
  const typ = headerTyp(jws);
  if (typ === REVOCATION_DELTA_TYP) return { kind: 'delta', delta: parseSignedRevocationDelta(jws) };
  if (typ !== undefined && typ !== REVOCATION_TYP)
    throw new InvalidArgumentError(`a signed revocation update has typ ${REVOCATION_TYP} or ${REVOCATION_DELTA_TYP}`);
  return { kind: 'list', list: parseSignedRevocationList(jws) };
}

/** Issuer, key, version and freshness of an update, whichever its kind. */
export function updateSummary(u: RevocationUpdate): {
  readonly kid: string;
  readonly issuer: string;
  readonly base: number;
  readonly version: number;
  readonly entries: number;
  readonly iat?: number;
  readonly nextUpdate?: number;
} {
  const x = u.kind === 'list' ? u.list : u.delta;
  return {
    kid: x.kid,
    issuer: x.iss ?? x.kid,
    base: u.kind === 'list' ? 0 : u.delta.base,
    version: x.version,
    entries: x.entries.length,
    ...(x.iat !== undefined ? { iat: x.iat, nextUpdate: x.next_update } : {}),
  };
}

/**
 * The stamp of a list begun from nothing by an unstamped part (the first parts of a snapshot): long
 * expired, so the verifier fails closed for its issuer until the stamped last part arrives — a list
 * without a stamp would never go stale.
 */
export const INCOMPLETE_STAMP = Object.freeze({ iat: 0, next_update: 1 });

/** What applying a delta to a held list gives. */
export type DeltaOutcome =
  /** The held list is below the delta's base: an earlier delta or a snapshot is needed first. */
  | { readonly kind: 'gap' }
  /** Nothing new (an older or equal version, not signed later). */
  | { readonly kind: 'current' }
  /** The new list and the entries it gained (none when only its freshness moved on). */
  | { readonly kind: 'applied'; readonly list: RevocationList; readonly added: readonly RevocationEntry[] };

function entryId(e: RevocationEntry): string {
  return e.jti !== undefined ? `jti:${e.jti}` : `kid:${e.kid}`;
}

/**
 * Applies `d` to `held` (same issuer; undefined: nothing held, version 0). Entries already expired at
 * `nowS` are not added. The result keeps the held `iat` / `next_update` when the delta has none (an
 * unstamped delta over nothing held gives {@link INCOMPLETE_STAMP}).
 */
export function applyRevocationDelta(held: RevocationList | undefined, d: RevocationDelta, nowS: number): DeltaOutcome {
  if (held && held.kid !== d.kid) throw new TypeError('a delta applies to its own issuer only');
  const heldVersion = held?.version ?? 0;
  if (d.base > heldVersion) return { kind: 'gap' };
  const newerStamp = d.iat !== undefined && d.iat > (held?.iat ?? -1);
  if (d.version < heldVersion || (d.version === heldVersion && !newerStamp)) return { kind: 'current' };
  const have = new Set((held?.entries ?? []).map(entryId));
  const added = d.version > heldVersion ? d.entries.filter((e) => !have.has(entryId(e)) && !isExpiredEntry(e, nowS)) : [];
  const stamp =
    d.iat !== undefined
      ? { iat: d.iat, next_update: d.next_update as number }
      : held?.iat !== undefined
        ? { iat: held.iat, next_update: held.next_update as number }
        : held
          ? {}
          : INCOMPLETE_STAMP;
  const iss = d.iss ?? held?.iss;
  const list: RevocationList = {
    v: 1,
    ...(iss !== undefined ? { iss } : {}),
    jwk: d.jwk,
    kid: d.kid,
    version: Math.max(heldVersion, d.version),
    entries: added.length ? [...(held?.entries ?? []), ...added] : (held?.entries ?? []),
    ...stamp,
  };
  return { kind: 'applied', list, added };
}
