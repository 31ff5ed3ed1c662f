// One federation to attack, every server real and in this process (so a test can read their stores):
// home domain a.test (a planetlab MA with two node managers, the slice authority with two provider
// accounts, acme and beta, and acme's service provider) peered with b.test (its own CA and MA), built on
// federation-harness.ts. Also the principals an attacker may be: the peer domain's owner and admin, a
// second provider, a member, a node's own certificate, and a certificate naming our admin from a CA no
// one trusts. Everything is stopped and removed by destroy().
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spConfig } from '../../cli/kit/role-configs.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../services/core/rpc/server.js';
import { AggregateService } from '../../services/generated/fedlab/v1/aggregate.js';
import { ManagementAuthorityService } from '../../services/generated/fedlab/v1/management_authority.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { ServiceProviderService } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import { serviceProviderRole, type ServiceProvider } from '../../services/service-provider/index.js';
import { sliceAuthorityRole, type SliceAuthority } from '../../services/slice-authority/index.js';
import { startFederationSites, writeSaConfig, type FederationSites } from './federation-harness.js';
import type { Site, SiteParties, TestNode } from './ma-harness.js';
import { makeTestPki, type TestIdentity } from './pki.js';

/** A principal as a test client presents it: URN, certificate and key. */
export interface Principal {
  readonly urn: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** The identity as the PKI issued it, when the test made it (not for node certificates). */
  readonly identity?: TestIdentity;
}

/** Options of {@link startAttackFederation}. */
export interface AttackFederationOptions {
  /** Sliver driver of the home nodes: process (Exec runs commands) or simulated (runs nothing). */
  readonly driver: 'process' | 'simulated';
  readonly dirPrefix: string;
  /** Background timers of the servers, in ms (slow them down where a test watches the stores). */
  readonly timers?: { readonly saSweepMs?: number; readonly maSweepMs?: number };
}

/** The running federation. */
export interface AttackFederation {
  readonly base: FederationSites;
  readonly home: SiteParties;
  readonly peer: SiteParties;
  readonly site: Site;
  readonly nodes: readonly TestNode[];
  readonly sa: { readonly address: string; readonly service: HostedService; readonly domain: SliceAuthority };
  readonly sp: { readonly address: string; readonly service: HostedService; readonly domain: ServiceProvider };
  /** Every CA of the federation (PEM): clients trust it to reach any server. */
  readonly allCaPem: string;
  readonly who: {
    /** The SP's administrator and a reader of its deployments. */
    readonly operator: Principal;
    readonly reader: Principal;
    /** acme (home.sp) and beta: providers with accounts at the slice authority. */
    readonly acme: Principal;
    readonly beta: Principal;
    /** Members (users) of acme: bob gets a chain on acme's side slice, carol is added by AddMember. */
    readonly bob: Principal;
    readonly carol: Principal;
    /** The MA (holder of the nodes' owner → MA chains), the site admin, the slice authority. */
    readonly ma: Principal;
    readonly admin: Principal;
    readonly saIdentity: Principal;
    /** Node n2's own certificate (from enrolment). */
    readonly node: Principal;
    /** Principals of the peer domain b.test. */
    readonly peerOwner: Principal;
    readonly peerAdmin: Principal;
    /** A certificate naming a.test's admin, from a CA of a.test that no one trusts. */
    readonly forged: Principal;
  };
  tls(p: Principal): TlsMaterial;
  maClient(p: Principal): PromiseClient<typeof ManagementAuthorityService>;
  aggClient(p: Principal): PromiseClient<typeof AggregateService>;
  saClient(p: Principal): PromiseClient<typeof SliceAuthorityService>;
  spClient(p: Principal): PromiseClient<typeof ServiceProviderService>;
  nodeClient(node: TestNode, p: Principal): PromiseClient<typeof NodeManagerService>;
  destroy(): Promise<void>;
}

function principal(id: TestIdentity): Principal {
  return { urn: id.urn, certPem: id.certPem, keyPem: id.keyPem, identity: id };
}

/** A node's own certificate and key, as its enrolment wrote them beside its data directory. */
function nodePrincipal(node: TestNode): Principal {
  const dir = dirname(node.dataDir);
  return { urn: node.urn, certPem: readFileSync(join(dir, 'cert.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'key.pem'), 'utf8') };
}

/** Starts the federation; on failure everything already started is stopped. */
export async function startAttackFederation(options: AttackFederationOptions): Promise<AttackFederation> {
  const base = await startFederationSites({
    sites: [
      { domain: 'a.test', nodes: 2, driver: options.driver, config: { sweep_interval_ms: options.timers?.maSweepMs ?? 100 } },
      { domain: 'b.test', nodes: 0 },
    ],
    dirPrefix: options.dirPrefix,
  });
  let saService: HostedService | undefined;
  let spService: HostedService | undefined;
  try {
    const home = base.home;
    const peer = base.parties[1] as SiteParties;
    const site = base.sites[0] as Site;
    const nodes = base.nodes.get('a.test') ?? [];
    const beta = await home.pki.issue('urn:fedlab:a.test:sp:beta');
    const operator = await home.pki.issue('urn:fedlab:a.test:user:operator');
    const reader = await home.pki.issue('urn:fedlab:a.test:user:reader');
    const bob = await home.pki.issue('urn:fedlab:a.test:user:bob');
    const carol = await home.pki.issue('urn:fedlab:a.test:user:carol');
    const rogue = await makeTestPki('a.test');
    const forged = await rogue.issue(home.admin.urn);

    const { config: saConfig } = writeSaConfig(base, {
      port: 0,
      logLevel: 'silent',
      siteDeadlineMs: 8000,
      extra: {
        providers: [
          { urn: home.sp.urn, quotas: {} },
          { urn: beta.urn, quotas: {} },
        ],
        ...(options.timers?.saSweepMs ? { sweep_interval_ms: options.timers.saSweepMs } : {}),
      },
    });
    let saDomain: SliceAuthority | undefined;
    saService = await hostService(saConfig, silentLogger(), sliceAuthorityRole({ onBuilt: (b) => (saDomain = b) }));
    const saAddress = `127.0.0.1:${saService.port}`;

    const providerConfig = spConfig({
      urn: home.sp.urn,
      listen: { host: '127.0.0.1', port: 0 },
      tls: { ca: home.sp.caPath, cert: home.sp.certPath, key: home.sp.keyPath },
      trust_bundle: home.bundleFile,
      data_dir: join(base.dir, 'sp-data'),
      log_level: 'silent',
      shutdown_grace_ms: 1000,
      admins: [operator.urn],
      readers: [reader.urn],
      slice_authority: { urn: home.sa.urn, endpoint: saAddress },
      sites: base.sites.map((s) => ({ domain: s.parties.domain, ma_urn: s.parties.maUrn, endpoint: s.address })),
      registration: { retry_ms: 200, max_retry_ms: 1000 },
      supervision: { backoff_initial_ms: 200, backoff_max_ms: 800, backoff_reset_ms: 5000, retry_ms: 300 },
    }).writeAndCompile(join(base.dir, 'sp.json'));
    let spDomain: ServiceProvider | undefined;
    spService = await hostService(providerConfig, silentLogger(), serviceProviderRole({ onBuilt: (b) => (spDomain = b) }));
    const spAddress = `127.0.0.1:${spService.port}`;

    const allCaPem = base.allCaPem;
    const tls = (p: Principal): TlsMaterial => ({ caCerts: allCaPem, cert: p.certPem, key: p.keyPem });
    const client = <D extends Parameters<typeof createClient>[0]>(definition: D, address: string, serverUrn: string, p: Principal) =>
      base.track(createClient(definition, { address, tls: tls(p), serverUrn, deadlineMs: 60_000 }));
    const sa = saService;
    const sp = spService;
    return {
      base,
      home,
      peer,
      site,
      nodes,
      sa: { address: saAddress, service: sa, domain: saDomain as SliceAuthority },
      sp: { address: spAddress, service: sp, domain: spDomain as ServiceProvider },
      allCaPem,
      who: {
        operator: principal(operator),
        reader: principal(reader),
        acme: principal(home.sp),
        beta: principal(beta),
        bob: principal(bob),
        carol: principal(carol),
        ma: principal(home.ma),
        admin: principal(home.admin),
        saIdentity: principal(home.sa),
        node: nodePrincipal(nodes[1] as TestNode),
        peerOwner: principal(peer.owner),
        peerAdmin: principal(peer.admin),
        forged: principal(forged),
      },
      tls,
      maClient: (p) => client(ManagementAuthorityService, site.address, home.maUrn, p),
      aggClient: (p) => client(AggregateService, site.address, home.maUrn, p),
      saClient: (p) => client(SliceAuthorityService, saAddress, home.sa.urn, p),
      spClient: (p) => client(ServiceProviderService, spAddress, home.sp.urn, p),
      nodeClient: (node, p) => client(NodeManagerService, node.endpoint, node.urn, p),
      destroy: async () => {
        base.closeClients();
        await sp.stop();
        await sa.stop();
        await base.destroy();
        await rogue.cleanup();
      },
    };
  } catch (err) {
    await spService?.stop();
    await saService?.stop();
    await base.destroy();
    throw err;
  }
}
