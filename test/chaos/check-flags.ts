// The `fedlab federation check` flags for a local federation (cli/up: `fedlab up`, the e2e and chaos
// federations): the home administrator for the slice authority, each site's administrator for its MA,
// each site's owner → MA chain held by its MA for the nodes, the slice authority's own identity and
// chains for releases at sites, and every domain's CA.
import { checkTarget, type CheckFlags, type CheckTarget } from '../../cli/commands/federation/check-target.js';
import type { LocalFederation } from '../../cli/up/federation.js';
import { nodePaths, sitePaths } from '../../cli/up/plan.js';

/** The check's flags as parsed values. */
export function checkFlagsFor(fed: LocalFederation, o: { grace?: string; timeout?: string } = {}): CheckFlags {
  const sites = fed.sites;
  const pairs = (f: (s: (typeof sites)[number]) => string): string[] => sites.map((s) => `${s.domain}=${f(s)}`);
  return {
    sa: fed.saAddress,
    tlsDir: sitePaths(fed.dir, fed.home).admin,
    ma: pairs((s) => s.address),
    siteTls: pairs((s) => s.paths.admin),
    // The owner → MA chain covers every node of the site (target node:*); the MA holds it.
    nodeChain: pairs((s) => nodePaths(fed.dir, s.domain, s.plan.nodes[0]?.name ?? 'n1').ownerChain),
    nodeTls: pairs((s) => s.paths.ma),
    saTlsDir: fed.homePaths.sa,
    siteChain: pairs((s) => fed.chainFile(s.domain)),
    ca: fed.allCaFile,
    ...(o.grace ? { grace: o.grace } : {}),
    ...(o.timeout ? { timeout: o.timeout } : {}),
  };
}

/** The same as command-line arguments (after `fedlab federation check`). */
export function checkArgsFor(fed: LocalFederation, o: { grace?: string; timeout?: string } = {}): string[] {
  const f = checkFlagsFor(fed, o);
  const many = (flag: string, values: readonly string[]): string[] => values.flatMap((v) => [flag, v]);
  return [
    '--sa',
    f.sa,
    '--tls-dir',
    f.tlsDir,
    ...many('--ma', f.ma),
    ...many('--site-tls', f.siteTls),
    ...many('--node-chain', f.nodeChain),
    ...many('--node-tls', f.nodeTls),
    '--sa-tls-dir',
    f.saTlsDir as string,
    ...many('--site-chain', f.siteChain),
    '--ca',
    f.ca as string,
    ...(f.grace ? ['--grace', f.grace] : []),
    ...(f.timeout ? ['--timeout', f.timeout] : []),
  ];
}

/** The check's target, for running it in this process (the chaos suite's oracle). */
export function checkTargetFor(fed: LocalFederation, o: { grace?: string; timeout?: string } = {}): CheckTarget {
  return checkTarget(checkFlagsFor(fed, o));
}
