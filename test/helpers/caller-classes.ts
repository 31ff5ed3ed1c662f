// The classes of caller the authorisation matrix tries every method with (issue 15), and who each one
// is in the attack federation: the right principal with and without its chain, then six who should not
// get in — each presenting the best chain it legitimately holds.
import type { AttackFederation, Principal } from './attack-federation.js';
import type { AttackFixtures } from './attack-fixtures.js';
import type { WireCaller } from './raw-call.js';

/** The caller classes, in the order of the matrix's columns. */
export const CALLER_CLASSES = ['right', 'noChain', 'peer', 'provider', 'member', 'node', 'otherAdmin', 'foreignCa'] as const;
/** One caller class. */
export type CallerClass = (typeof CALLER_CLASSES)[number];

/**
 * Who the right principal of a method is:
 * - `owner-chain`: the site's MA with the owner → MA chain over node n1 (node manager calls the site makes);
 * - `slice-chain`: provider acme with its slice credential on slice main (calls on main's slivers);
 * - `sa-chain`: the slice authority with its MA → SA chain (Aggregate calls);
 * - `sa`: the slice authority by its certificate alone;
 * - `site-admin`: the home site's administrator;
 * - `provider`: provider acme by its certificate alone (the slice authority's calls, registration, open reads);
 * - `operator`: the service provider's administrator;
 * - `heartbeat-node`: a node sending its own heartbeat;
 * - `token`: the bearer of a fresh enrolment token, on the enrolment listener (no client certificate).
 */
export type RightPrincipal =
  'owner-chain' | 'slice-chain' | 'sa-chain' | 'sa' | 'site-admin' | 'provider' | 'operator' | 'heartbeat-node' | 'token';

function caller(label: string, p: Principal | undefined, chain: readonly string[]): WireCaller {
  return p ? { label, cert: p.certPem, key: p.keyPem, chain } : { label, chain };
}

function rightOf(
  fed: AttackFederation,
  fx: AttackFixtures,
  as: RightPrincipal,
): { principal: Principal | undefined; chain: readonly string[] } {
  const { who } = fed;
  switch (as) {
    case 'owner-chain':
      return { principal: who.ma, chain: fx.chains.owner };
    case 'slice-chain':
      return { principal: who.acme, chain: fx.chains.acme };
    case 'sa-chain':
      return { principal: who.saIdentity, chain: fx.chains.maToSa };
    case 'sa':
      return { principal: who.saIdentity, chain: [] };
    case 'site-admin':
      return { principal: who.admin, chain: [] };
    case 'provider':
      return { principal: who.acme, chain: [] };
    case 'operator':
      return { principal: who.operator, chain: [] };
    case 'heartbeat-node':
      return { principal: fx.heartbeatNode.principal, chain: [] };
    case 'token':
      return { principal: undefined, chain: [] };
  }
}

/** The caller of class `cls` for a method whose right principal is `as`. */
export function callerOf(fed: AttackFederation, fx: AttackFixtures, as: RightPrincipal, cls: CallerClass): WireCaller {
  const { who } = fed;
  switch (cls) {
    case 'right': {
      const r = rightOf(fed, fx, as);
      return caller(cls, r.principal, r.chain);
    }
    case 'noChain':
      return caller(cls, rightOf(fed, fx, as).principal, []);
    case 'peer':
      return caller(cls, who.peerOwner, fx.chains.peer);
    case 'provider':
      return caller(cls, who.beta, fx.chains.beta);
    case 'member':
      return caller(cls, who.bob, fx.chains.bob);
    case 'node':
      return caller(cls, who.node, []);
    case 'otherAdmin':
      return caller(cls, who.peerAdmin, []);
    case 'foreignCa':
      return caller(cls, who.forged, []);
  }
}
