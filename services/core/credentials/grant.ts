/**
 * A verified prefix of a chain (rules 1 to 3 hold for it) and the grant its
 * last link gives. Built once per prefix and cached; what depends on the call
 * (the clock, the trust store, revocations, the caller, the privilege and the
 * object) is checked on every call.
 */
import type { Target } from '../identity/urn.js';
import type { Limits, ParsedCredential, Privilege } from './format.js';

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
  /** Issuers of every link, root first. */
  readonly issuers: readonly string[];
  /** base64url SHA-256 of every link, root first. */
  readonly hashes: readonly string[];
  readonly jtis: readonly string[];
  /** How many more delegations the leaf allows. */
  readonly delegationsLeft: number;
}

/** A verified chain prefix ending at `cred` (link `index`). */
export interface VerifiedPrefix {
  readonly index: number;
  readonly cred: ParsedCredential;
  readonly parent: VerifiedPrefix | undefined;
  /** Every link of the prefix, root first. */
  readonly links: readonly ParsedCredential[];
  /** Effective limits at this link. */
  readonly limits: Limits;
  /** Distinct signing-key thumbprints of the prefix: whose revocation lists apply. */
  readonly issuerKids: readonly string[];
  readonly leafTargets: readonly Target[];
  readonly grant: Grant;
  /** Approximate memory held (the links' text). */
  readonly bytes: number;
}

/** Builds the verified prefix that extends `parent` with `cred`. */
export function extendPrefix(parent: VerifiedPrefix | undefined, cred: ParsedCredential, limits: Limits): VerifiedPrefix {
  const links = parent ? [...parent.links, cred] : [cred];
  const issuerKids = parent ? [...parent.issuerKids] : [];
  if (!issuerKids.includes(cred.header.kid)) issuerKids.push(cred.header.kid);
  const root = links[0] as ParsedCredential;
  const c = cred.claims;
  const grant: Grant = Object.freeze({
    privileges: Object.freeze([...c.priv]),
    targets: Object.freeze([...c.tgt]),
    limits: Object.freeze({ ...limits }),
    nbf: c.nbf,
    exp: c.exp,
    holder: Object.freeze({ urn: c.sub, thumbprint: cred.holderKid }),
    root: Object.freeze({ issuer: root.claims.iss, kid: root.header.kid }),
    issuers: Object.freeze(links.map((l) => l.claims.iss)),
    hashes: Object.freeze(links.map((l) => l.hash)),
    jtis: Object.freeze(links.map((l) => l.claims.jti)),
    delegationsLeft: c.dlg,
  });
  return Object.freeze({
    index: links.length - 1,
    cred,
    parent,
    links: Object.freeze(links),
    limits,
    issuerKids: Object.freeze(issuerKids),
    leafTargets: cred.targets,
    grant,
    bytes: (parent?.bytes ?? 0) + cred.token.length + 512,
  });
}
