/**
 * Whose keys may root a credential chain, and for which objects (docs/design.md §5
 * rule 2). Anchors come from two places:
 *
 * - a domain's trust bundle: each of its authorities may root chains over
 *   that domain's objects only (`urn:fedlab:<domain>:*`). Each domain's bundle
 *   is kept apart; adding one never changes another;
 * - explicit anchors a service adds itself: a node owner's key for its node,
 *   the slice authority that created a slice for that slice, with exactly the
 *   targets they may root.
 *
 * A root signed by another domain's authority for this domain's objects is
 * accepted only when the peering policy hook says so, per privilege. An empty
 * store trusts nothing.
 */
import type { TrustBundle } from '../identity/trust-bundle.js';
import { formatTarget, parseTarget, parseUrn, targetContains, type Target } from '../identity/urn.js';
import { InvalidArgumentError } from '../errors.js';
import type { Privilege } from './format.js';
import { thumbprintOf, toPublicJwk, type PublicJwk } from './keys.js';

/** A key trusted to root chains over some targets. */
export interface Anchor {
  readonly urn: string;
  readonly jwk: PublicJwk;
  /** RFC 7638 thumbprint of `jwk`: the `kid` of the roots it signs. */
  readonly kid: string;
  /** What it may root: every root target must lie inside one of these. */
  readonly scopes: readonly Target[];
  /** Where it came from: `bundle:<domain>` or `explicit`. */
  readonly source: string;
}

/** Options of {@link TrustStore.addAnchor}. */
export interface AddAnchorOptions {
  readonly urn: string;
  readonly jwk: PublicJwk | Record<string, unknown>;
  /** Whole domains it may root (`urn:fedlab:<domain>:*`). */
  readonly domains?: readonly string[];
  /** Target patterns it may root (exact URNs or wildcards). */
  readonly targets?: readonly string[];
}

/** A question to the peering policy: may `anchor` (of another domain) root `target` for `privilege`? */
export interface PeeringQuery {
  readonly anchor: Anchor;
  /** The domain the anchor is trusted for (its bundle's domain, or its URN's domain). */
  readonly anchorDomain: string;
  /** The root's target that the anchor's own scopes do not cover. */
  readonly target: string;
  readonly targetDomain: string;
  /** The privilege the call needs; null when verifying without a call (e.g. `fedlab cred verify` without --priv). */
  readonly privilege: Privilege | null;
}

/** Local policy for roots from peered domains; the default accepts none. */
export type PeeringPolicy = (query: PeeringQuery) => boolean;

/** Result of {@link TrustStore.checkRoot}. */
export type RootCheck =
  { readonly ok: true; readonly anchor: Anchor; readonly peered: boolean } | { readonly ok: false; readonly why: string };

const denyAll: PeeringPolicy = () => false;

/** The anchors a service trusts. Changes take effect on the next verification (nothing about them is cached). */
export class TrustStore {
  private readonly bundles = new Map<string, { readonly bundle: TrustBundle; readonly anchors: readonly Anchor[] }>();
  private readonly explicit: Anchor[] = [];
  private byKid = new Map<string, Anchor[]>();
  private peering: PeeringPolicy;

  constructor(options: { readonly peering?: PeeringPolicy } = {}) {
    this.peering = options.peering ?? denyAll;
  }

  /**
   * Trusts a domain's bundle: its authorities may root chains over that
   * domain's objects. Replaces the same domain's previous bundle (a bundle
   * with a lower serial is refused); other domains are untouched.
   */
  addBundle(bundle: TrustBundle): void {
    const previous = this.bundles.get(bundle.domain);
    if (previous && bundle.serial < previous.bundle.serial) {
      throw new InvalidArgumentError(
        `bundle serial ${bundle.serial} of ${bundle.domain} is older than the trusted serial ${previous.bundle.serial}`,
      );
    }
    const scope = parseTarget(`urn:fedlab:${bundle.domain}:*`);
    const anchors = bundle.authorities.map((a): Anchor => {
      if (parseUrn(a.urn).domain !== bundle.domain)
        throw new InvalidArgumentError(`bundle of ${bundle.domain} lists ${a.urn} of another domain`);
      const jwk = toPublicJwk(a.jwk as Record<string, unknown>);
      const kid = thumbprintOf(jwk);
      if (kid !== a.kid) throw new InvalidArgumentError(`bundle of ${bundle.domain}: kid of ${a.urn} is not its key's thumbprint`);
      return Object.freeze({ urn: a.urn, jwk, kid, scopes: [scope], source: `bundle:${bundle.domain}` });
    });
    this.bundles.set(bundle.domain, { bundle, anchors });
    this.reindex();
  }

  /** Stops trusting a domain's bundle. */
  removeBundle(domain: string): boolean {
    const had = this.bundles.delete(domain);
    if (had) this.reindex();
    return had;
  }

  /** The trusted bundle of a domain, if any. */
  bundle(domain: string): TrustBundle | undefined {
    return this.bundles.get(domain)?.bundle;
  }

  /** Domains whose bundles are trusted. */
  domains(): string[] {
    return [...this.bundles.keys()].sort();
  }

  /** Trusts one key to root chains over the given domains and/or targets (at least one). */
  addAnchor(options: AddAnchorOptions): Anchor {
    parseUrn(options.urn);
    const scopes = [
      ...(options.domains ?? []).map((d) => parseTarget(`urn:fedlab:${d}:*`)),
      ...(options.targets ?? []).map((t) => parseTarget(t)),
    ];
    if (scopes.length === 0) throw new InvalidArgumentError(`an anchor needs the domains or targets it may root (anchor ${options.urn})`);
    const jwk = toPublicJwk(options.jwk as Record<string, unknown>);
    const anchor: Anchor = Object.freeze({ urn: options.urn, jwk, kid: thumbprintOf(jwk), scopes, source: 'explicit' });
    this.explicit.push(anchor);
    this.reindex();
    return anchor;
  }

  /** Removes explicit anchors with this key (and URN, if given); returns how many. */
  removeAnchor(kid: string, urn?: string): number {
    let removed = 0;
    for (let i = this.explicit.length - 1; i >= 0; i--) {
      const a = this.explicit[i] as Anchor;
      if (a.kid === kid && (urn === undefined || a.urn === urn)) {
        this.explicit.splice(i, 1);
        removed++;
      }
    }
    if (removed > 0) this.reindex();
    return removed;
  }

  /** Replaces the peering policy. */
  setPeeringPolicy(policy: PeeringPolicy): void {
    this.peering = policy;
  }

  /** Every anchor, bundles' first. */
  anchors(): Anchor[] {
    return [...[...this.bundles.values()].flatMap((b) => b.anchors), ...this.explicit];
  }

  /** Anchors holding the key with thumbprint `kid`. */
  anchorsFor(kid: string): readonly Anchor[] {
    return this.byKid.get(kid) ?? [];
  }

  /** True when nothing is trusted. */
  get isEmpty(): boolean {
    return this.byKid.size === 0;
  }

  /**
   * Rule 2: may the key `kid`, claiming to be `iss`, root a chain over every
   * one of `targets` for `privilege`? Own scopes first, then the peering policy.
   */
  checkRoot(kid: string, iss: string, targets: readonly Target[], privilege: Privilege | null): RootCheck {
    if (this.byKid.size === 0)
      return { ok: false, why: 'the trust store is empty: add the domain trust bundles or anchors this service trusts' };
    const candidates = this.byKid.get(kid);
    if (!candidates) return { ok: false, why: `the root is signed by key ${kid}, which is not a trust anchor here` };
    let named = false;
    let lastWhy = '';
    // A loop, not a filter: this runs on every call, and most keys are one anchor.
    for (const anchor of candidates) {
      if (anchor.urn !== iss) continue;
      named = true;
      let peered = false;
      let ok = true;
      for (const t of targets) {
        if (anchor.scopes.some((s) => targetContains(s, t))) continue;
        const anchorDomain = anchor.source.startsWith('bundle:') ? anchor.source.slice(7) : parseUrn(anchor.urn).domain;
        const target = formatTarget(t);
        if (t.domain !== anchorDomain && this.peering({ anchor, anchorDomain, target, targetDomain: t.domain, privilege })) {
          peered = true;
          continue;
        }
        ok = false;
        lastWhy =
          t.domain === anchorDomain
            ? `${iss} is not trusted to root ${target}`
            : `${iss} is an anchor of ${anchorDomain}, not of ${t.domain} (the domain of ${target}), and no peering policy accepts it${privilege ? ` for ${privilege}` : ''}`;
        break;
      }
      if (ok) return { ok: true, anchor, peered };
    }
    if (!named) return { ok: false, why: `key ${kid} is trusted as ${candidates[0]?.urn ?? '?'}, not as the root's issuer ${iss}` };
    return { ok: false, why: lastWhy };
  }

  private reindex(): void {
    const index = new Map<string, Anchor[]>();
    for (const a of this.anchors()) {
      const list = index.get(a.kid);
      if (list) list.push(a);
      else index.set(a.kid, [a]);
    }
    this.byKid = index;
  }
}
