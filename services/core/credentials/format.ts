/**
 * Credential format v1 (docs/design.md §5): one compact JWS with the protected header
 * exactly `{alg, typ: "fedlab-cred+jwt", kid}` and the claims below. This
 * module reads one link strictly, without any signature work: everything a
 * link can get wrong on its own (encoding, header, claims) is found here and
 * reported with its rule.
 */
import { hash } from 'node:crypto';
import { isUrn, parseTarget, type Target } from '../identity/urn.js';
import type { KeyAlg } from '../identity/keys.js';
import { decodeBase64url, isCanonicalBase64url } from './base64url.js';
import { CredentialInvalidError, type CredentialRule } from './errors.js';
import { publicKeys } from './key-cache.js';
import { transientBase64url } from './scratch.js';
import { publicJwkProblem, signatureShapeProblem, type PublicJwk } from './keys.js';
import { Memo } from './memo.js';
import { parseStrictJsonObject } from './strict-json.js';

/** The `typ` of every credential. */
export const CREDENTIAL_TYP = 'fedlab-cred+jwt';
/** The format version this code reads and writes. */
export const CREDENTIAL_VERSION = 1;
/** At most this many links in a chain ... */
export const MAX_CHAIN_LINKS = 8;
/** ... and this many bytes in all, checked before any signature work. */
export const MAX_CHAIN_BYTES = 16 * 1024;
/** Clock skew tolerated on `nbf` and `exp`, in seconds. */
export const CLOCK_SKEW_S = 60;

/** The closed set of privileges. */
export const PRIVILEGES = [
  'node.read',
  'sliver.create',
  'sliver.delete',
  'sliver.renew',
  'sliver.control',
  'sliver.exec',
  'sliver.read',
  'slice.create',
  'slice.renew',
  'slice.delete',
  'slice.read',
] as const;
/**
 * Every privilege over a node and its slivers: what a node's owner gives its MA by default, and what
 * an MA gives a slice authority when the request names none.
 */
export const NODE_PRIVILEGES: readonly Privilege[] = [
  'node.read',
  'sliver.create',
  'sliver.delete',
  'sliver.renew',
  'sliver.control',
  'sliver.read',
  'sliver.exec',
];
/** One privilege of {@link PRIVILEGES}. */
export type Privilege = (typeof PRIVILEGES)[number];
const PRIVILEGE_SET: ReadonlySet<string> = new Set(PRIVILEGES);

/** True when `p` is a known privilege. */
export function isPrivilege(p: unknown): p is Privilege {
  return typeof p === 'string' && PRIVILEGE_SET.has(p);
}

/** The resource caps a credential can carry. */
export const LIMIT_KEYS = ['slivers', 'cpu_millis', 'mem_mb', 'disk_mb', 'ttl_s'] as const;
export type LimitKey = (typeof LIMIT_KEYS)[number];
/** Resource caps; an absent key inherits the parent's value (on a root: no cap). */
export type Limits = { readonly [K in LimitKey]?: number };
const LIMIT_SET: ReadonlySet<string> = new Set(LIMIT_KEYS);

/** The protected header of a credential. */
export interface CredentialHeader {
  readonly alg: KeyAlg;
  readonly typ: typeof CREDENTIAL_TYP;
  /** RFC 7638 thumbprint of the signing key. */
  readonly kid: string;
}

/** The claims of a credential (docs/design.md §5). */
export interface CredentialClaims {
  readonly v: 1;
  /** 128-bit random id (22 base64url characters); also what revocation names. */
  readonly jti: string;
  readonly iss: string;
  readonly sub: string;
  /** The holder's public key. */
  readonly cnf: { readonly jwk: PublicJwk };
  readonly tgt: readonly string[];
  readonly priv: readonly Privilege[];
  /** How many more delegations may follow. */
  readonly dlg: number;
  readonly lim: Limits;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  /** base64url SHA-256 of the parent's compact JWS; absent on a root. */
  readonly prf?: string;
  /**
   * The slice incarnation the chain is bound to (a slice authority's random id of one life of a slice);
   * optional and additive: absent, the link inherits its parent's (attenuation.ts, rule `inc`).
   */
  readonly inc?: string;
}

/** One link read and checked on its own (no signature verified yet). */
export interface ParsedCredential {
  /** The compact JWS as presented. */
  readonly token: string;
  /** base64url SHA-256 of the compact JWS: what the child's `prf` holds. */
  readonly hash: string;
  readonly header: CredentialHeader;
  readonly claims: CredentialClaims;
  /** The parsed `tgt` patterns. */
  readonly targets: readonly Target[];
  /** RFC 7638 thumbprint of `cnf.jwk`. */
  readonly holderKid: string;
  /** `header.payload`: the bytes the signature covers. */
  readonly signingInput: string;
  readonly signature: Buffer;
}

const HEADER_KEYS = ['alg', 'typ', 'kid'];
// Required claims first, optional ones last, in the order issue.ts writes them (inIssuedOrder relies on it).
const CLAIM_KEYS = ['v', 'jti', 'iss', 'sub', 'cnf', 'tgt', 'priv', 'dlg', 'lim', 'iat', 'nbf', 'exp', 'prf', 'inc'];
/** Claims a link may leave out. */
const OPTIONAL_CLAIMS: ReadonlySet<string> = new Set(['prf', 'inc']);
const CLAIM_SET: ReadonlySet<string> = new Set(CLAIM_KEYS);
const REQUIRED_CLAIMS = CLAIM_KEYS.length - OPTIONAL_CLAIMS.size;
/** An incarnation id: 1 to 64 base64url characters (slice authorities mint 128 random bits, 22 characters). */
export const INCARNATION = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * Canonical base64url of exactly `bytes` bytes: a jti (16) or a SHA-256 (32). A length check and the
 * alphabet scan cost less than one regex with a counted repeat.
 */
function isBase64urlOf(s: string, bytes: 16 | 32): boolean {
  return s.length === (bytes === 16 ? 22 : 43) && isCanonicalBase64url(s);
}
/** More targets than this in one link is a sign of abuse, not of a real grant. */
const MAX_TARGETS = 64;

// Pure functions of their input text, remembered (see memo.ts).
type HeaderResult = { ok: true; header: CredentialHeader } | { ok: false; rule: CredentialRule; why: string };
const headers = new Memo<HeaderResult>(1024);
const urns = new Memo<boolean>();
const targetsMemo = new Memo<Target | null>();

function targetOf(t: string): Target | null {
  return targetsMemo.get(t, (s) => {
    try {
      return parseTarget(s);
    } catch {
      return null;
    }
  });
}

/** base64url SHA-256 of a compact JWS (the `prf` of its children). */
export function credentialHash(token: string): string {
  return hash('sha256', token, 'base64url');
}

function fail(link: number, rule: CredentialRule, why: string): never {
  throw new CredentialInvalidError(link, rule, why);
}

function isNumericDate(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Reads one link strictly (rule 1 without the signature and the clock):
 * three canonical base64url segments, a header of exactly alg/typ/kid, JSON
 * without repeated keys, `v == 1`, every claim present and well typed, and a
 * signature of the right shape. Throws {@link CredentialInvalidError} naming `link`.
 */
export function parseCredential(token: string, link: number): ParsedCredential {
  if (typeof token !== 'string' || token.length === 0) fail(link, 'format', 'the link is empty');
  if (token.charCodeAt(0) === 0x7b /* { */) {
    fail(
      link,
      'format',
      'this is a JWS JSON serialization; only the compact serialization (three base64url parts joined by dots) is accepted',
    );
  }
  const d1 = token.indexOf('.');
  const d2 = d1 < 0 ? -1 : token.indexOf('.', d1 + 1);
  if (d1 < 0 || d2 < 0 || token.indexOf('.', d2 + 1) >= 0)
    fail(link, 'format', 'a compact JWS has exactly three parts separated by dots (is it truncated?)');
  const h64 = token.slice(0, d1);
  const p64 = token.slice(d1 + 1, d2);
  const s64 = token.slice(d2 + 1);
  if (h64.length === 0 || p64.length === 0)
    fail(link, 'format', 'the header or payload part of the compact JWS is empty (is it truncated?)');

  const hr = headerOf(h64);
  if (!hr.ok) fail(link, hr.rule, hr.why);
  const header = hr.header;

  // The payload's bytes are needed only until they are text: a view of the scratch buffer.
  const pBytes = transientBase64url(p64);
  if (!pBytes) fail(link, 'base64url', 'the payload is not canonical unpadded base64url');
  const pj = parseStrictJsonObject(pBytes);
  if (!pj.ok) fail(link, pj.problem, `the payload ${pj.why}`);
  const targets: Target[] = [];
  const claims = readClaims(pj.value, link, targets);

  // Checked after the header so that an unsigned `alg: none` token is reported as the alg it is.
  if (s64.length === 0) fail(link, 'signature', 'the link has no signature');
  if (!isCanonicalBase64url(s64)) fail(link, 'base64url', 'the signature is not canonical unpadded base64url');
  const signature = Buffer.from(s64, 'base64url');
  const shape = signatureShapeProblem(header.alg, signature);
  if (shape) fail(link, 'signature', shape);

  return new Link(token, header, claims, targets, publicKeys.known(claims.cnf.jwk).kid, token.slice(0, d2), signature);
}

/** A parsed link. Its hash is computed when first asked for (a leaf's only when its grant is built). */
class Link implements ParsedCredential {
  private hashText: string | undefined;

  constructor(
    readonly token: string,
    readonly header: CredentialHeader,
    readonly claims: CredentialClaims,
    readonly targets: readonly Target[],
    readonly holderKid: string,
    readonly signingInput: string,
    readonly signature: Buffer,
  ) {}

  get hash(): string {
    return (this.hashText ??= credentialHash(this.token));
  }
}

// In front of the header memo: recent headers, found by two characters and confirmed by their whole text,
// so the common case does not hash the segment (a new string each time) for a map lookup.
const recentHeaders: ({ readonly h64: string; readonly result: HeaderResult } | undefined)[] = new Array(64).fill(undefined);

function headerOf(h64: string): HeaderResult {
  // The last characters spell the end of the kid: they differ between signers.
  const slot = (h64.charCodeAt(h64.length - 3) * 31 + h64.charCodeAt(h64.length - 4)) & 63;
  const recent = recentHeaders[slot];
  if (recent !== undefined && recent.h64 === h64) return recent.result;
  const result = headers.get(h64, readHeader);
  if (h64.length <= 512) recentHeaders[slot] = { h64, result };
  return result;
}

/** Reads a protected header segment (memoized by its exact text, so it returns rather than throws). */
function readHeader(h64: string): HeaderResult {
  const no = (rule: CredentialRule, why: string): HeaderResult => ({ ok: false, rule, why });
  const bytes = decodeBase64url(h64);
  if (!bytes) return no('base64url', 'the protected header is not canonical unpadded base64url');
  const parsed = parseStrictJsonObject(bytes);
  if (!parsed.ok) return no(parsed.problem, `the protected header ${parsed.why}`);
  const h = parsed.value;
  const extra = Object.keys(h).filter((k) => !HEADER_KEYS.includes(k));
  if (extra.length > 0) {
    return no(
      'header',
      `the header carries ${extra.map((k) => JSON.stringify(k.slice(0, 20))).join(', ')}; exactly alg, typ and kid are allowed`,
    );
  }
  for (const k of HEADER_KEYS)
    if (!Object.hasOwn(h, k)) return no('header', `the header has no ${k}; exactly alg, typ and kid are required`);
  if (h.alg !== 'ES256' && h.alg !== 'EdDSA')
    return no('alg', `alg ${JSON.stringify(String(h.alg).slice(0, 20))} is not accepted; use ES256 or EdDSA`);
  if (h.typ !== CREDENTIAL_TYP) return no('typ', `typ must be ${CREDENTIAL_TYP}`);
  if (typeof h.kid !== 'string' || !isBase64urlOf(h.kid, 32))
    return no('header', 'kid must be the RFC 7638 SHA-256 thumbprint of the signing key (43 base64url characters)');
  return { ok: true, header: Object.freeze({ alg: h.alg, typ: CREDENTIAL_TYP, kid: h.kid }) };
}

/**
 * True when the claims are exactly the required ones then the optional ones, in the order issuers write
 * them (issue.ts): then each is known and none is missing, shown by comparing interned names (no set lookups).
 */
function inIssuedOrder(keys: readonly string[]): boolean {
  const n = keys.length;
  if (n < REQUIRED_CLAIMS || n > CLAIM_KEYS.length) return false;
  for (let i = 0; i < REQUIRED_CLAIMS; i++) if (keys[i] !== CLAIM_KEYS[i]) return false;
  if (n === REQUIRED_CLAIMS) return true;
  if (n === REQUIRED_CLAIMS + 2) return keys[n - 2] === 'prf' && keys[n - 1] === 'inc';
  return keys[n - 1] === 'prf' || keys[n - 1] === 'inc';
}

function claimError(link: number, why: string): never {
  fail(link, 'claims', why);
}

function readClaims(c: Record<string, unknown>, link: number, targets: Target[]): CredentialClaims {
  // The version decides what the other claims mean, so it is read first.
  if (!Object.hasOwn(c, 'v')) claimError(link, 'claim v is missing');
  if (c.v !== CREDENTIAL_VERSION)
    fail(link, 'version', `v is ${JSON.stringify(c.v)}; this Fedlab reads version ${CREDENTIAL_VERSION} only`);
  const keys = Object.keys(c);
  if (!inIssuedOrder(keys)) {
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as string;
      if (!CLAIM_SET.has(k)) claimError(link, `unknown claim ${JSON.stringify(k.slice(0, 20))}`);
    }
    // Every key is a claim and none repeats, so the count tells whether a required one is missing.
    if (keys.length !== REQUIRED_CLAIMS + (Object.hasOwn(c, 'prf') ? 1 : 0) + (Object.hasOwn(c, 'inc') ? 1 : 0)) {
      for (const k of CLAIM_KEYS) if (!OPTIONAL_CLAIMS.has(k) && !Object.hasOwn(c, k)) claimError(link, `claim ${k} is missing`);
    }
  }

  if (typeof c.jti !== 'string' || !isBase64urlOf(c.jti, 16)) claimError(link, 'jti must be 128 random bits in base64url (22 characters)');
  if (typeof c.iss !== 'string' || !urns.get(c.iss, isUrn)) claimError(link, 'iss must be a Fedlab URN');
  if (typeof c.sub !== 'string' || !urns.get(c.sub, isUrn)) claimError(link, 'sub must be a Fedlab URN');

  const cnf = c.cnf;
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) claimError(link, 'cnf must be an object holding jwk');
  const cnfKeys = Object.keys(cnf);
  if (cnfKeys.length !== 1 || cnfKeys[0] !== 'jwk') claimError(link, 'cnf must hold exactly jwk');
  const jwkProblem = publicJwkProblem((cnf as Record<string, unknown>).jwk);
  if (jwkProblem) claimError(link, `cnf.jwk ${jwkProblem}`);

  const tgt = c.tgt;
  if (!Array.isArray(tgt) || tgt.length === 0 || tgt.length > MAX_TARGETS) claimError(link, `tgt must list 1 to ${MAX_TARGETS} targets`);
  for (let i = 0; i < tgt.length; i++) {
    const t: unknown = tgt[i];
    if (typeof t !== 'string') claimError(link, 'every tgt entry must be a string');
    const parsed = targetOf(t);
    if (parsed === null)
      claimError(link, `tgt ${JSON.stringify(t.slice(0, 80))} is not a URN, urn:fedlab:<domain>:<kind>:* or urn:fedlab:<domain>:*`);
    targets.push(parsed);
    // At most 64 entries: a scan of the earlier ones costs less than a Set.
    if (tgt.indexOf(t) < i) claimError(link, `tgt lists ${t} twice`);
  }

  const priv = c.priv;
  if (!Array.isArray(priv) || priv.length === 0) claimError(link, 'priv must list at least one privilege');
  for (let i = 0; i < priv.length; i++) {
    const p: unknown = priv[i];
    if (typeof p !== 'string') claimError(link, 'every priv entry must be a string');
    if (!PRIVILEGE_SET.has(p))
      fail(link, 'privilege', `unknown privilege ${JSON.stringify(p.slice(0, 40))}; the privileges are ${PRIVILEGES.join(' ')}`);
    // Only known privileges get here, so a repeat comes within the first few entries: the scan stays short.
    if (priv.indexOf(p) < i) claimError(link, `priv lists ${p} twice`);
  }

  if (!Number.isSafeInteger(c.dlg) || (c.dlg as number) < 0) claimError(link, 'dlg must be a non-negative integer');

  const lim = c.lim;
  if (typeof lim !== 'object' || lim === null || Array.isArray(lim)) claimError(link, 'lim must be an object (empty for no caps)');
  for (const k of Object.keys(lim)) {
    if (!LIMIT_SET.has(k)) claimError(link, `unknown limit ${JSON.stringify(k.slice(0, 20))}; limits are ${LIMIT_KEYS.join(', ')}`);
    const v = (lim as Record<string, unknown>)[k];
    if (!Number.isSafeInteger(v) || (v as number) < 0) claimError(link, `lim.${k} must be a non-negative integer`);
  }

  if (!isNumericDate(c.iat)) claimError(link, 'iat must be whole seconds since the epoch');
  if (!isNumericDate(c.nbf)) claimError(link, 'nbf must be whole seconds since the epoch');
  if (!isNumericDate(c.exp)) claimError(link, 'exp must be whole seconds since the epoch');
  if (c.exp <= c.nbf) claimError(link, 'exp must be after nbf');

  if (Object.hasOwn(c, 'prf') && (typeof c.prf !== 'string' || !isBase64urlOf(c.prf, 32))) {
    claimError(link, 'prf must be the base64url SHA-256 of the parent credential (43 characters)');
  }
  if (Object.hasOwn(c, 'inc') && (typeof c.inc !== 'string' || !INCARNATION.test(c.inc))) {
    claimError(link, 'inc must be a slice incarnation id (1 to 64 base64url characters)');
  }
  return c as unknown as CredentialClaims;
}

/**
 * The time rule of rule 1: `nbf - 60 s <= now < exp + 60 s`. Returns the
 * failing rule or undefined. `now` is in seconds (fractions allowed).
 */
export function timeProblem(claims: Pick<CredentialClaims, 'nbf' | 'exp'>, nowS: number): 'not-yet-valid' | 'expired' | undefined {
  if (nowS < claims.nbf - CLOCK_SKEW_S) return 'not-yet-valid';
  if (nowS >= claims.exp + CLOCK_SKEW_S) return 'expired';
  return undefined;
}

/** The message for a failed time rule. */
export function timeMessage(rule: 'not-yet-valid' | 'expired', claims: Pick<CredentialClaims, 'nbf' | 'exp' | 'jti'>): string {
  return rule === 'expired'
    ? `credential ${claims.jti} expired at ${new Date(claims.exp * 1000).toISOString()}; ask its issuer for a new one`
    : `credential ${claims.jti} is not valid before ${new Date(claims.nbf * 1000).toISOString()}; check the clocks or wait`;
}

/** Sum of the UTF-8 sizes of the links. */
export function chainBytes(chain: readonly string[]): number {
  let total = 0;
  for (const link of chain) total += Buffer.byteLength(link, 'utf8');
  return total;
}
