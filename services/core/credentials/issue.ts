/**
 * Issuing credentials: roots (`issueRoot`) and attenuated children
 * (`delegate`). Delegation checks the parent chain and the new link with the
 * verifier's own rules before signing, so a delegation wider than its parent
 * is refused here, naming the rule, rather than discovered by a verifier.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { InvalidArgumentError } from '../errors.js';
import { algForKey } from '../identity/keys.js';
import { parseTarget, parseUrn, type Target } from '../identity/urn.js';
import { attenuationProblem, effectiveIncarnation, effectiveLimits, incarnationProblem } from './attenuation.js';
import { DelegationRefusedError, type CredentialRule } from './errors.js';
import {
  CREDENTIAL_TYP,
  credentialHash,
  INCARNATION,
  isPrivilege,
  LIMIT_KEYS,
  MAX_CHAIN_BYTES,
  MAX_CHAIN_LINKS,
  parseCredential,
  PRIVILEGES,
  timeProblem,
  type CredentialClaims,
  type Limits,
  type ParsedCredential,
  type Privilege,
} from './format.js';
import { algOfJwk, keyObjectFor, thumbprintOf, toPublicJwk, verifySignature, type PublicJwk } from './keys.js';

/** Default lifetime of a root credential: 30 days. */
export const DEFAULT_TTL_S = 30 * 86_400;

/** What both roots and delegations take. */
interface CommonIssueOptions {
  /** The issuer's private key (P-256 or Ed25519); it signs the credential. */
  readonly key: KeyObject;
  /** The holder's URN. */
  readonly subject: string;
  /** The holder's public key (a KeyObject or JWK); its thumbprint goes into `cnf.jwk`. */
  readonly subjectKey: KeyObject | PublicJwk | Record<string, unknown>;
  /** How many more delegations may follow. */
  readonly dlg?: number;
  /** Resource caps; an absent key inherits the parent's (on a root: no cap). */
  readonly limits?: Limits;
  /** Lifetime in seconds from `notBefore`. */
  readonly ttlSeconds?: number;
  /** Start of validity; `now` by default. */
  readonly notBefore?: Date;
  /** The issuing clock (`iat`); the current time by default. */
  readonly now?: Date;
  /**
   * The slice incarnation to bind the chain to (claim `inc`): a root names its slice's; a delegation may
   * repeat its parent chain's or bind a chain bound to none. Absent: none (a delegation inherits).
   */
  readonly incarnation?: string;
}

/** Options of {@link issueRoot}. */
export interface IssueRootOptions extends CommonIssueOptions {
  /** The issuer's URN; its key must be a trust anchor for the targets where the chain is used. */
  readonly issuer: string;
  readonly targets: readonly string[];
  readonly privileges: readonly string[];
}

/** Options of {@link delegate}: anything not given is inherited from the parent (dlg: parent's minus one). */
export interface DelegateOptions extends CommonIssueOptions {
  readonly targets?: readonly string[];
  readonly privileges?: readonly string[];
}

/** A freshly issued credential. */
export interface IssuedCredential {
  /** The whole chain, root first, ending with the new link. */
  readonly chain: readonly string[];
  /** The new link (compact JWS). */
  readonly token: string;
  readonly claims: CredentialClaims;
  /** base64url SHA-256 of the new link. */
  readonly hash: string;
}

/**
 * A fresh random credential id: 128 bits, base64url (22 characters), never beginning with '-': people
 * paste jtis into command lines, where a leading '-' reads as an option (drawn again: 1 in 64).
 */
export function newJti(): string {
  for (;;) {
    const jti = randomBytes(16).toString('base64url');
    if (!jti.startsWith('-')) return jti;
  }
}

function refuse(link: number, rule: CredentialRule, why: string): never {
  throw new DelegationRefusedError(link, rule, why);
}

function checkPrivileges(list: readonly string[]): Privilege[] {
  if (list.length === 0) throw new InvalidArgumentError('give at least one privilege', { rule: 'privilege' });
  for (const p of list) {
    if (!isPrivilege(p))
      throw new InvalidArgumentError(`unknown privilege ${JSON.stringify(p.slice(0, 40))}; the privileges are ${PRIVILEGES.join(' ')}`, {
        rule: 'privilege',
      });
  }
  return [...new Set(list)] as Privilege[];
}

function checkTargets(list: readonly string[]): { tgt: string[]; parsed: Target[] } {
  if (list.length === 0) throw new InvalidArgumentError('give at least one target', { rule: 'tgt' });
  const tgt = [...new Set(list)];
  return { tgt, parsed: tgt.map((t) => parseTarget(t)) };
}

function checkLimits(limits: Limits | undefined): Limits {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(limits ?? {})) {
    if (!(LIMIT_KEYS as readonly string[]).includes(k))
      throw new InvalidArgumentError(`unknown limit ${JSON.stringify(k)}; limits are ${LIMIT_KEYS.join(', ')}`, { rule: 'lim' });
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 0)
      throw new InvalidArgumentError(`limit ${k} must be a non-negative whole number`, { rule: 'lim' });
    out[k] = v;
  }
  return out;
}

function checkDlg(dlg: number): number {
  if (!Number.isSafeInteger(dlg) || dlg < 0) throw new InvalidArgumentError('dlg must be a non-negative whole number', { rule: 'dlg' });
  return dlg;
}

function seconds(d: Date, what: string): number {
  const t = d.getTime();
  if (!Number.isFinite(t)) throw new InvalidArgumentError(`${what} is not a valid time`);
  return Math.floor(t / 1000);
}

function checkTtl(ttl: number): number {
  if (!Number.isSafeInteger(ttl) || ttl <= 0)
    throw new InvalidArgumentError('the lifetime must be a positive whole number of seconds', { rule: 'exp' });
  return ttl;
}

async function sign(key: KeyObject, claims: CredentialClaims): Promise<string> {
  const alg = algForKey(key);
  const kid = thumbprintOf(toPublicJwk(key));
  // Claims in the documented order; JSON.stringify keeps insertion order.
  const payload = Buffer.from(JSON.stringify(claims));
  return new CompactSign(payload).setProtectedHeader({ alg, typ: CREDENTIAL_TYP, kid }).sign(key);
}

function buildClaims(fields: Omit<CredentialClaims, 'v' | 'jti'>): CredentialClaims {
  const { iss, sub, cnf, tgt, priv, dlg, lim, iat, nbf, exp, prf, inc } = fields;
  return {
    v: 1,
    jti: newJti(),
    iss,
    sub,
    cnf,
    tgt,
    priv,
    dlg,
    lim,
    iat,
    nbf,
    exp,
    ...(prf !== undefined ? { prf } : {}),
    // Only when given, so chains without incarnations stay byte for byte what they were.
    ...(inc !== undefined ? { inc } : {}),
  };
}

function checkIncarnation(inc: string | undefined): string | undefined {
  if (inc !== undefined && (typeof inc !== 'string' || !INCARNATION.test(inc)))
    throw new InvalidArgumentError('a slice incarnation is 1 to 64 base64url characters', { rule: 'inc' });
  return inc;
}

/** Issues a root credential: `issuer` grants `subject` (holding `subjectKey`) privileges on targets. */
export async function issueRoot(options: IssueRootOptions): Promise<IssuedCredential> {
  parseUrn(options.issuer);
  parseUrn(options.subject);
  const jwk = toPublicJwk(options.subjectKey as KeyObject);
  const priv = checkPrivileges(options.privileges);
  const { tgt } = checkTargets(options.targets);
  const iat = seconds(options.now ?? new Date(), 'now');
  const nbf = options.notBefore ? seconds(options.notBefore, 'notBefore') : iat;
  const exp = nbf + checkTtl(options.ttlSeconds ?? DEFAULT_TTL_S);
  const claims = buildClaims({
    iss: options.issuer,
    sub: options.subject,
    cnf: { jwk },
    tgt,
    priv,
    dlg: checkDlg(options.dlg ?? 0),
    lim: checkLimits(options.limits),
    iat,
    nbf,
    exp,
    inc: checkIncarnation(options.incarnation),
  });
  const token = await sign(options.key, claims);
  return { chain: [token], token, claims, hash: credentialHash(token) };
}

/**
 * Delegates the leaf of `parentChain` to a new holder, signed with the key
 * the leaf was issued to. Refuses with {@link DelegationRefusedError} when the
 * parent chain is expired, badly linked or exhausted, when `key` is not the
 * leaf's holder key, or when the child would hold more than the parent.
 */
export async function delegate(parentChain: readonly string[], options: DelegateOptions): Promise<IssuedCredential> {
  if (parentChain.length === 0) throw new InvalidArgumentError('the parent chain is empty');
  const n = parentChain.length;
  if (n + 1 > MAX_CHAIN_LINKS) refuse(n, 'size', `a chain has at most ${MAX_CHAIN_LINKS} links; this one would have ${n + 1}`);
  const iat = seconds(options.now ?? new Date(), 'now');

  // The parent chain as the verifier would read it (but the root's anchor, which needs a trust store).
  const links = parentChain.map((t, i) => parseCredential(t, i));
  let limits = effectiveLimits(undefined, (links[0] as ParsedCredential).claims.lim);
  let incarnation = effectiveIncarnation(undefined, (links[0] as ParsedCredential).claims);
  for (let i = 0; i < n; i++) {
    const cur = links[i] as ParsedCredential;
    // A parent that is not valid yet may still be delegated (the child starts no earlier); an expired one may not.
    if (timeProblem(cur.claims, iat) === 'expired')
      refuse(i, 'expired', `link ${i} (credential ${cur.claims.jti}) has expired; ask its issuer for a new one`);
    if (i === 0) {
      if (cur.claims.prf !== undefined)
        refuse(0, 'prf', 'the first link of the parent chain is not a root; give the whole chain, root first');
      continue;
    }
    const prev = links[i - 1] as ParsedCredential;
    if (cur.claims.prf !== prev.hash) refuse(i, 'prf', `link ${i} of the parent chain does not follow link ${i - 1}`);
    if (cur.claims.iss !== prev.claims.sub)
      refuse(i, 'issuer', `link ${i} of the parent chain is not issued by the subject of link ${i - 1}`);
    if (cur.header.kid !== prev.holderKid || algOfJwk(prev.claims.cnf.jwk) !== cur.header.alg)
      refuse(i, 'signer', `link ${i} of the parent chain is not signed by the holder of link ${i - 1}`);
    if (!verifySignature(cur.header.alg, keyObjectFor(prev.claims.cnf.jwk, prev.holderKid), cur.signingInput, cur.signature)) {
      refuse(i, 'signature', `link ${i} of the parent chain has a bad signature`);
    }
    const problem =
      attenuationProblem(prev.claims, prev.targets, limits, cur.claims, cur.targets) ?? incarnationProblem(incarnation, cur.claims);
    if (problem) refuse(i, problem.rule, `link ${i} of the parent chain: ${problem.why}`);
    limits = effectiveLimits(limits, cur.claims.lim);
    incarnation = effectiveIncarnation(incarnation, cur.claims);
  }
  const parent = links[n - 1] as ParsedCredential;
  const pc = parent.claims;

  // The signer must hold the parent.
  const signerKid = thumbprintOf(toPublicJwk(options.key));
  if (signerKid !== parent.holderKid) {
    refuse(
      n,
      'signer',
      `the signing key (${signerKid}) is not the key the parent credential was issued to (${parent.holderKid}); sign with ${pc.sub}'s key`,
    );
  }
  parseUrn(options.subject);
  const jwk = toPublicJwk(options.subjectKey as KeyObject);
  const priv = options.privileges ? checkPrivileges(options.privileges) : [...pc.priv];
  const { tgt, parsed } = options.targets ? checkTargets(options.targets) : { tgt: [...pc.tgt], parsed: parent.targets as Target[] };
  if (pc.dlg < 1) refuse(n, 'dlg', 'the parent allows no further delegation (its dlg is 0)');
  const dlg = options.dlg === undefined ? pc.dlg - 1 : checkDlg(options.dlg);
  const lim = checkLimits(options.limits);
  const nbf = options.notBefore ? seconds(options.notBefore, 'notBefore') : Math.max(iat, pc.nbf);
  const exp = options.ttlSeconds === undefined ? pc.exp : nbf + checkTtl(options.ttlSeconds);
  if (exp <= nbf) refuse(n, 'exp', 'the parent expires before the delegation would start');
  const inc = checkIncarnation(options.incarnation);
  const claims = buildClaims({
    iss: pc.sub,
    sub: options.subject,
    cnf: { jwk },
    tgt,
    priv,
    dlg,
    lim,
    iat,
    nbf,
    exp,
    prf: parent.hash,
    inc,
  });

  const problem = attenuationProblem(pc, parent.targets, limits, claims, parsed) ?? incarnationProblem(incarnation, claims);
  if (problem) refuse(n, problem.rule, problem.why);

  const token = await sign(options.key, claims);
  const chain = [...parentChain, token];
  let total = 0;
  for (const t of chain) total += Buffer.byteLength(t);
  if (total > MAX_CHAIN_BYTES) refuse(n, 'size', `the chain would be ${total} bytes; at most ${MAX_CHAIN_BYTES} are accepted`);
  return { chain, token, claims, hash: credentialHash(token) };
}
