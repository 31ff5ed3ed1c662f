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
 */
import type { KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { algForKey } from '../identity/keys.js';
import { isUrn } from '../identity/urn.js';
import { decodeBase64url } from './base64url.js';
import { defaultChainCache, type ChainCache } from './cache.js';
import { algOfJwk, keyObjectFor, publicJwkProblem, signBytes, thumbprintOf, toPublicJwk, verifySignature, type PublicJwk } from './keys.js';
import { parseStrictJsonObject } from './strict-json.js';

/** The `typ` of a signed revocation list. */
export const REVOCATION_TYP = 'fedlab-revocations+jwt';

/** One revoked credential (`jti`) or key (`kid`: RFC 7638 thumbprint). */
export type RevocationEntry =
  | { readonly jti: string; readonly kid?: undefined; readonly reason: string; readonly time: number }
  | { readonly kid: string; readonly jti?: undefined; readonly reason: string; readonly time: number };

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
}

/** What the verifier asks of one issuer's list. */
export interface RevocationIndex {
  readonly jtis: ReadonlySet<string>;
  readonly keys: ReadonlySet<string>;
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
  const keys = Object.keys(r).sort().join(',');
  if (keys !== 'jti,reason,time' && keys !== 'kid,reason,time')
    throw new InvalidArgumentError(`${where} must hold exactly jti or kid, reason and time`);
  if (r.jti !== undefined && (typeof r.jti !== 'string' || !JTI.test(r.jti)))
    throw new InvalidArgumentError(`${where}: jti must be a credential id (22 base64url characters)`);
  if (r.kid !== undefined && (typeof r.kid !== 'string' || !KID.test(r.kid)))
    throw new InvalidArgumentError(`${where}: kid must be a key thumbprint (43 base64url characters)`);
  if (typeof r.reason !== 'string' || r.reason.length > MAX_REASON)
    throw new InvalidArgumentError(`${where}: reason must be text of at most ${MAX_REASON} characters`);
  if (!Number.isSafeInteger(r.time) || (r.time as number) < 0)
    throw new InvalidArgumentError(`${where}: time must be whole seconds since the epoch`);
  return r.jti !== undefined
    ? { jti: r.jti as string, reason: r.reason, time: r.time as number }
    : { kid: r.kid as string, reason: r.reason, time: r.time as number };
}

/** Checks a whole list (throws InvalidArgumentError). */
export function checkRevocationList(value: unknown): RevocationList {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError('a revocation list must be an object');
  const l = value as Record<string, unknown>;
  for (const k of Object.keys(l))
    if (!['v', 'iss', 'jwk', 'kid', 'version', 'entries'].includes(k))
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
  return {
    v: 1,
    ...(l.iss !== undefined ? { iss: l.iss as string } : {}),
    jwk,
    kid: l.kid as string,
    version: l.version as number,
    entries,
  };
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
  return { ...list, version: list.version + 1, entries: [...list.entries, e] };
}

/** Signs a list with its issuer's private key (which must be the list's key). */
export function signRevocationList(list: RevocationList, privateKey: KeyObject): string {
  const checked = checkRevocationList(list);
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

function indexOf(list: RevocationList): RevocationIndex {
  const jtis = new Set<string>();
  const keys = new Set<string>();
  for (const e of list.entries) {
    if (e.jti !== undefined) jtis.add(e.jti);
    else keys.add(e.kid);
  }
  return { jtis, keys };
}

/**
 * The revocation lists a service knows, in memory, by issuer key. A list is
 * replaced only by a higher version. Every newly revoked item clears the
 * cached prefixes it touches.
 */
export class RevocationSet implements RevocationLookup {
  private readonly lists = new Map<string, Indexed>();
  private readonly listeners = new Set<(item: RevokedItem) => void>();
  private readonly cache: ChainCache | null;

  constructor(options: { readonly cache?: ChainCache | null } = {}) {
    this.cache = options.cache === undefined ? defaultChainCache : options.cache;
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
   * Installs a list (checked) if it is newer than the one held; returns true
   * when it was installed. An older version is ignored (no rollback).
   */
  put(list: RevocationList): boolean {
    const checked = checkRevocationList(list);
    const old = this.lists.get(checked.kid);
    if (old && checked.version <= old.list.version) return false;
    const index = indexOf(checked);
    this.lists.set(checked.kid, { list: checked, index });
    for (const jti of index.jtis) if (!old?.index.jtis.has(jti)) this.announce({ jti, issuerKid: checked.kid });
    for (const kid of index.keys) if (!old?.index.keys.has(kid)) this.announce({ kid, issuerKid: checked.kid });
    return true;
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
