// The federation under the slice authority and service provider tests, in one call: a site per domain
// (each its own CA, a real MA over mTLS and real node managers enrolled through it — see ma-harness.ts),
// the domains peered with each other the way `fedlab federation peer add` leaves them (a peer record of
// every other domain in each domain's peers directory, beside its trust bundle, so each server accepts the
// others' certificates, each CA vouching only for its own domain), and every MA delegating MA → SA to the
// home domain's slice authority, its chain written to a file an SA config names. Also the SA config itself.
// sa-harness.ts and sp-harness.ts add only the servers that are theirs; the test owns and closes them all.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { compileConfig } from '../../services/core/config.js';
import { issueRoot } from '../../services/core/credentials/index.js';
import { PeerDirectory } from '../../services/core/federation/peers.js';
import { bundleFingerprint, parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import type { SliverDriver } from '../../services/node-manager/drivers/driver.js';
import { saConfigSchema, SA_PATH_FIELDS, type SaConfig } from '../../services/slice-authority/index.js';
import { enrolNode, siteParties, startSite, until, type Site, type SiteParties, type TestNode } from './ma-harness.js';

/** One site of a test federation: a domain with its own CA, MA and node managers. */
export interface FederationSiteOptions {
  readonly domain: string;
  /** The MA's style (planetlab unless given). */
  readonly style?: 'planetlab' | 'emulab' | 'protogeni';
  /** How many node managers to enrol (named n1, n2, …); all are UP before the federation is returned. */
  readonly nodes: number;
  /** The node managers' driver (process unless given). */
  readonly driver?: 'process' | 'simulated';
  /** A driver object per node (e.g. a slowed-down simulated driver for fault tests). */
  readonly driverObject?: () => SliverDriver;
  /** Extra MA config (merged over the defaults). */
  readonly config?: Record<string, unknown>;
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
export interface SaSiteEntry {
  readonly domain: string;
  readonly endpoint: string;
  readonly ma_urn: string;
  readonly chain_file: string;
}

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

/** Writes a peer record of every other domain into each domain's peers directory (beside its trust bundle). */
export async function peerDomains(parties: readonly SiteParties[]): Promise<void> {
  const bundles = await Promise.all(parties.map((p) => parseTrustBundle(readFileSync(p.bundleFile, 'utf8'))));
  const at = new Date().toISOString();
  for (const p of parties) {
    const peers = new PeerDirectory(join(dirname(p.bundleFile), 'peers'));
    for (const b of bundles) {
      if (b.domain === p.domain) continue;
      const fp = bundleFingerprint(b);
      await peers.put({ v: 1, domain: b.domain, endpoint: '127.0.0.1:9', pinned_fingerprint: fp, pinned_at: at, bundle: b, fingerprint: fp, accepted_at: at });
    }
  }
}

/** An MA → SA chain for a dead site, signed by a key that no one else has. */
async function deadSiteChain(home: SiteParties, d: DeadSite): Promise<{ maUrn: string; chain: readonly string[] }> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const maUrn = `urn:fedlab:${d.domain}:authority:ma`;
  const { chain } = await issueRoot({
    key: key.privateKey,
    issuer: maUrn,
    subject: home.sa.urn,
    subjectKey: home.sa.jwk as Record<string, unknown>,
    targets: [`urn:fedlab:${d.domain}:node:*`],
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
export async function startFederationSites(o: FederationSitesOptions): Promise<FederationSites> {
  const dir = mkdtempSync(join(tmpdir(), o.dirPrefix));
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
    for (const s of o.sites) parties.push(await siteParties(s.domain));
    const home = parties[0] as SiteParties;
    await peerDomains(parties);
    for (const [i, s] of o.sites.entries()) {
      const site = await startSite({ style: s.style ?? 'planetlab', parties: parties[i] as SiteParties, config: { delegation_policy: { allow_own_domain: true, allow: [home.sa.urn] }, ...s.config } });
      sites.push(site);
      const list: TestNode[] = [];
      nodes.set(s.domain, list);
      for (let n = 1; n <= s.nodes; n++) list.push(await enrolNode(site, { name: `n${n}`, driver: s.driver ?? 'process', ...(s.driverObject ? { driverObject: s.driverObject() } : {}) }));
      await until(
        async () => (await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes.length === s.nodes,
        15_000,
        `${s.domain}: ${s.nodes} nodes UP`,
      );
    }
    const saSites: SaSiteEntry[] = [];
    const writeChain = (domain: string, chain: readonly string[]): string => {
      const file = join(dir, `${domain}.chain`);
      writeFileSync(file, `${chain.join('\n')}\n`);
      return file;
    };
    for (const [i, site] of sites.entries()) {
      const chain = await site.saChain({ requestId: `sa-${i}`, sa: home.sa });
      saSites.push({ domain: site.parties.domain, endpoint: site.address, ma_urn: site.parties.maUrn, chain_file: writeChain(site.parties.domain, chain) });
    }
    for (const d of o.deadSites ?? []) {
      const { maUrn, chain } = await deadSiteChain(home, d);
      saSites.push({ domain: d.domain, endpoint: d.endpoint, ma_urn: maUrn, chain_file: writeChain(d.domain, chain) });
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
  readonly logLevel: 'info' | 'silent';
  /** How long the SA waits for a site before it counts as failed. */
  readonly siteDeadlineMs: number;
  /** Quotas of the home provider's account. */
  readonly quotas?: Record<string, number>;
  /** Extra SA config (merged over the defaults). */
  readonly extra?: Record<string, unknown>;
}

/** Writes the home slice authority's config (`sa.json` in the federation's directory) and compiles it. */
export function writeSaConfig(fed: FederationSites, o: SaConfigOptions): { file: string; config: Readonly<SaConfig> } {
  const { home } = fed;
  const file = join(fed.dir, 'sa.json');
  const raw = {
    role: 'sa',
    urn: home.sa.urn,
    listen: { host: '127.0.0.1', port: o.port },
    tls: { ca: home.sa.caPath, cert: home.sa.certPath, key: home.sa.keyPath },
    trust_bundle: home.bundleFile,
    data_dir: join(fed.dir, 'sa-data'),
    log_level: o.logLevel,
    shutdown_grace_ms: 2000,
    admins: [home.admin.urn],
    sites: fed.saSites,
    providers: [{ urn: home.sp.urn, quotas: o.quotas ?? {} }],
    limits: { site_deadline_ms: o.siteDeadlineMs },
    sweep_interval_ms: 200,
    intent_retry_interval_ms: 300,
    ...o.extra,
  };
  writeFileSync(file, JSON.stringify(raw, null, 2));
  return { file, config: compileConfig(saConfigSchema, { file }, SA_PATH_FIELDS) };
}

/** A resource request for `count` nodes the site picks (or the named nodes) with small slivers. */
export function siteRequest(site: string, o: { count?: number; nodeUrns?: string[]; cpuMillis?: number; memMb?: number } = {}) {
  return {
    site,
    request: {
      nodes: { nodeUrns: o.nodeUrns ?? [], count: o.nodeUrns ? 0 : (o.count ?? 1), clientIds: [] },
      resources: { cpuMillis: o.cpuMillis ?? 100, memMb: o.memMb ?? 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
      links: [],
      exclusive: false,
      requestDocument: '',
      requestDocumentFormat: '',
    },
  };
}
