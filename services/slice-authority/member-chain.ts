/**
 * The proof a provider gives to revoke a credential it delegated to one of its members: the member's
 * whole chain. The slice authority accepts it when
 *
 * - the root is a slice credential this authority issued to the calling provider (its record says
 *   so, and the root names the provider as its holder);
 * - the leaf is the credential being revoked, issued by the provider itself;
 * - the chain verifies end to end with the core verifier, anchored at this authority's key for the
 *   root's slice only (so a chain rooted anywhere else, or with a forged or foreign link, fails).
 *
 * Revocations are not consulted: whether a link is revoked already does not change who may revoke
 * the leaf (and a removal must still go through under a provider credential revoked meanwhile).
 * Everything refused is PERMISSION_DENIED naming the rule (and the link when one fails).
 */
import {
  isCredentialError,
  NO_REVOCATIONS,
  parseCredential,
  TrustStore,
  verifyChain,
  type ParsedCredential,
  type PublicJwk,
} from '../core/credentials/index.js';
import { PermissionDeniedError } from '../core/errors.js';

/** A slice credential this authority issued: to whom, over which slice. */
export interface IssuedRoot {
  readonly providerUrn: string;
  readonly sliceUrn: string;
}

/** Input of {@link checkMemberChain}. */
export interface MemberChainInput {
  /** The member's chain, root first (the call's `fedlab-credential` metadata). */
  readonly chain: readonly string[];
  /** The jti to revoke: the chain's leaf. */
  readonly jti: string;
  /** The calling provider (its TLS URN). */
  readonly callerUrn: string;
  /** This slice authority. */
  readonly saUrn: string;
  readonly saJwk: PublicJwk;
  /** The record of a root credential this authority issued, by jti. */
  readonly issued: (jti: string) => IssuedRoot | undefined;
  readonly now: Date;
}

function deny(rule: string, why: string, link?: number): never {
  throw new PermissionDeniedError(
    `a provider revokes a member's credential with the member's whole chain (root: this slice authority's credential to the provider; leaf: the provider's delegation being revoked); this one is refused by rule ${rule}: ${why}`,
    link === undefined ? { rule } : { rule, link },
  );
}

function parseLink(chain: readonly string[], i: number): ParsedCredential {
  try {
    return parseCredential(chain[i] as string, i);
  } catch (err) {
    if (isCredentialError(err)) deny(err.rule, `link ${err.link}: ${err.reason}`, err.link);
    throw err;
  }
}

/** Throws PERMISSION_DENIED unless `chain` proves the caller delegated the credential `jti` under its own slice credential. */
export function checkMemberChain(input: MemberChainInput): void {
  const { chain, callerUrn } = input;
  if (chain.length < 2)
    deny('member-chain', `the call carries ${chain.length} link(s); send the member's chain in metadata fedlab-credential, root first`);
  const root = parseLink(chain, 0);
  const leaf = parseLink(chain, chain.length - 1);
  if (leaf.claims.jti !== input.jti)
    deny('member-leaf', `the chain's leaf is credential ${leaf.claims.jti}, not ${input.jti}, the one asked to revoke`, chain.length - 1);
  const rec = input.issued(root.claims.jti);
  if (!rec || root.claims.iss !== input.saUrn)
    deny(
      'member-root',
      `link 0 (${root.claims.jti}, issued by ${root.claims.iss}) is not a slice credential this slice authority issued`,
      0,
    );
  if (rec.providerUrn !== callerUrn || root.claims.sub !== callerUrn)
    deny(
      'member-root',
      `link 0 (${root.claims.jti}) is a credential of ${root.claims.sub} for ${rec.providerUrn}'s slice, not of ${callerUrn}`,
      0,
    );
  if (leaf.claims.iss !== callerUrn)
    deny('member-issuer', `the leaf ${leaf.claims.jti} was issued by ${leaf.claims.iss}, not by ${callerUrn}`, chain.length - 1);
  const trust = new TrustStore();
  trust.addAnchor({ urn: input.saUrn, jwk: input.saJwk, targets: [rec.sliceUrn] });
  try {
    verifyChain({
      chain,
      trust,
      // The member holds the leaf, not the caller: rule 5 is the leaf's own holder.
      holder: { urn: leaf.claims.sub, thumbprint: leaf.holderKid },
      privilege: null,
      object: null,
      now: input.now,
      revocations: NO_REVOCATIONS,
      cache: null,
    });
  } catch (err) {
    if (isCredentialError(err)) deny(err.rule, `link ${err.link}: ${err.reason}`, err.link);
    throw err;
  }
}
