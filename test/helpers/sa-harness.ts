// A small federation for slice authority tests: the sites of federation-harness.ts (domains of different
// styles, each its own CA, a real MA over mTLS and real node managers; peered; every MA delegating MA → SA
// to the home domain's slice authority) and the slice authority itself, in this process or as `fedlab serve
// sa` (a child process).
import type { ChildProcess } from 'node:child_process';
import type { SaConfigInput } from '../../cli/kit/role-configs.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import { sliceAuthorityRole, type SliceAuthority } from '../../services/slice-authority/index.js';
import type { TestIdentity } from './pki.js';
import {
  startFederationSites,
  writeSaConfig,
  type DeadSite,
  type FederationParts,
  type FederationSiteOptions,
} from './federation-harness.js';
import { freePort, serveChild, signalChild, type TestNode } from './ma-harness.js';

/** One site of the federation. */
export interface FedSiteOptions extends FederationSiteOptions {
  readonly style: 'planetlab' | 'emulab' | 'protogeni';
}

/** Options of {@link startFederation}. */
export interface FederationOptions {
  readonly sites: readonly FedSiteOptions[];
  /** Extra SA config (merged over the defaults, section by section). */
  readonly saConfig?: Partial<SaConfigInput>;
  /** Quotas of the provider account. */
  readonly quotas?: NonNullable<SaConfigInput['providers']>[number]['quotas'];
  /** Run the SA as `fedlab serve sa` in a child process. */
  readonly child?: boolean;
  /** Sites that are configured but do not work (see {@link DeadSite}). */
  readonly deadSites?: readonly DeadSite[];
}

/** A running test federation. */
export interface Federation extends FederationParts {
  readonly configFile: string;
  readonly saAddress: () => string;
  /** The in-process SA's parts (in-process SA only). */
  sa: SliceAuthority | undefined;
  child: ChildProcess | undefined;
  /** A SliceAuthority client as `who` (the home provider by default). */
  saClient(who?: TestIdentity): PromiseClient<typeof SliceAuthorityService>;
  /** A NodeManager client of a node as `who` (home domain identities). */
  nodeClient(node: TestNode, who: TestIdentity): PromiseClient<typeof NodeManagerService>;
  startSa(): Promise<void>;
  stopSa(): Promise<void>;
  /** Child SA only: kill -9 and wait for it to be gone. */
  kill9Sa(): Promise<void>;
  destroy(): Promise<void>;
}

/** Starts the sites, their nodes, the delegations and the slice authority. */
export async function startFederation(options: FederationOptions): Promise<Federation> {
  const base = await startFederationSites({ sites: options.sites, deadSites: options.deadSites ?? [], dirPrefix: 'fedlab-sa-' });
  try {
    const { home } = base;
    const port = options.child ? await freePort() : 0;
    const { file: configFile, config } = writeSaConfig(base, {
      port,
      logLevel: options.child ? 'info' : 'silent',
      siteDeadlineMs: 6000,
      quotas: options.quotas ?? {},
      extra: options.saConfig ?? {},
    });

    let service: HostedService | undefined;
    let address = '';
    const saClients: { close(): void }[] = [];
    const fed: Federation = {
      dir: base.dir,
      home,
      sites: base.sites,
      nodes: base.nodes,
      configFile,
      saAddress: () => address,
      sa: undefined,
      child: undefined,
      saClient: (who = home.sp) => {
        const c = createClient(SliceAuthorityService, {
          address,
          tls: { caCerts: home.pki.caPem, cert: who.certPem, key: who.keyPem },
          serverUrn: home.sa.urn,
          deadlineMs: 60_000,
        });
        saClients.push(c);
        return c;
      },
      nodeClient: (node, who) =>
        base.track(
          createClient(NodeManagerService, {
            address: node.endpoint,
            tls: { caCerts: base.allCaPem, cert: who.certPem, key: who.keyPem },
            serverUrn: node.urn,
            deadlineMs: 15_000,
          }),
        ),
      sliversOnNodes: () => base.sliversOnNodes(),
      startSa: async () => {
        if (options.child) {
          fed.child = await serveChild('sa', configFile);
          address = `127.0.0.1:${port}`;
        } else {
          service = await hostService(config, silentLogger(), sliceAuthorityRole({ onBuilt: (built) => (fed.sa = built) }));
          address = `127.0.0.1:${service.port}`;
        }
      },
      stopSa: async () => {
        for (const c of saClients.splice(0)) c.close();
        const s = service;
        service = undefined;
        await s?.stop();
        await signalChild(fed.child, 'SIGTERM');
      },
      kill9Sa: async () => {
        for (const c of saClients.splice(0)) c.close();
        await signalChild(fed.child, 'SIGKILL');
      },
      destroy: async () => {
        await fed.stopSa();
        await base.destroy();
      },
    };
    await fed.startSa();
    return fed;
  } catch (err) {
    await base.destroy();
    throw err;
  }
}

/** Recording what node managers get (ma-harness.ts; re-exported for the SA tests). */
export { recordNodeCalls, type NodeCalls, type RecordedNodeCall } from './ma-harness.js';
