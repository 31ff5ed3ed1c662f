// The federation under the slice authority and service provider tests, in one call: a site per domain
// (each its own CA, a real MA over mTLS and real node managers enrolled through it — see ma-harness.ts),
// the domains peered with each other the way `fedlab federation peer add` leaves them (a peer record of
// every other domain in each domain's peers directory, beside its trust bundle, so each server accepts the
// others' certificates, each CA vouching only for its own domain), and every MA delegating MA → SA to the
// home domain's slice authority, its chain written to a file an SA config names. Also the SA config itself.
// sa-harness.ts and sp-harness.ts add only the servers that are theirs; the test owns and closes them all.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeChainFile } from '../../cli/chain-file.js';
import { peerEachOther } from '../../cli/kit/peering.js';
import {
  saConfig,
  type LogLevel,
  type MaConfigInput,
  type NmConfigInput,
  type SaConfigInput,
  type SaSiteInput,
} from '../../cli/kit/role-configs.js';
import { issueRoot } from '../../services/core/credentials/index.js';
import { NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import type { SliverDriver } from '../../services/node-manager/drivers/driver.js';
import type { SaConfig } from '../../services/slice-authority/index.js';
import { enrolNode, siteParties, startSite, until, type Site, type SiteParties, type TestNode } from './ma-harness.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

/** One site of a test federation: a domain with its own CA, MA and node managers. */
export interface FederationSiteOptions {
  readonly domain: string;
  /** The MA's style (planetlab unless given). */
  readonly style?: 'planetlab' | 'emulab' | 'protogeni';
  /** How many node managers to enrol (named n1, n2, …); all are UP before the federation is returned. */
  readonly nodes: number;
  /** The node managers' driver (process unless given; container needs root, cgroups and runc). */
  readonly driver?: 'process' | 'simulated' | 'container';
  /** A driver object per node (e.g. a slowed-down simulated driver for fault tests). */
  readonly driverObject?: () => SliverDriver;
  /** Extra MA config (merged over the defaults, section by section). */
  readonly config?: Partial<MaConfigInput>;
  /** Extra node manager config for each of the site's nodes (merged over the defaults, section by section), e.g. `{ ssh: { listen: '127.0.0.1:0' } }`. */
  readonly nodeConfig?: Partial<NmConfigInput>;
}

/**
 * A site that is configured but does not work (a closed port, or a server that never answers): it gets a
 * well-formed MA → SA chain signed by a key of its own, so the SA accepts the config.
 */
export interface DeadSite {
  readonly domain: string;
  readonly endpoint: string;
}

/** Options of {@link startFederationSites}. */
export interface FederationSitesOptions {
  /** The sites; the first one's domain is the home domain (its slice authority and provider). */
  readonly sites: readonly FederationSiteOptions[];
  readonly deadSites?: readonly DeadSite[];
  /** Prefix of the temporary directory (its name says which harness made it). */
  readonly dirPrefix: string;
}

/** One `sites` entry of a slice authority config. */
export type SaSiteEntry = SaSiteInput;

/** What every test federation shows its tests: its directory, the home domain's parties, the sites and their nodes. */
export interface FederationParts {
  /** A temporary directory, removed when the federation is destroyed. */
  readonly dir: string;
  readonly home: SiteParties;
  readonly sites: readonly Site[];
  /** The node managers of every site, by domain. */
  readonly nodes: ReadonlyMap<string, readonly TestNode[]>;
  /** Every sliver on every node, as the nodes' owners see them: `[nodeUrn, sliceUrn, sliverUrn]`. */
  sliversOnNodes(): Promise<[string, string, string][]>;
}

/** The running sites of a test federation (no slice authority yet). */
export interface FederationSites extends FederationParts {
  /** The parties of every site, in the order of the options; the first is {@link FederationSites.home}. */
  readonly parties: readonly SiteParties[];
  /** The `sites` of the home slice authority's config: every site, then every dead site, each with its chain file. */
  readonly saSites: readonly SaSiteEntry[];
  /** Every site's CA certificate (PEM, one after another): trusts any server of the federation. */
  readonly allCaPem: string;
  /** Keeps a client to be closed first by {@link FederationSites.destroy}; returns it. */
  track<C extends { close(): void }>(client: C): C;
  /** Closes the tracked clients (before the servers they talk to stop). */
  closeClients(): void;
  /** Closes the tracked clients, then destroys the nodes (and their sliver runtimes), the MAs and the directory. */
  destroy(): Promise<void>;
}

/** An MA → SA chain for a dead site, signed by a key that no one else has. */
async function deadSiteChain(home: SiteParties, dead: DeadSite): Promise<{ maUrn: string; chain: readonly string[] }> {
  const key = generateKeyPair('p256');
  const maUrn = `urn:fedlab:${dead.domain}:authority:ma`;
  const { chain } = await issueRoot({
    key: key.privateKey,
    issuer: maUrn,
    subject: home.sa.urn,
    subjectKey: home.sa.jwk as Record<string, unknown>,
    targets: [`urn:fedlab:${dead.domain}:node:*`],
    privileges: ['sliver.create', 'sliver.delete', 'sliver.renew', 'sliver.control', 'sliver.read', 'node.read'],
    dlg: 1,
    ttlSeconds: 30 * 86_400,
  });
  return { maUrn, chain };
}

/**
 * Starts the sites of a federation: PKIs, peering, MAs (each allowed to delegate to the home slice
 * authority), node managers (waiting until every one is UP) and the MA → SA delegations. On failure
 * everything already started is stopped and removed before the error is thrown.
 */
export async function startFederationSites(options: FederationSitesOptions): Promise<FederationSites> {
  const dir = mkdtempSync(join(tmpdir(), options.dirPrefix));
  const sites: Site[] = [];
  const nodes = new Map<string, TestNode[]>();
  const clients: { close(): void }[] = [];
  const closeClients = (): void => {
    for (const c of clients.splice(0)) c.close();
  };
  const destroy = async (): Promise<void> => {
    closeClients();
    for (const list of nodes.values()) for (const n of list) await n.destroy();
    for (const s of sites) await s.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const parties: SiteParties[] = [];
    for (const s of options.sites) parties.push(await siteParties(s.domain));
    const home = parties[0] as SiteParties;
    // Peered the way `fedlab federation peer add` leaves them: each domain pins every other's bundle.
    await peerEachOther(parties);
    for (const [i, s] of options.sites.entries()) {
      const site = await startSite({
        style: s.style ?? 'planetlab',
        parties: parties[i] as SiteParties,
        config: { delegation_policy: { allow_own_domain: true, allow: [home.sa.urn] }, ...s.config },
      });
      sites.push(site);
      const list: TestNode[] = [];
      nodes.set(s.domain, list);
      for (let n = 1; n <= s.nodes; n++)
        list.push(
          await enrolNode(site, {
            name: `n${n}`,
            driver: s.driver ?? 'process',
            ...(s.driverObject ? { driverObject: s.driverObject() } : {}),
            ...(s.nodeConfig ? { config: s.nodeConfig } : {}),
          }),
        );
      await until(
        async () =>
          (await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes.length === s.nodes,
        15_000,
        `${s.domain}: ${s.nodes} nodes UP`,
      );
    }
    const saSites: SaSiteEntry[] = [];
    const chainFile = (domain: string, chain: readonly string[]): string => writeChainFile(join(dir, `${domain}.chain`), chain);
    for (const [i, site] of sites.entries()) {
      const chain = await site.saChain({ requestId: `sa-${i}`, sa: home.sa });
      saSites.push({
        domain: site.parties.domain,
        endpoint: site.address,
        ma_urn: site.parties.maUrn,
        chain_file: chainFile(site.parties.domain, chain),
      });
    }
    for (const dead of options.deadSites ?? []) {
      const { maUrn, chain } = await deadSiteChain(home, dead);
      saSites.push({ domain: dead.domain, endpoint: dead.endpoint, ma_urn: maUrn, chain_file: chainFile(dead.domain, chain) });
    }
    return {
      dir,
      parties,
      home,
      sites,
      nodes,
      saSites,
      allCaPem: parties.map((p) => p.pki.caPem).join(''),
      track: (c) => {
        clients.push(c);
        return c;
      },
      closeClients,
      sliversOnNodes: async () => {
        const out: [string, string, string][] = [];
        for (const list of nodes.values()) {
          for (const n of list) {
            const res = await n.client().listSlivers({ pageSize: 1000, pageToken: '', sliceUrn: '' }, { chain: n.ownerChain });
            for (const s of res.slivers) out.push([n.urn, s.sliceUrn, s.urn]);
          }
        }
        return out;
      },
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** Options of {@link writeSaConfig}. */
export interface SaConfigOptions {
  /** The listening port (0: any; a fixed one for a child process or a restart on the same address). */
  readonly port: number;
  readonly logLevel: Extract<LogLevel, 'info' | 'silent'>;
  /** How long the SA waits for a site before it counts as failed. */
  readonly siteDeadlineMs: number;
  /** Quotas of the home provider's account. */
  readonly quotas?: SaProviderQuotas;
  /** Extra SA config (merged over the defaults, section by section). */
  readonly extra?: Partial<SaConfigInput>;
}

/** The quotas of a provider account in a slice authority's config. */
type SaProviderQuotas = NonNullable<SaConfigInput['providers']>[number]['quotas'];

/** Writes the home slice authority's config (`sa.json` in the federation's directory) and compiles it. */
export function writeSaConfig(fed: FederationSites, options: SaConfigOptions): { file: string; config: Readonly<SaConfig> } {
  const { home } = fed;
  const file = join(fed.dir, 'sa.json');
  const config = saConfig({
    urn: home.sa.urn,
    listen: { host: '127.0.0.1', port: options.port },
    tls: { ca: home.sa.caPath, cert: home.sa.certPath, key: home.sa.keyPath },
    trust_bundle: home.bundleFile,
    data_dir: join(fed.dir, 'sa-data'),
    log_level: options.logLevel,
    shutdown_grace_ms: 2000,
    admins: [home.admin.urn],
    sites: [...fed.saSites],
    providers: [{ urn: home.sp.urn, quotas: options.quotas ?? {} }],
    limits: { site_deadline_ms: options.siteDeadlineMs },
    sweep_interval_ms: 200,
    intent_retry_interval_ms: 300,
    ...options.extra,
  }).writeAndCompile(file);
  return { file, config };
}

/** A resource request for `count` nodes the site picks (or the named nodes) with small slivers. */
export function siteRequest(site: string, asked: { count?: number; nodeUrns?: string[]; cpuMillis?: number; memMb?: number } = {}) {
  return {
    site,
    request: {
      nodes: { nodeUrns: asked.nodeUrns ?? [], count: asked.nodeUrns ? 0 : (asked.count ?? 1), clientIds: [] },
      resources: { cpuMillis: asked.cpuMillis ?? 100, memMb: asked.memMb ?? 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
      links: [],
      exclusive: false,
      requestDocument: '',
      requestDocumentFormat: '',
    },
  };
}
