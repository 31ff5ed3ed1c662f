/**
 * The call to make at the top of a handler: is this caller, presenting this
 * chain, allowed this privilege on this object? Independent of the RPC layer:
 * the RPC core builds `{ peer, chain }` from the TLS client certificate and the
 * `fedlab-credential` metadata; this function only verifies.
 */
import { parseUrn } from '../identity/urn.js';
import type { ChainCache } from './cache.js';
import type { Privilege } from './format.js';
import type { Grant } from './grant.js';
import type { RevocationLookup } from './revocation.js';
import type { TrustStore } from './trust-store.js';
import { verifyChain } from './verify.js';

/** What {@link authorize} needs from the call: the TLS peer and the presented chain. */
export interface AuthorizeContext {
  /** The caller's identity from its verified TLS certificate (a `CertIdentity` fits). */
  readonly peer: { readonly urn: string; readonly thumbprint: string };
  /** The chain from metadata, root first (empty when none was sent). */
  readonly chain: readonly string[];
}

/** What a service gives {@link authorize}. */
export interface AuthorizeDeps {
  readonly trust: TrustStore;
  readonly revocations: RevocationLookup;
  /** The clock; the current time by default. */
  readonly now?: () => Date;
  /** Prefix cache; the process-wide one by default, null for none. */
  readonly cache?: ChainCache | null;
  /** The slice incarnation the object belongs to (see `VerifyChainInput.incarnation`); absent: not checked. */
  readonly incarnation?: string | null;
}

/**
 * Verifies the caller's chain for `privilege` on `objectUrn` and returns the
 * grant. Throws `CredentialInvalidError` (→ UNAUTHENTICATED),
 * `CredentialDeniedError` (→ PERMISSION_DENIED), or `InvalidArgumentError`
 * when `objectUrn` is not a URN.
 */
export function authorize(ctx: AuthorizeContext, privilege: Privilege, objectUrn: string, deps: AuthorizeDeps): Grant {
  parseUrn(objectUrn);
  // One literal with every key, absent ones undefined (which verifyChain reads as absent): spreading
  // optional keys in made each call's input a fresh, slow object shape, which cost more than the
  // rest of a cached verification.
  return verifyChain({
    chain: ctx.chain,
    trust: deps.trust,
    holder: { urn: ctx.peer.urn, thumbprint: ctx.peer.thumbprint },
    privilege,
    object: objectUrn,
    now: deps.now ? deps.now() : new Date(),
    revocations: deps.revocations,
    cache: deps.cache,
    incarnation: deps.incarnation,
  });
}
