/**
 * Revocation lists. Each issuer keeps one list, identified by the key it signs
 * with: entries name a credential (`jti`) or a key (its RFC 7638 thumbprint),
 * with a reason and a time, and the list has a version that only goes up.
 * The verifier consults the list of every key that signed a link of the chain
 * (root included): a revoked jti or key anywhere in the chain fails it.
 *
 * On disk (for the offline CLI) a list is a compact JWS signed by the
 * issuer's key, the public key inside, so it cannot be altered unnoticed;
 * services keep theirs in LevelDB (revocation-store.ts).
 *
 * A signed list may carry `iat` and `next_update` (seconds): the issuer
 * promises a fresher list before `next_update`. A verifier holding such a list
 * refuses, past `next_update` plus its grace, every chain with a link signed
 * by that issuer (UNAVAILABLE), until a fresher list arrives: a verifier cut
 * off from an issuer fails closed instead of trusting a list that may miss
 * revocations. Lists without them (older issuers) never go stale.
 */
import type { KeyObject } from 'node:crypto';
import { InvalidArgumentError, UnavailableError } from '../errors.js';
import { algForKey } from '../identity/keys.js';
import { isUrn } from '../identity/urn.js';
import { decodeBase64url } from './base64url.js';
import { defaultChainCache, type ChainCache } from './cache.js';
import { algOfJwk, keyObjectFor, publicJwkProblem, signBytes, thumbprintOf, toPublicJwk, verifySignature, type PublicJwk } from './keys.js';
import { parseStrictJsonObject } from './strict-json.js';

/** The `typ` of a signed revocation list. */
export const REVOCATION_TYP = 'fedlab-revocations+jwt';

/**
 * One revoked credential (`jti`) or key (`kid`: RFC 7638 thumbprint). `exp` (s since the epoch), when
 * known, is the revoked credential's own expiry: past it the credential fails by time anyway, so the
 * entry is dropped from the list (compaction). Keys and credentials of unknown expiry carry none.
 */
export type RevocationEntry =
  | { readonly jti: string; readonly kid?: undefined; readonly reason: string; readonly time: number; readonly exp?: number }
  | { readonly kid: string; readonly jti?: undefined; readonly reason: string; readonly time: number; readonly exp?: number };

/**
 * Seconds an entry is kept past its credential's `exp`: verifiers accept a little clock skew, so an
 * entry leaves only once no verifier could still take the credential.
 */
export const EXPIRED_ENTRY_MARGIN_S = 600;

/** Whether an entry may be dropped at `nowS` (its credential expired more than the margin ago). */
export function isExpiredEntry(e: RevocationEntry, nowS: number): boolean {
  return e.exp !== undefined && e.exp + EXPIRED_ENTRY_MARGIN_S < nowS;
}

/** One issuer's revocation list. */
export interface RevocationList {
  readonly v: 1;
  /** The issuer's URN, when known (informational: lists are found by key). */
  readonly iss?: string;
  /** The issuer's public key; its thumbprint is `kid`. */
  readonly jwk: PublicJwk;
  readonly kid: string;
  /** Goes up by one with every change. */
  readonly version: number;
  readonly entries: readonly RevocationEntry[];
  /** When this signed copy was made (s since the epoch); set with `next_update`, or neither. */
  readonly iat?: number;
  /** The issuer publishes a fresher list before this (s since the epoch). */
  readonly next_update?: number;
}

/** When a signed copy of a list was made and until when it holds (s since the epoch). */
export interface RevocationValidity {
  readonly iat: number;
  readonly nextUpdate: number;
}

/** A held list that promised a fresher one: past `refuseAfter` its issuer's chains are refused. */
export interface RevocationFreshness {
  /** The issuer's URN (its key thumbprint when the list names none). */
  readonly issuer: string;
  readonly version: number;
  /** The list's `next_update` (s since the epoch). */
  readonly nextUpdate: number;
  /** `next_update` plus the verifier's grace (s since the epoch). */
  readonly refuseAfter: number;
}

/** What the verifier asks of one issuer's list. */
export interface RevocationIndex {
  readonly jtis: ReadonlySet<string>;
  readonly keys: ReadonlySet<string>;
  /** Absent for lists without `next_update` (they never go stale). */
  readonly freshness?: RevocationFreshness;
}

/** Where the verifier finds issuers' lists, by the issuer's key thumbprint. */
export interface RevocationLookup {
  listFor(issuerKid: string): RevocationIndex | undefined;
}

/** A lookup with no list: nothing is revoked. */
export const NO_REVOCATIONS: RevocationLookup = Object.freeze({ listFor: () => undefined });

const JTI = /^[A-Za-z0-9_-]{21}[AQgw]$/;
const KID = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const MAX_REASON = 200;

/** Checks one entry (throws InvalidArgumentError). */
export function checkRevocationEntry(e: unknown, where = 'entry'): RevocationEntry {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new InvalidArgumentError(`${where} must be an object`);
  const r = e as Record<string, unknown>;
  const keys = Object.keys(r)
    .filter((k) => k !== 'exp')
    .sort()
    .join(',');
  if (keys !== 'jti,reason,time' && keys !== 'kid,reason,time')
    throw new InvalidArgumentError(`${where} must hold exactly jti or kid, reason and time (and optionally exp)`);
  if (r.jti !== undefined && (typeof r.jti !== 'string' || !JTI.test(r.jti)))
    throw new InvalidArgumentError(`${where}: jti must be a credential id (22 base64url characters)`);
  if (r.kid !== undefined && (typeof r.kid !== 'string' || !KID.test(r.kid)))
    throw new InvalidArgumentError(`${where}: kid must be a key thumbprint (43 base64url characters)`);
  if (typeof r.reason !== 'string' || r.reason.length > MAX_REASON)
    throw new InvalidArgumentError(`${where}: reason must be text of at most ${MAX_REASON} characters`);
  if (!Number.isSafeInteger(r.time) || (r.time as number) < 0)
    throw new InvalidArgumentError(`${where}: time must be whole seconds since the epoch`);
  if (r.exp !== undefined && (!Number.isSafeInteger(r.exp) || (r.exp as number) < 0))
    throw new InvalidArgumentError(`${where}: exp must be whole seconds since the epoch`);
  const exp = r.exp !== undefined ? { exp: r.exp as number } : {};
  return r.jti !== undefined
    ? { jti: r.jti as string, reason: r.reason, time: r.time as number, ...exp }
    : { kid: r.kid as string, reason: r.reason, time: r.time as number, ...exp };
}

/** Checks a whole list (throws InvalidArgumentError). */
export function checkRevocationList(value: unknown): RevocationList {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError('a revocation list must be an object');
  const l = value as Record<string, unknown>;
  for (const k of Object.keys(l))
    if (!['v', 'iss', 'jwk', 'kid', 'version', 'entries', 'iat', 'next_update'].includes(k))
      throw new InvalidArgumentError(`revocation list: unknown field ${JSON.stringify(k.slice(0, 20))}`);
  if (l.v !== 1) throw new InvalidArgumentError('revocation list: v must be 1');
  if (l.iss !== undefined && (typeof l.iss !== 'string' || !isUrn(l.iss)))
    throw new InvalidArgumentError('revocation list: iss must be a Fedlab URN');
  const problem = publicJwkProblem(l.jwk);
  if (problem) throw new InvalidArgumentError(`revocation list: jwk ${problem}`);
  const jwk = l.jwk as PublicJwk;
  if (l.kid !== thumbprintOf(jwk)) throw new InvalidArgumentError("revocation list: kid is not the thumbprint of the list's key");
  if (!Number.isSafeInteger(l.version) || (l.version as number) < 0)
    throw new InvalidArgumentError('revocation list: version must be a non-negative integer');
  if (!Array.isArray(l.entries)) throw new InvalidArgumentError('revocation list: entries must be a list');
  const entries = l.entries.map((e, i) => checkRevocationEntry(e, `revocation list entry ${i}`));
  if ((l.iat === undefined) !== (l.next_update === undefined))
    throw new InvalidArgumentError('revocation list: iat and next_update go together');
  if (l.iat !== undefined) {
    if (!Number.isSafeInteger(l.iat) || (l.iat as number) < 0 || !Number.isSafeInteger(l.next_update))
      throw new InvalidArgumentError('revocation list: iat and next_update must be whole seconds since the epoch');
    if ((l.next_update as number) <= (l.iat as number)) throw new InvalidArgumentError('revocation list: next_update must be after iat');
  }
  return {
    v: 1,
    ...(l.iss !== undefined ? { iss: l.iss as string } : {}),
    jwk,
    kid: l.kid as string,
    version: l.version as number,
    entries,
    ...(l.iat !== undefined ? { iat: l.iat as number, next_update: l.next_update as number } : {}),
  };
}

/**
 * Whether `list` should replace `held` (same issuer): a higher version, or the same version signed
 * later (a re-publication that only moves `next_update` on). Never a rollback.
 */
export function isFresherList(list: RevocationList, held: RevocationList | undefined): boolean {
  if (!held) return true;
  if (list.version !== held.version) return list.version > held.version;
  return list.iat !== undefined && list.iat > (held.iat ?? -1);
}

/** The message of a refusal under a stale list (what UNAVAILABLE says). */
export function staleListMessage(f: RevocationFreshness): string {
  return `revocation list of ${f.issuer} version ${f.version} expired at ${new Date(f.nextUpdate * 1000).toISOString()}; refusing its chains until a fresher list arrives`;
}

/** UnavailableError naming a stale list (the verifier throws it; see {@link RevocationFreshness}). */
export function staleListError(f: RevocationFreshness): UnavailableError {
  return new UnavailableError(staleListMessage(f), { rule: 'revocation-list-stale', issuer: f.issuer, version: f.version });
}

/** A new, empty list for the issuer whose private (or public) key is given. */
export function emptyRevocationList(key: KeyObject | PublicJwk, iss?: string): RevocationList {
  const jwk = toPublicJwk(key as KeyObject);
  if (iss !== undefined && !isUrn(iss)) throw new InvalidArgumentError('the issuer must be a Fedlab URN');
  return { v: 1, ...(iss !== undefined ? { iss } : {}), jwk, kid: thumbprintOf(jwk), version: 0, entries: [] };
}

/** The list with one more entry and its version raised; revoking what is already revoked changes nothing. */
export function withRevocation(list: RevocationList, entry: RevocationEntry): RevocationList {
  const e = checkRevocationEntry(entry);
  if (list.entries.some((x) => (e.jti !== undefined && x.jti === e.jti) || (e.kid !== undefined && x.kid === e.kid))) return list;
  // The new version is a new list: a signed copy's iat / next_update do not carry over.
  const { iat: _iat, next_update: _next, ...rest } = list;
  return { ...rest, version: list.version + 1, entries: [...list.entries, e] };
}

/**
 * Signs a list with its issuer's private key (which must be the list's key); with `validity`, the
 * signed copy carries `iat` and `next_update` (covered by the signature).
 */
export function signRevocationList(list: RevocationList, privateKey: KeyObject, validity?: RevocationValidity): string {
  const { iat: _iat, next_update: _next, ...bare } = list;
  const checked = checkRevocationList(validity ? { ...bare, iat: validity.iat, next_update: validity.nextUpdate } : list);
  const jwk = toPublicJwk(privateKey);
  if (thumbprintOf(jwk) !== checked.kid) throw new InvalidArgumentError("the key is not the revocation list's issuer key");
  const alg = algForKey(privateKey);
  const header = Buffer.from(JSON.stringify({ alg, typ: REVOCATION_TYP, kid: checked.kid })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(checked)).toString('base64url');
  const input = `${header}.${payload}`;
  return `${input}.${signBytes(alg, privateKey, input).toString('base64url')}`;
}

/** Reads a signed list: strict header, a signature by the key inside, a well-formed list. Throws InvalidArgumentError. */
export function parseSignedRevocationList(jws: string): RevocationList {
  const parts = jws.trim().split('.');
  if (parts.length !== 3) throw new InvalidArgumentError('a signed revocation list is one compact JWS');
  const [h64, p64, s64] = parts as [string, string, string];
  const hb = decodeBase64url(h64);
  const pb = decodeBase64url(p64);
  const sig = decodeBase64url(s64);
  if (!hb || !pb || !sig) throw new InvalidArgumentError('revocation list: not canonical base64url');
  const h = parseStrictJsonObject(hb);
  const p = parseStrictJsonObject(pb);
  if (!h.ok || !p.ok) throw new InvalidArgumentError('revocation list: header or payload is not strict JSON');
  const header = h.value;
  if (Object.keys(header).sort().join(',') !== 'alg,kid,typ' || header.typ !== REVOCATION_TYP)
    throw new InvalidArgumentError(`revocation list: header must be exactly alg, typ ${REVOCATION_TYP}, kid`);
  const list = checkRevocationList(p.value);
  if (header.kid !== list.kid || header.alg !== algOfJwk(list.jwk))
    throw new InvalidArgumentError("revocation list: header does not match the list's key");
  if (!verifySignature(algOfJwk(list.jwk), keyObjectFor(list.jwk, list.kid), `${h64}.${p64}`, sig)) {
    throw new InvalidArgumentError('revocation list: the signature does not verify; the file was altered or not signed by its issuer');
  }
  return list;
}

/** An entry as a listener sees it. */
export type RevokedItem = { readonly jti?: string; readonly kid?: string; readonly issuerKid: string };

interface Indexed {
  readonly list: RevocationList;
  readonly index: RevocationIndex;
}

function indexOf(list: RevocationList, graceS: number, reuse?: RevocationIndex): RevocationIndex {
  let jtis = reuse?.jtis as Set<string> | undefined;
  let keys = reuse?.keys as Set<string> | undefined;
  if (!jtis || !keys) {
    jtis = new Set<string>();
    keys = new Set<string>();
    for (const e of list.entries) {
      if (e.jti !== undefined) jtis.add(e.jti);
      else keys.add(e.kid);
    }
  }
  if (list.next_update === undefined) return { jtis, keys };
  const freshness: RevocationFreshness = {
    issuer: list.iss ?? list.kid,
    version: list.version,
    nextUpdate: list.next_update,
    refuseAfter: list.next_update + graceS,
  };
  return { jtis, keys, freshness };
}

/** Options of {@link RevocationSet}. */
export interface RevocationSetOptions {
  /** Prefix cache cleared by new revocations (the process-wide one by default, null for none). */
  readonly cache?: ChainCache | null;
  /** Seconds past a list's `next_update` before its issuer's chains are refused (0 by default). */
  readonly graceS?: number;
}

/**
 * The revocation lists a service knows, in memory, by issuer key. A list is
 * replaced only by a fresher one ({@link isFresherList}). Every newly revoked
 * item clears the cached prefixes it touches.
 */
export class RevocationSet implements RevocationLookup {
  private readonly lists = new Map<string, Indexed>();
  private readonly listeners = new Set<(item: RevokedItem) => void>();
  private readonly cache: ChainCache | null;
  private readonly graceS: number;

  constructor(options: RevocationSetOptions = {}) {
    this.cache = options.cache === undefined ? defaultChainCache : options.cache;
    this.graceS = options.graceS ?? 0;
  }

  listFor(issuerKid: string): RevocationIndex | undefined {
    return this.lists.get(issuerKid)?.index;
  }

  /** The list of an issuer key, if known. */
  get(issuerKid: string): RevocationList | undefined {
    return this.lists.get(issuerKid)?.list;
  }

  /** Every known list. */
  all(): RevocationList[] {
    return [...this.lists.values()].map((x) => x.list);
  }

  /**
   * Installs a list (checked) if it is fresher than the one held; returns true
   * when it was installed. An older version is ignored (no rollback).
   */
  put(list: RevocationList): boolean {
    const checked = checkRevocationList(list);
    const old = this.lists.get(checked.kid);
    if (!isFresherList(checked, old?.list)) return false;
    // The same version holds the same entries: only its freshness moves on.
    const index = indexOf(checked, this.graceS, old && old.list.version === checked.version ? old.index : undefined);
    this.lists.set(checked.kid, { list: checked, index });
    for (const jti of index.jtis) if (!old?.index.jtis.has(jti)) this.announce({ jti, issuerKid: checked.kid });
    for (const kid of index.keys) if (!old?.index.keys.has(kid)) this.announce({ kid, issuerKid: checked.kid });
    return true;
  }

  /**
   * Installs `list`, which is the held list (if any) with `added` appended and perhaps a later stamp (a
   * delta applied): the held index grows in place instead of being rebuilt.
   */
  extend(list: RevocationList, added: readonly RevocationEntry[]): void {
    const old = this.lists.get(list.kid);
    const jtis = (old?.index.jtis as Set<string> | undefined) ?? new Set<string>();
    const keys = (old?.index.keys as Set<string> | undefined) ?? new Set<string>();
    const fresh = added.filter((e) => (e.jti !== undefined ? !jtis.has(e.jti) : !keys.has(e.kid)));
    for (const e of fresh) {
      if (e.jti !== undefined) jtis.add(e.jti);
      else keys.add(e.kid);
    }
    this.lists.set(list.kid, { list, index: indexOf(list, this.graceS, { jtis, keys }) });
    for (const e of fresh) this.announce(e.jti !== undefined ? { jti: e.jti, issuerKid: list.kid } : { kid: e.kid, issuerKid: list.kid });
  }

  /** Replaces a held list by the same version with expired entries dropped (no announcement: nothing new is revoked). */
  compacted(list: RevocationList): void {
    const old = this.lists.get(list.kid);
    if (!old || old.list.version !== list.version) throw new TypeError('a compacted list replaces the held list of its version');
    this.lists.set(list.kid, { list, index: indexOf(list, this.graceS) });
  }

  /** Calls `listener` for every item newly revoked; returns a function that stops it. */
  onRevoke(listener: (item: RevokedItem) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private announce(item: RevokedItem): void {
    this.cache?.evict(item);
    for (const l of this.listeners) l(item);
  }
}
