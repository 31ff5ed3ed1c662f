/**
 * The {@link Authorizer} over the credentials module. Node-level calls trust
 * one anchor: the node owner's key, for this site's nodes. Calls on a sliver
 * also trust the key of the slice authority that created its slice, for that
 * slice only (one small trust store per slice), so a slice authority can never
 * root a chain over another slice or over the node; and such a chain must be
 * bound to the incarnation of the slice the sliver belongs to, so a slice
 * deleted and created again under its name is out of reach of the chains of
 * its earlier life.
 */
import { authorize, parseCredential, TrustStore, type Privilege, type RevocationLookup } from '../core/credentials/index.js';
import { PermissionDeniedError } from '../core/errors.js';
import { parseUrn } from '../core/identity/urn.js';
import type { CallContext } from '../core/rpc/context.js';
import type { Authorizer, Grant, NmPrivilege, SliceTrust } from './access.js';
import type { Clock } from '../core/clock.js';

/** Options of {@link CredentialAuthorizer}. */
export interface CredentialAuthorizerOptions {
  readonly nodeUrn: string;
  readonly owner: { readonly urn: string; readonly jwk: Record<string, unknown> };
  readonly revocations: RevocationLookup;
  readonly clock: Clock;
}

/** Authorises node manager calls with delegation credential chains. */
export class CredentialAuthorizer implements Authorizer {
  private readonly ownerTrust = new TrustStore();
  private readonly sliceTrust = new Map<string, TrustStore>();

  constructor(private readonly o: CredentialAuthorizerOptions) {
    // The owner may root chains over its site's nodes (an owner's credential often names node:*); the object checked is always this node.
    this.ownerTrust.addAnchor({ urn: o.owner.urn, jwk: o.owner.jwk, targets: [`urn:fedlab:${parseUrn(o.nodeUrn).domain}:node:*`] });
  }

  private now = (): Date => new Date(this.o.clock.now());

  async node(ctx: CallContext, privilege: NmPrivilege): Promise<Grant> {
    const g = authorize(ctx, privilege as Privilege, this.o.nodeUrn, {
      trust: this.ownerTrust,
      revocations: this.o.revocations,
      now: this.now,
    });
    return { root: 'owner', holder: g.holder.urn, limits: g.limits, expiresAt: g.exp * 1000 };
  }

  async slice(ctx: CallContext, privilege: NmPrivilege, slice: SliceTrust): Promise<Grant> {
    if (this.rootIssuer(ctx) !== slice.sliceAuthorityUrn) return this.node(ctx, privilege);
    const g = authorize(ctx, privilege as Privilege, slice.sliceUrn, {
      trust: this.trustFor(slice),
      revocations: this.o.revocations,
      now: this.now,
      // A chain of an earlier slice of the same name (another incarnation) reaches nothing here.
      incarnation: slice.sliceIncarnation ?? null,
    });
    return { root: 'slice_authority', holder: g.holder.urn, limits: g.limits, expiresAt: g.exp * 1000 };
  }

  async ownerOnly(ctx: CallContext, privilege: NmPrivilege, what: string): Promise<Grant> {
    // Reading the root unverified only chooses the refusal's wording: this chain is refused either way.
    // Any chain rooted at an authority other than the owner gets it, whether or not the sliver exists
    // here or is of that authority: the answer must not tell which (docs/api.md, Access rules).
    const issuer = this.rootIssuer(ctx);
    if (issuer !== undefined && issuer !== this.o.owner.urn && isAuthorityUrn(issuer)) {
      throw new PermissionDeniedError(
        `${what} needs a chain rooted at the node's owner (the site's management authority holds one); a chain rooted at ${issuer} cannot do it on a node — ask the slice authority (DeleteSlice) or the site instead`,
        { rule: 'owner-rooted' },
      );
    }
    return this.node(ctx, privilege);
  }

  /** The root link's issuer, read without trusting it: it only picks which anchor to verify against. */
  private rootIssuer(ctx: CallContext): string | undefined {
    const root = ctx.chain[0];
    if (!root) return undefined;
    try {
      return parseCredential(root, 0).claims.iss;
    } catch {
      return undefined;
    }
  }

  private trustFor(slice: SliceTrust): TrustStore {
    const key = `${slice.sliceUrn} ${JSON.stringify(slice.sliceAuthorityJwk)}`;
    let trust = this.sliceTrust.get(key);
    if (!trust) {
      // Rebuilding a store is cheap; bounding the map keeps slices long gone from piling up.
      if (this.sliceTrust.size >= 4096) this.sliceTrust.clear();
      trust = new TrustStore();
      trust.addAnchor({ urn: slice.sliceAuthorityUrn, jwk: slice.sliceAuthorityJwk, targets: [slice.sliceUrn] });
      this.sliceTrust.set(key, trust);
    }
    return trust;
  }
}

/** Whether `urn` names an authority (a slice or management authority), read leniently. */
function isAuthorityUrn(urn: string): boolean {
  try {
    return parseUrn(urn).kind === 'authority';
  } catch {
    return false;
  }
}
