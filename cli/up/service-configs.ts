/**
 * The configs of a local federation's services, built with the kit (cli/kit) from the plan: typed
 * from each role's schema and checked as they are built, before any process starts. Ports come from
 * the plan; paths are the federation directory's (plan.ts).
 */
import { maConfig, nmConfig, saConfig, spConfig } from '../kit/role-configs.js';
import type { LocalFederation } from './federation.js';
import { homeUrns, siteUrns } from './pki.js';
import { nodeNetworkOf } from './node-networks.js';
import { nodePaths, sitePaths, type SitePlan } from './plan.js';

/** The management authority of a site. */
export function maConfigOf(fed: LocalFederation, site: SitePlan) {
  const paths = sitePaths(fed.dir, site.domain);
  return maConfig({
    urn: siteUrns(site.domain).ma,
    style: site.style,
    listen: { host: '127.0.0.1', port: site.ma_port },
    tls: { ca: `${paths.ma}/ca.pem`, cert: `${paths.ma}/cert.pem`, key: `${paths.ma}/key.pem` },
    trust_bundle: paths.bundle,
    data_dir: paths.maData,
    log_level: fed.logLevel,
    // Prometheus metrics on a port picked at start; fedlab up prints each address it logged.
    metrics: { listen: { host: '127.0.0.1', port: 0 } },
    shutdown_grace_ms: 3000,
    admins: [siteUrns(site.domain).admin],
    enrolment: { listen: { host: '127.0.0.1', port: site.enrol_port }, ca_dir: paths.ca },
    federation: { bundle_listen: { host: '127.0.0.1', port: site.bundle_port }, reload_interval_ms: 500 },
    ...(site.dashboard_port !== undefined
      ? { dashboard: { listen: { host: '127.0.0.1', port: site.dashboard_port }, login_link_file: paths.maDashboardLink } }
      : {}),
    heartbeat: { interval_ms: fed.heartbeatMs, flush_interval_ms: 500 },
    defaults: { cpu_millis: 100, mem_mb: 64, disk_mb: 64, pids: 64 },
    node_calls: { deadline_ms: 8000 },
    intent_retry_interval_ms: 1000,
    // Each site delegates to the home domain's slice authority only (its own domain's by default).
    delegation_policy: { allow_own_domain: true, allow: site.domain === fed.home ? [] : [homeUrns(fed.home).sa] },
  });
}

/** Id ranges each local node manager may hand out: its capacity of 20 slivers, with room to spare. */
const RANGES_PER_NODE = 32;

/**
 * The first host id of a node manager's slivers. Every node manager of a local federation shares one
 * host, so each gets id ranges of its own: two slivers of different nodes must never share host ids.
 */
function uidBaseOf(fed: LocalFederation, domain: string, name: string): number {
  let index = 0;
  for (const s of fed.state.sites) {
    for (const n of s.nodes) {
      if (s.domain === domain && n.name === name) return 200_000 + index * RANGES_PER_NODE * 65_536;
      index++;
    }
  }
  throw new Error(`node ${name} of ${domain} is not in the plan`);
}

/** A node manager of a site. */
export function nmConfigOf(fed: LocalFederation, site: SitePlan, node: { name: string; port: number }) {
  const paths = sitePaths(fed.dir, site.domain);
  const own = nodePaths(fed.dir, site.domain, node.name);
  const urns = siteUrns(site.domain);
  const network = nodeNetworkOf(fed, site, node.name);
  return nmConfig({
    urn: urns.node(node.name),
    listen: { host: '127.0.0.1', port: node.port },
    endpoint: `localhost:${node.port}`,
    tls: { ca: own.ca, cert: own.cert, key: own.key },
    trust_bundle: paths.bundle,
    data_dir: own.data,
    log_level: fed.logLevel,
    // Prometheus metrics on a port picked at start; fedlab up prints each address it logged.
    metrics: { listen: { host: '127.0.0.1', port: 0 } },
    shutdown_grace_ms: 2000,
    owner: { certificate: `${paths.owner}/cert.pem`, credential: own.ownerChain },
    management_authority: { urn: urns.ma, address: `localhost:${site.ma_port}` },
    style: site.style,
    exclusive: site.style === 'emulab',
    driver: fed.driver.kind,
    capacity: { cpu_millis: 1000, mem_mb: 1024, disk_mb: 2048, pids: 512, slivers: 20 },
    container: { uid_base: uidBaseOf(fed, site.domain, node.name), id_ranges: RANGES_PER_NODE },
    defaults: { cpu_millis: 100, mem_mb: 64, disk_mb: 64, pids: 64 },
    reaper_interval_ms: 1000,
    heartbeat_interval_ms: fed.heartbeatMs,
    heartbeat_deadline_ms: 2000,
    federation: { reload_interval_ms: 500 },
    // Logins to slivers with any OpenSSH client (the port is picked at start and published in the manifests).
    ssh: { listen: '127.0.0.1:0' },
    // Container slivers on a network of their own, and links between them (node-networks.ts).
    ...(network ? { network } : {}),
  });
}

/** The home domain's slice authority: every site, with the chain its admin delegated. */
export function saConfigOf(fed: LocalFederation) {
  const own = fed.homePaths;
  return saConfig({
    urn: homeUrns(fed.home).sa,
    listen: { host: '127.0.0.1', port: fed.state.sa_port },
    tls: { ca: `${own.sa}/ca.pem`, cert: `${own.sa}/cert.pem`, key: `${own.sa}/key.pem` },
    trust_bundle: sitePaths(fed.dir, fed.home).bundle,
    data_dir: own.saData,
    log_level: fed.logLevel,
    // Prometheus metrics on a port picked at start; fedlab up prints each address it logged.
    metrics: { listen: { host: '127.0.0.1', port: 0 } },
    shutdown_grace_ms: 3000,
    admins: [siteUrns(fed.home).admin],
    sites: fed.sites.map((s) => ({
      domain: s.domain,
      endpoint: s.address,
      ma_urn: s.maUrn,
      chain_file: fed.chainFile(s.domain),
      ...(s.domain === fed.home ? {} : { ca: `${s.paths.ca}/ca.pem` }),
    })),
    providers: [{ urn: homeUrns(fed.home).sp, quotas: { slices: 20, slivers: 200 } }],
    limits: { site_deadline_ms: 6000 },
    federation: { reload_interval_ms: 500 },
    ...(fed.state.sa_dashboard_port !== undefined
      ? { dashboard: { listen: { host: '127.0.0.1', port: fed.state.sa_dashboard_port }, login_link_file: own.saDashboardLink } }
      : {}),
    sweep_interval_ms: 500,
    intent_retry_interval_ms: 1000,
  });
}

/** The home domain's service provider, registered with every site. */
export function spConfigOf(fed: LocalFederation) {
  const own = fed.homePaths;
  const urns = homeUrns(fed.home);
  return spConfig({
    urn: urns.sp,
    listen: { host: '127.0.0.1', port: fed.state.sp_port },
    tls: { ca: `${own.sp}/ca.pem`, cert: `${own.sp}/cert.pem`, key: `${own.sp}/key.pem` },
    trust_bundle: sitePaths(fed.dir, fed.home).bundle,
    data_dir: own.spData,
    log_level: fed.logLevel,
    // Prometheus metrics on a port picked at start; fedlab up prints each address it logged.
    metrics: { listen: { host: '127.0.0.1', port: 0 } },
    shutdown_grace_ms: 3000,
    admins: [urns.operator],
    readers: [urns.member],
    contact: `operators@${fed.home}`,
    slice_authority: { urn: urns.sa, endpoint: fed.saAddress },
    sites: fed.sites.map((s) => ({ domain: s.domain, ma_urn: s.maUrn, endpoint: s.address })),
    supervision: { backoff_initial_ms: 500, backoff_max_ms: 5000 },
    federation: { reload_interval_ms: 500 },
  });
}
