/**
 * The one chain verifier every service uses (docs/design.md §5). Rules in order:
 *
 * 0. sizes: at least one link, at most 8 links and 16 KiB, before anything else;
 * 1. every link on its own: compact JWS in canonical base64url, header exactly
 *    alg/typ/kid, no repeated JSON key, `v == 1`, every claim present and well
 *    typed, and `nbf - 60 s <= now < exp + 60 s`;
 * 2. the root: no `prf`; its key is a trust anchor for every root target (own
 *    scope or accepted peering), and its signature verifies under that key;
 * 3. every later link: `prf` is the previous link's hash, `iss` the previous
 *    `sub`, signed by the previous `cnf.jwk`, and a true attenuation (dlg, priv,
 *    tgt, lim, exp, nbf), and names no slice incarnation other than its parent chain's (inc);
 * 4. no link's jti and no link's key is on the revocation list of any key that
 *    signed a link, and no such list is stale (past its `next_update` plus the
 *    verifier's grace: UNAVAILABLE until a fresher list arrives);
 * 5. the caller holds the leaf: its key has the leaf's `cnf.jwk` thumbprint
 *    and its URN is the leaf's `sub`;
 * 6. the leaf grants the privilege on the object (and, when the call names one, the chain is bound to
 *    the object's slice incarnation).
 *
 * Rules 1 (but the clock) and 3 depend only on the chain's bytes and are
 * cached per verified prefix; the clock and rules 2, 4, 5 and 6 are checked
 * on every call.
 */
import { parseTarget, targetContains, type Target } from '../identity/urn.js';
import { InvalidArgumentError } from '../errors.js';
import { attenuationProblem, effectiveLimits, incarnationProblem } from './attenuation.js';
import { defaultChainCache, type ChainCache } from './cache.js';
import { CredentialDeniedError, CredentialInvalidError, type CredentialRule } from './errors.js';
import {
  isPrivilege,
  MAX_CHAIN_BYTES,
  MAX_CHAIN_LINKS,
  parseCredential,
  PRIVILEGES,
  timeMessage,
  timeProblem,
  type ParsedCredential,
  type Privilege,
} from './format.js';
import { extendPrefix, type Grant, type VerifiedPrefix } from './grant.js';
import { algOfJwk, keyObjectFor, publicJwkProblem, thumbprintOf, verifySignature, type PublicJwk } from './keys.js';
import { staleListError, type RevocationIndex, type RevocationLookup } from './revocation.js';
import { Memo } from './memo.js';
import type { TrustStore } from './trust-store.js';

/** Who presents the chain: the URN and key of its TLS client certificate. */
export interface ChainHolder {
  readonly urn: string;
  /** RFC 7638 thumbprint of the caller's key (preferred when known). */
  readonly thumbprint?: string;
  /** The caller's public key, when the thumbprint is not given. */
  readonly jwk?: PublicJwk | Record<string, unknown>;
}

/** Input of {@link verifyChain}. */
export interface VerifyChainInput {
  /** The links, root first. */
  readonly chain: readonly string[];
  readonly trust: TrustStore;
  readonly holder: ChainHolder;
  /** The privilege the call needs; null only for tools that just check a chain. */
  readonly privilege: Privilege | null;
  /** The object (an exact URN, or a pattern the grant must cover whole); null only for tools. */
  readonly object: string | null;
  readonly now: Date;
  readonly revocations: RevocationLookup;
  /** The prefix cache ({@link defaultChainCache} when absent; null for none). */
  readonly cache?: ChainCache | null;
  /**
   * The slice incarnation the object belongs to: the chain must be bound to exactly it (null: to none,
   * the object predates incarnations). Absent: not checked (objects that are not a slice's).
   */
  readonly incarnation?: string | null;
}

function invalid(link: number, rule: CredentialRule, why: string): never {
  throw new CredentialInvalidError(link, rule, why);
}

/**
 * Verifies a chain for one call and returns the effective grant, or throws a
 * {@link CredentialInvalidError} / {@link CredentialDeniedError} naming the
 * failing link and rule. Bad arguments of the call itself (an unknown
 * privilege, a malformed object URN) are {@link InvalidArgumentError}s.
 */
export function verifyChain(input: VerifyChainInput): Grant {
  const { chain, trust, holder, revocations } = input;

  // 0. Sizes, before any parsing or signature work.
  if (!Array.isArray(chain) || chain.length === 0) {
    invalid(0, 'missing', 'no credential chain was presented; send one in metadata fedlab-credential, one value per link, root first');
  }
  if (chain.length > MAX_CHAIN_LINKS)
    invalid(MAX_CHAIN_LINKS, 'size', `the chain has ${chain.length} links; at most ${MAX_CHAIN_LINKS} are accepted`);
  let units = 0;
  for (let i = 0; i < chain.length; i++) {
    const link = chain[i];
    if (typeof link !== 'string') invalid(i, 'format', 'a link must be a string');
    units += link.length;
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes, so short chains need no byte count.
  if (units * 3 > MAX_CHAIN_BYTES) {
    let bytes = 0;
    for (let i = 0; i < chain.length; i++) {
      bytes += Buffer.byteLength(chain[i] as string, 'utf8');
      if (bytes > MAX_CHAIN_BYTES)
        invalid(i, 'size', `the chain is larger than ${MAX_CHAIN_BYTES} bytes at this link; present a shorter chain`);
    }
  }

  const { privilege, object } = checkCall(input);
  const holderKid = holderThumbprint(holder);
  const nowS = input.now.getTime() / 1000;
  if (!Number.isFinite(nowS)) throw new InvalidArgumentError('now must be a valid date');

  const cache = input.cache === undefined ? defaultChainCache : input.cache;
  let prefix = cache?.longestPrefix(chain);
  const start = prefix ? prefix.index + 1 : 0;
  const n = chain.length;

  // 1. Every link on its own; a cached link only needs the clock (a whole cached chain needs no new array).
  const links: readonly ParsedCredential[] = start === n ? (prefix as VerifiedPrefix).links : new Array<ParsedCredential>(n);
  for (let i = 0; i < n; i++) {
    let cred = links[i];
    if (cred === undefined) {
      cred = prefix && i < start ? (prefix.links[i] as ParsedCredential) : parseCredential(chain[i] as string, i);
      (links as ParsedCredential[])[i] = cred;
    }
    const late = timeProblem(cred.claims, nowS);
    if (late) invalid(i, late, timeMessage(late, cred.claims));
  }

  // 2. The root.
  const root = links[0] as ParsedCredential;
  if (root.claims.prf !== undefined) {
    invalid(0, 'prf', 'the first link carries prf, so it is a delegation, not a root; present the whole chain, root first');
  }
  const rootCheck = trust.checkRoot(root.header.kid, root.claims.iss, root.targets, privilege);
  if (!rootCheck.ok) invalid(0, 'trust-anchor', rootCheck.why);
  if (!prefix) {
    const jwk = rootCheck.anchor.jwk;
    if (algOfJwk(jwk) !== root.header.alg) invalid(0, 'alg', `alg ${root.header.alg} does not match the anchor's ${jwk.kty} key`);
    if (!verifySignature(root.header.alg, keyObjectFor(jwk, rootCheck.anchor.kid), root.signingInput, root.signature)) {
      invalid(0, 'signature', `the signature of credential ${root.claims.jti} does not verify under ${root.claims.iss}'s key`);
    }
    prefix = extendPrefix(undefined, root, effectiveLimits(undefined, root.claims.lim));
    cache?.insert(prefix);
  }

  // 3. Every later link against its parent.
  for (let k = Math.max(1, start); k < n; k++) {
    prefix = extendLink(prefix, links[k] as ParsedCredential, k);
    cache?.insert(prefix);
  }
  const verified = prefix;

  // 4. Revocations by any signer of the chain.
  checkRevocations(verified, revocations, cache, nowS);

  // 5. The caller holds the leaf.
  const leaf = verified.cred;
  if (holderKid !== leaf.holderKid) {
    invalid(
      n - 1,
      'holder-key',
      `the caller's key is not the key credential ${leaf.claims.jti} was issued to; present a chain delegated to your own key`,
    );
  }
  if (holder.urn !== leaf.claims.sub)
    invalid(n - 1, 'holder-urn', `the caller is ${String(holder.urn)}, but credential ${leaf.claims.jti} was issued to ${leaf.claims.sub}`);

  // 6. The leaf grants the call.
  if (privilege !== null && !leaf.claims.priv.includes(privilege)) {
    throw new CredentialDeniedError(
      n - 1,
      'grant-privilege',
      `the chain grants ${leaf.claims.priv.join(', ')}, not ${privilege}; ask for a credential with ${privilege}`,
    );
  }
  if (object !== null && !verified.leafTargets.some((t) => targetContains(t, object.target))) {
    throw new CredentialDeniedError(
      n - 1,
      'grant-object',
      `the chain's targets (${leaf.claims.tgt.join(', ')}) do not cover ${object.text}`,
    );
  }
  if (input.incarnation !== undefined) checkIncarnation(verified, input.incarnation, object?.text ?? 'the object');
  return verified.grant;
}

/** Rule 6, last part: the chain is bound to the incarnation of the slice the object belongs to. */
function checkIncarnation(verified: VerifiedPrefix, want: string | null, what: string): void {
  const have = verified.incarnation;
  if (have === (want ?? undefined)) return;
  // Name the link that bound the chain (the root when none did).
  const link = Math.max(
    0,
    verified.links.findIndex((l) => l.claims.inc !== undefined),
  );
  throw new CredentialDeniedError(
    link,
    'grant-incarnation',
    have === undefined
      ? `the chain is bound to no incarnation of ${what}: it was issued for an earlier slice of that name, which has ended (the slice here is a new incarnation that no older credential reaches); ask the slice authority for a credential of the slice as it is now`
      : want === null
        ? `the chain is bound to incarnation ${have} of ${what}, but what is here belongs to an earlier slice of that name (made before incarnations); ask the site's administrators`
        : `the chain is bound to incarnation ${have} of ${what}, which has ended here (a slice deleted and created again under its name is a new incarnation that no older credential reaches); ask the slice authority for a credential of the slice as it is now`,
  );
}

// Objects of calls repeat (a node, a slice); their parse is remembered. A bad one throws and is not kept.
const objects = new Memo<Target>();

function checkCall(input: VerifyChainInput): { privilege: Privilege | null; object: { text: string; target: Target } | null } {
  const privilege = input.privilege;
  if (privilege !== null && !isPrivilege(privilege)) {
    throw new InvalidArgumentError(
      `unknown privilege ${JSON.stringify(String(privilege).slice(0, 40))}; the privileges are ${PRIVILEGES.join(' ')}`,
    );
  }
  if (input.object === null) return { privilege, object: null };
  return { privilege, object: { text: input.object, target: objects.get(input.object, parseTarget) } };
}

function holderThumbprint(holder: ChainHolder): string {
  if (typeof holder?.urn !== 'string') throw new InvalidArgumentError('the holder needs a URN');
  if (typeof holder.thumbprint === 'string') return holder.thumbprint;
  const problem = publicJwkProblem(holder.jwk);
  if (problem) throw new InvalidArgumentError(`the holder's key ${problem}`);
  return thumbprintOf(holder.jwk as PublicJwk);
}

/** Rule 3 for link `k`: returns the prefix it extends `parent` to. */
function extendLink(parent: VerifiedPrefix, cur: ParsedCredential, k: number): VerifiedPrefix {
  const prev = parent.cred;
  const c = cur.claims;
  if (c.prf === undefined) invalid(k, 'prf', 'this link has no prf, so it is a root; a root can only be the first link');
  if (c.prf !== prev.hash)
    invalid(k, 'prf', `its prf is not the hash of link ${k - 1}: links are missing, reordered or taken from another chain`);
  if (c.iss !== prev.claims.sub) invalid(k, 'issuer', `its issuer ${c.iss} is not the subject of link ${k - 1} (${prev.claims.sub})`);
  if (cur.header.kid !== prev.holderKid)
    invalid(k, 'signer', `it is signed by key ${cur.header.kid}, not by the key link ${k - 1} was issued to (${prev.holderKid})`);
  const jwk = prev.claims.cnf.jwk;
  if (algOfJwk(jwk) !== cur.header.alg) invalid(k, 'alg', `alg ${cur.header.alg} does not match the signer's ${jwk.kty} key`);
  let key;
  try {
    key = keyObjectFor(jwk, prev.holderKid);
  } catch {
    invalid(k - 1, 'claims', 'cnf.jwk is not a valid public key (point not on the curve?)');
  }
  if (!verifySignature(cur.header.alg, key, cur.signingInput, cur.signature)) {
    invalid(k, 'signature', `the signature of credential ${c.jti} does not verify under the key of ${c.iss}`);
  }
  const problem = attenuationProblem(prev.claims, prev.targets, parent.limits, c, cur.targets) ?? incarnationProblem(parent.incarnation, c);
  if (problem) invalid(k, problem.rule, problem.why);
  return extendPrefix(parent, cur, effectiveLimits(parent.limits, c.lim));
}

function checkRevocations(prefix: VerifiedPrefix, revocations: RevocationLookup, cache: ChainCache | null, nowS: number): void {
  let lists: RevocationIndex[] | undefined;
  for (const kid of prefix.issuerKids) {
    const l = revocations.listFor(kid);
    // Fail closed: a signer whose list promised a fresher one that has not come may have revoked more since.
    if (l?.freshness && nowS > l.freshness.refuseAfter) throw staleListError(l.freshness);
    if (l && (l.jtis.size > 0 || l.keys.size > 0)) (lists ??= []).push(l);
  }
  if (!lists) return;
  for (let i = 0; i < prefix.links.length; i++) {
    const link = prefix.links[i] as ParsedCredential;
    for (const l of lists) {
      if (l.jtis.has(link.claims.jti)) {
        cache?.evict({ jti: link.claims.jti });
        invalid(i, 'revoked', `credential ${link.claims.jti} is revoked; ask its issuer for a new one`);
      }
    }
    for (const l of lists) {
      for (const kid of [link.header.kid, link.holderKid]) {
        if (l.keys.has(kid)) {
          cache?.evict({ kid });
          invalid(
            i,
            'revoked-key',
            `key ${kid} ${kid === link.header.kid ? 'that signed' : 'that holds'} credential ${link.claims.jti} is revoked`,
          );
        }
      }
    }
  }
}
