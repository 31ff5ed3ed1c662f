// The `fedlab federation check` flags for a local federation (cli/up: `fedlab up`, the e2e and chaos
// federations): the home administrator for the slice authority, each site's administrator for its MA,
// each site's owner → MA chain held by its MA for the nodes, the slice authority's own identity and
// chains for releases at sites, and every domain's CA. Made from a federation this process started, or
// from the directory of a `fedlab up` that runs in another process (upLayout).
import { checkTarget, type CheckFlags, type CheckTarget } from '../../cli/commands/federation/check-target.js';
import { LocalFederation, type SiteRuntime } from '../../cli/up/federation.js';
import { nodePaths, readState, sitePaths } from '../../cli/up/plan.js';

/** What the flags are made from: the federation's directory, home, addresses and files. */
export type FederationLayout = Pick<LocalFederation, 'dir' | 'home' | 'saAddress' | 'homePaths' | 'allCaFile' | 'chainFile'> & {
  readonly sites: readonly Pick<SiteRuntime, 'domain' | 'address' | 'paths' | 'plan'>[];
};

/**
 * The layout of a `fedlab up` directory whose federation runs in another process, from its state file.
 * The paths come from the same getters `fedlab up` uses (a federation object over the state, not opened:
 * opening refuses a directory whose processes run).
 */
export function upLayout(dir: string): FederationLayout {
  const state = readState(dir);
  if (!state) throw new Error(`${dir} holds no fedlab up state`);
  const view = Object.assign(Object.create(LocalFederation.prototype) as LocalFederation, { dir, state });
  return {
    dir,
    home: view.home,
    saAddress: view.saAddress,
    homePaths: view.homePaths,
    allCaFile: view.allCaFile,
    chainFile: (domain: string) => view.chainFile(domain),
    // Clients dial an MA at localhost (a name its certificate carries), as `fedlab up` does.
    sites: state.sites.map((plan) => ({
      domain: plan.domain,
      address: `localhost:${plan.ma_port}`,
      paths: sitePaths(dir, plan.domain),
      plan,
    })),
  };
}

/** The check's flags as parsed values. */
export function checkFlagsFor(fed: FederationLayout, o: { grace?: string; timeout?: string } = {}): CheckFlags {
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
export function checkArgsFor(fed: FederationLayout, o: { grace?: string; timeout?: string } = {}): string[] {
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
export function checkTargetFor(fed: FederationLayout, o: { grace?: string; timeout?: string } = {}): CheckTarget {
  return checkTarget(checkFlagsFor(fed, o));
}
