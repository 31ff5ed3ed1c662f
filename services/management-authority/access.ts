/**
 * Who may do what at this site. Administrative calls check the caller's TLS
 * identity against the configured administrators. Aggregate calls verify the
 * caller's credential chain through services/core/credentials: the chain must
 * be rooted at this management authority's key (`MA → SA ...`), held by the
 * caller, grant the call's privilege and cover every node the call touches.
 * The chain's first link names the slice authority (its `sub` and `cnf`):
 * that is the authority a slice belongs to, and whose key node managers learn.
 */
import {
  TrustStore,
  verifyChain,
  CredentialDeniedError,
  type Grant,
  type Privilege,
  type PublicJwk,
  type RevocationLookup,
} from '../core/credentials/index.js';
import { PermissionDeniedError } from '../core/errors.js';
import { parseTarget, parseUrn, targetContains, type Target } from '../core/identity/urn.js';
import type { Clock } from '../core/clock.js';

/** The caller as TLS identifies it. */
export interface Peer {
  readonly urn: string;
  readonly thumbprint: string;
}

/** What a verified aggregate chain allows. */
export interface ChainAccess {
  readonly grant: Grant;
  /** The slice authority the chain was issued to by this MA (its first link's subject and key). */
  readonly sliceAuthority: { readonly urn: string; readonly jwk: PublicJwk; readonly kid: string };
  /** Whether the chain's targets cover a node. */
  covers(nodeUrn: string): boolean;
  /** Throws PERMISSION_DENIED naming the node when the chain does not cover it. */
  requireNode(nodeUrn: string): void;
}

/** Options of {@link Access}. */
export interface AccessOptions {
  readonly maUrn: string;
  readonly maJwk: PublicJwk;
  readonly admins: readonly string[];
  readonly revocations: RevocationLookup;
  readonly clock: Clock;
}

/** Access checks of the management authority. */
export class Access {
  private readonly trust = new TrustStore();
  private readonly admins: ReadonlySet<string>;
  private readonly domain: string;

  constructor(private readonly deps: AccessOptions) {
    this.domain = parseUrn(deps.maUrn).domain;
    // Only this MA roots aggregate chains, and only over its own site's objects.
    this.trust.addAnchor({ urn: deps.maUrn, jwk: deps.maJwk, domains: [this.domain] });
    this.admins = new Set(deps.admins.map((u) => parseUrnString(u)));
  }

  /** Whether the caller is one of the site's administrators. */
  isAdmin(peer: Peer): boolean {
    return this.admins.has(peer.urn);
  }

  /** Throws PERMISSION_DENIED unless the caller is an administrator. */
  requireAdmin(peer: Peer, what: string): void {
    if (!this.isAdmin(peer)) {
      throw new PermissionDeniedError(
        `only the site's administrators may ${what}; ${peer.urn} is not one (see admins in the MA's config)`,
        { rule: 'admin' },
      );
    }
  }

  /**
   * Verifies an aggregate call's chain for `privilege`. UNAUTHENTICATED for a
   * missing, unreadable, expired, revoked or foreign-rooted chain (naming the
   * link and rule); PERMISSION_DENIED when it lacks the privilege.
   */
  chain(ctx: { readonly peer: Peer; readonly chain: readonly string[] }, privilege: Privilege): ChainAccess {
    const grant = verifyChain({
      chain: ctx.chain,
      trust: this.trust,
      holder: { urn: ctx.peer.urn, thumbprint: ctx.peer.thumbprint },
      privilege,
      object: null,
      now: new Date(this.deps.clock.now()),
      revocations: this.deps.revocations,
    });
    const targets: Target[] = grant.targets.map((t) => parseTarget(t));
    const covers = (nodeUrn: string): boolean => {
      const t = parseTarget(nodeUrn);
      return targets.some((p) => targetContains(p, t));
    };
    return {
      grant,
      // Verified above: the first link is this MA's own, issued to the slice authority.
      sliceAuthority: grant.rootHolder,
      covers,
      requireNode: (nodeUrn) => {
        if (!covers(nodeUrn)) {
          throw new CredentialDeniedError(
            ctx.chain.length - 1,
            'grant-object',
            `the chain's targets (${grant.targets.join(', ')}) do not cover node ${nodeUrn}`,
          );
        }
      },
    };
  }
}

function parseUrnString(u: string): string {
  parseUrn(u);
  return u;
}
