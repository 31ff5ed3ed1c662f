// A small federation for service provider tests: the sites of federation-harness.ts (domains each with its
// own CA, a real MA over mTLS and real node managers with the `process` driver; peered; every MA delegating
// MA → SA to the home domain's slice authority), that slice authority (a real one, in this process, on a
// fixed port so that it can be stopped and started again), and the service provider — in this process or
// as `fedlab serve sp` (a child process, for kill -9). Test clients trust every test CA (one combined CA file).
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spConfig, type MaConfigInput, type SaConfigInput, type SpConfigInput } from '../../cli/kit/role-configs.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../services/core/rpc/server.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { ServiceProviderService } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import { serviceProviderRole, type ServiceProvider } from '../../services/service-provider/index.js';
import { sliceAuthorityRole } from '../../services/slice-authority/index.js';
import type { TestIdentity } from './pki.js';
import { startFederationSites, writeSaConfig, type FederationParts } from './federation-harness.js';
import { freePort, serveChild, signalChild } from './ma-harness.js';

/** Options of {@link startSpFederation}. */
export interface SpFederationOptions {
  readonly sites: readonly {
    readonly domain: string;
    readonly nodes: number;
    readonly style?: 'planetlab' | 'protogeni';
    /** Extra MA config of the site (e.g. a short `max_sliver_lifetime_s`). */
    readonly config?: Partial<MaConfigInput>;
  }[];
  /** Extra SP config (merged over the defaults, section by section). */
  readonly spConfig?: Partial<SpConfigInput>;
  /** Extra SA config (merged over the defaults). */
  readonly saConfig?: Partial<SaConfigInput>;
  /** Run the SP as `fedlab serve sp` (a child process). */
  readonly child?: boolean;
}

/** A running test federation with a service provider. */
export interface SpFederation extends FederationParts {
  readonly caFile: string;
  readonly spConfigFile: string;
  /** The SP's administrator and a member (home domain identities). */
  readonly spAdmin: TestIdentity;
  readonly member: TestIdentity;
  /** The in-process SP's parts (in-process SP only). */
  sp: ServiceProvider | undefined;
  child: ChildProcess | undefined;
  spAddress(): string;
  /** host:port of the slice authority (for CLI runs). */
  saAddress(): string;
  tls(who: TestIdentity): TlsMaterial;
  spClient(who?: TestIdentity): PromiseClient<typeof ServiceProviderService>;
  saClient(who?: TestIdentity): PromiseClient<typeof SliceAuthorityService>;
  nodeClient(endpoint: string, nodeUrn: string, who: TestIdentity): PromiseClient<typeof NodeManagerService>;
  startSp(): Promise<void>;
  stopSp(): Promise<void>;
  /** Stops the slice authority (its data and port are kept) and starts it again. */
  stopSa(): Promise<void>;
  startSa(): Promise<void>;
  /** Child SP only: kill -9 and wait for it to be gone. */
  kill9Sp(): Promise<void>;
  destroy(): Promise<void>;
}

/** Starts the sites, their nodes, the delegations, the slice authority and the service provider. */
export async function startSpFederation(options: SpFederationOptions): Promise<SpFederation> {
  const base = await startFederationSites({ sites: options.sites.map((s) => ({ ...s, driver: 'process' })), dirPrefix: 'fedlab-sp-' });
  const { dir, home } = base;
  let sa: HostedService | undefined;
  let sp: HostedService | undefined;
  const stopServers = async (): Promise<void> => {
    await sp?.stop();
    await sa?.stop();
  };
  try {
    const caFile = join(dir, 'all-ca.pem');
    writeFileSync(caFile, base.allCaPem);
    const spAdmin = await home.pki.issue(`urn:fedlab:${home.domain}:user:operator`);
    const member = await home.pki.issue(`urn:fedlab:${home.domain}:user:bob`);

    const saPort = await freePort();
    const { config: saConfig } = writeSaConfig(base, {
      port: saPort,
      logLevel: 'silent',
      siteDeadlineMs: 8000,
      ...(options.saConfig ? { extra: options.saConfig } : {}),
    });
    sa = await hostService(saConfig, silentLogger(), sliceAuthorityRole());
    const saAddress = `127.0.0.1:${saPort}`;

    const spPort = options.child ? await freePort() : 0;
    const spConfigFile = join(dir, 'sp.json');
    const providerConfig = spConfig({
      urn: home.sp.urn,
      listen: { host: '127.0.0.1', port: spPort },
      tls: { ca: home.sp.caPath, cert: home.sp.certPath, key: home.sp.keyPath },
      trust_bundle: home.bundleFile,
      data_dir: join(dir, 'sp-data'),
      log_level: options.child ? 'info' : 'silent',
      shutdown_grace_ms: 2000,
      admins: [spAdmin.urn],
      readers: [`urn:fedlab:${home.domain}:user:*`],
      slice_authority: { urn: home.sa.urn, endpoint: saAddress },
      sites: base.sites.map((s) => ({ domain: s.parties.domain, ma_urn: s.parties.maUrn, endpoint: s.address })),
      registration: { retry_ms: 200, max_retry_ms: 1000 },
      supervision: { backoff_initial_ms: 200, backoff_max_ms: 800, backoff_reset_ms: 5000, retry_ms: 300 },
      ...options.spConfig,
    }).writeAndCompile(spConfigFile);
    let spAddress = '';
    const tls = (who: TestIdentity): TlsMaterial => ({ caCerts: base.allCaPem, cert: who.certPem, key: who.keyPem });
    const fed: SpFederation = {
      dir,
      home,
      sites: base.sites,
      nodes: base.nodes,
      caFile,
      spConfigFile,
      spAdmin,
      member,
      sp: undefined,
      child: undefined,
      spAddress: () => spAddress,
      saAddress: () => saAddress,
      tls,
      spClient: (who = spAdmin) =>
        base.track(createClient(ServiceProviderService, { address: spAddress, tls: tls(who), serverUrn: home.sp.urn, deadlineMs: 60_000 })),
      saClient: (who = home.sp) =>
        base.track(createClient(SliceAuthorityService, { address: saAddress, tls: tls(who), serverUrn: home.sa.urn, deadlineMs: 30_000 })),
      nodeClient: (endpoint, nodeUrn, who) =>
        base.track(createClient(NodeManagerService, { address: endpoint, tls: tls(who), serverUrn: nodeUrn, deadlineMs: 15_000 })),
      sliversOnNodes: () => base.sliversOnNodes(),
      startSp: async () => {
        if (options.child) {
          fed.child = await serveChild('sp', spConfigFile, 120_000);
          spAddress = `127.0.0.1:${spPort}`;
        } else {
          sp = await hostService(providerConfig, silentLogger(), serviceProviderRole({ onBuilt: (built) => (fed.sp = built) }));
          spAddress = `127.0.0.1:${sp.port}`;
        }
      },
      stopSp: async () => {
        const s = sp;
        sp = undefined;
        await s?.stop();
        await signalChild(fed.child, 'SIGTERM');
      },
      stopSa: async () => {
        const s = sa;
        sa = undefined;
        await s?.stop();
      },
      startSa: async () => {
        sa ??= await hostService(saConfig, silentLogger(), sliceAuthorityRole());
      },
      kill9Sp: () => signalChild(fed.child, 'SIGKILL'),
      destroy: async () => {
        base.closeClients();
        await fed.stopSp();
        await fed.stopSa();
        await base.destroy();
      },
    };
    await fed.startSp();
    return fed;
  } catch (err) {
    await stopServers();
    await base.destroy();
    throw err;
  }
}
