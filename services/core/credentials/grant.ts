/**
 * A verified prefix of a chain (rules 1 to 3 hold for it) and the grant its
 * last link gives. Built once per prefix and cached; what depends on the call
 * (the clock, the trust store, revocations, the caller, the privilege and the
 * object) is checked on every call.
 */
import type { Target } from '../identity/urn.js';
import { effectiveIncarnation } from './attenuation.js';
import type { Limits, ParsedCredential, Privilege } from './format.js';
import type { PublicJwk } from './keys.js';

/** What a verified chain lets its holder do. */
export interface Grant {
  readonly privileges: readonly Privilege[];
  /** Target patterns of the leaf. */
  readonly targets: readonly string[];
  /** Effective resource caps (inherited values filled in); an absent key means no cap. */
  readonly limits: Limits;
  /** Validity of the leaf (the tightest of the chain), seconds since the epoch, without skew. */
  readonly nbf: number;
  readonly exp: number;
  /** The leaf's holder: its URN and key thumbprint. */
  readonly holder: { readonly urn: string; readonly thumbprint: string };
  /** The root's issuer and key. */
  readonly root: { readonly issuer: string; readonly kid: string };
  /** Who the root was issued to (its `sub` and `cnf.jwk`, and that key's thumbprint): an MA's slice authority. */
  readonly rootHolder: { readonly urn: string; readonly jwk: PublicJwk; readonly kid: string };
  /** Issuers of every link, root first. */
  readonly issuers: readonly string[];
  /** base64url SHA-256 of every link, root first. */
  readonly hashes: readonly string[];
  readonly jtis: readonly string[];
  /** How many more delegations the leaf allows. */
  readonly delegationsLeft: number;
  /** The slice incarnation the chain is bound to (the `inc` its links name); absent when none names one. */
  readonly incarnation?: string;
}

/** A verified prefix of a chain ending at `cred` (link `index`); rules 1 (but the clock) and 3 hold for it. */
export class VerifiedPrefix {
  readonly index: number;
  /** Every link of the prefix, root first. */
  readonly links: readonly ParsedCredential[];
  /** Distinct signing-key thumbprints of the prefix: whose revocation lists apply. */
  readonly issuerKids: readonly string[];
  /** Approximate memory held (the links' text). */
  readonly bytes: number;
  /** The slice incarnation the prefix is bound to (the last `inc` of its links). */
  readonly incarnation: string | undefined;
  private grantValue: Grant | undefined;

  constructor(
    readonly parent: VerifiedPrefix | undefined,
    readonly cred: ParsedCredential,
    /** Effective limits at this link. */
    readonly limits: Limits,
  ) {
    this.links = parent ? [...parent.links, cred] : [cred];
    this.index = this.links.length - 1;
    this.issuerKids = parent
      ? parent.issuerKids.includes(cred.header.kid)
        ? parent.issuerKids
        : [...parent.issuerKids, cred.header.kid]
      : [cred.header.kid];
    this.bytes = (parent?.bytes ?? 0) + cred.token.length + 512;
    this.incarnation = effectiveIncarnation(parent?.incarnation, cred.claims);
  }

  /** Target patterns of the last link, parsed. */
  get leafTargets(): readonly Target[] {
    return this.cred.targets;
  }

  /** The grant of this prefix, built when first asked for (most prefixes only lead to a longer chain). */
  get grant(): Grant {
    return (this.grantValue ??= buildGrant(this.links, this.limits, this.incarnation));
  }
}

function buildGrant(links: readonly ParsedCredential[], limits: Limits, incarnation: string | undefined): Grant {
  const n = links.length;
  const root = links[0] as ParsedCredential;
  const cred = links[n - 1] as ParsedCredential;
  const c = cred.claims;
  const issuers = new Array<string>(n);
  const jtis = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const l = links[i] as ParsedCredential;
    issuers[i] = l.claims.iss;
    jtis[i] = l.claims.jti;
  }
  // The leaf's hash is needed only by those who show or extend the chain: computed when first asked for.
  let hashes: readonly string[] | undefined;
  const grant = {
    privileges: Object.freeze(c.priv.slice()),
    targets: Object.freeze(c.tgt.slice()),
    // The prefix's own object, made for it alone (effectiveLimits): frozen in place, as a copy's spread shape froze slowly.
    limits: Object.freeze(limits),
    nbf: c.nbf,
    exp: c.exp,
    holder: Object.freeze({ urn: c.sub, thumbprint: cred.holderKid }),
    root: Object.freeze({ issuer: root.claims.iss, kid: root.header.kid }),
    // A frozen copy: the parsed link stays the verifier's (the next link's signature was checked under it).
    rootHolder: Object.freeze({ urn: root.claims.sub, jwk: Object.freeze({ ...root.claims.cnf.jwk }), kid: root.holderKid }),
    issuers: Object.freeze(issuers),
    get hashes(): readonly string[] {
      return (hashes ??= Object.freeze(links.map((l) => l.hash)));
    },
    jtis: Object.freeze(jtis),
    delegationsLeft: c.dlg,
  };
  if (incarnation !== undefined) (grant as { incarnation?: string }).incarnation = incarnation;
  return Object.freeze(grant);
}

/** Builds the verified prefix that extends `parent` with `cred`. */
export function extendPrefix(parent: VerifiedPrefix | undefined, cred: ParsedCredential, limits: Limits): VerifiedPrefix {
  return new VerifiedPrefix(parent, cred, limits);
}
