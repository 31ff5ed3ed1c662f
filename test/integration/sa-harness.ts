// A small federation for slice authority tests: sites of different domains and styles (each its own CA, a
// real MA over mTLS and real node managers enrolled through it — see ma-harness.ts), every MA delegating
// MA → SA to the home domain's slice authority, and the slice authority itself, in this process or as
// `fedlab serve sa` (a child process). The domains are peered with each other the way `fedlab federation
// peer add` leaves them: a peer record of every other domain in each domain's peers directory (beside its
// trust bundle), so each server accepts the others' certificates, each CA vouching only for its own domain.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { compileConfig } from '../../services/core/config.js';
import { issueRoot } from '../../services/core/credentials/index.js';
import { PeerDirectory } from '../../services/core/federation/peers.js';
import { bundleFingerprint, parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { SliverDriver } from '../../services/node-manager/drivers/driver.js';
import { saConfigSchema, SA_PATH_FIELDS, sliceAuthorityRole, type SliceAuthority } from '../../services/slice-authority/index.js';
import { startCli } from '../helpers/cli.js';
import type { TestIdentity } from '../helpers/pki.js';
import { enrolNode, freePort, siteParties, startSite, until, type Site, type SiteParties, type TestNode } from './ma-harness.js';

/** One site of the federation. */
export interface FedSiteOptions {
  readonly domain: string;
  readonly style: 'planetlab' | 'emulab' | 'protogeni';
  readonly nodes: number;
  readonly driver?: 'process' | 'simulated';
  /** A driver object per node (e.g. a slowed-down simulated driver for fault tests). */
  readonly driverObject?: () => SliverDriver;
  /** Extra MA config. */
  readonly config?: Record<string, unknown>;
}

/** Options of {@link startFederation}. */
export interface FederationOptions {
  readonly sites: readonly FedSiteOptions[];
  /** Extra SA config (merged over the defaults). */
  readonly saConfig?: Record<string, unknown>;
  /** Quotas of the provider account. */
  readonly quotas?: Record<string, number>;
  /** Run the SA as `fedlab serve sa` in a child process. */
  readonly child?: boolean;
  /**
   * Sites that are configured but do not work (a closed port, or a server that never answers): each
   * gets a well-formed MA → SA chain signed by a key of its own, so the SA accepts the config.
   */
  readonly deadSites?: readonly { domain: string; endpoint: string }[];
}

/** A running test federation. */
export interface Federation {
  readonly dir: string;
  readonly home: SiteParties;
  readonly sites: readonly Site[];
  readonly nodes: ReadonlyMap<string, readonly TestNode[]>;
  readonly configFile: string;
  readonly saAddress: () => string;
  /** The in-process SA's parts (in-process SA only). */
  sa: SliceAuthority | undefined;
  child: import('node:child_process').ChildProcess | undefined;
  /** A SliceAuthority client as `who` (the home provider by default). */
  saClient(who?: TestIdentity): PromiseClient<typeof SliceAuthorityService>;
  /** A NodeManager client of a node as `who` (home domain identities). */
  nodeClient(node: TestNode, who: TestIdentity): PromiseClient<typeof NodeManagerService>;
  /** Every sliver on every node, as the nodes' owners see them: `[nodeUrn, sliceUrn, sliverUrn]`. */
  sliversOnNodes(): Promise<[string, string, string][]>;
  startSa(): Promise<void>;
  stopSa(): Promise<void>;
  /** Child SA only: kill -9 and wait for it to be gone. */
  kill9Sa(): Promise<void>;
  destroy(): Promise<void>;
}

/** Starts the sites, their nodes, the delegations and the slice authority. */
export async function startFederation(o: FederationOptions): Promise<Federation> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlab-sa-'));
  const parties: SiteParties[] = [];
  for (const s of o.sites) parties.push(await siteParties(s.domain));
  const home = parties[0] as SiteParties;
  const bundles = await Promise.all(parties.map(async (p) => parseTrustBundle(readFileSync(p.bundleFile, 'utf8'))));
  const at = new Date().toISOString();
  for (const p of parties) {
    const peers = new PeerDirectory(join(dirname(p.bundleFile), 'peers'));
    for (const b of bundles) {
      if (b.domain === p.domain) continue;
      const fp = bundleFingerprint(b);
      await peers.put({ v: 1, domain: b.domain, endpoint: '127.0.0.1:9', pinned_fingerprint: fp, pinned_at: at, bundle: b, fingerprint: fp, accepted_at: at });
    }
  }

  const sites: Site[] = [];
  const nodes = new Map<string, TestNode[]>();
  const clients: { close(): void }[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of clients.splice(0)) c.close();
    for (const list of nodes.values()) for (const n of list) await n.destroy();
    for (const s of sites) await s.destroy();
  };
  try {
    for (const [i, s] of o.sites.entries()) {
      const p = parties[i] as SiteParties;
      // Each MA's policy lets it delegate to the home domain's slice authority.
      const site = await startSite({ style: s.style, parties: p, config: { delegation_policy: { allow_own_domain: true, allow: [home.sa.urn] }, ...s.config } });
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
    const siteEntries = [];
    for (const [i, site] of sites.entries()) {
      const res = await site.maClient().delegateToSliceAuthority({
        requestId: `sa-${i}`,
        sliceAuthorityUrn: home.sa.urn,
        sliceAuthorityJwk: '',
        sliceAuthorityCertificatePem: home.sa.certPem,
        privileges: [],
        targets: [],
        limits: {},
        ttlS: 0,
        maxDelegations: 1,
      });
      const chainFile = join(dir, `${site.parties.domain}.chain`);
      writeFileSync(chainFile, `${res.chain.join('\n')}\n`);
      siteEntries.push({ domain: site.parties.domain, endpoint: site.address, ma_urn: site.parties.maUrn, chain_file: chainFile });
    }
    for (const d of o.deadSites ?? []) {
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const maUrn = `urn:fedlab:${d.domain}:authority:ma`;
      const chain = await issueRoot({
        key: key.privateKey,
        issuer: maUrn,
        subject: home.sa.urn,
        subjectKey: home.sa.jwk as Record<string, unknown>,
        targets: [`urn:fedlab:${d.domain}:node:*`],
        privileges: ['sliver.create', 'sliver.delete', 'sliver.renew', 'sliver.control', 'sliver.read', 'node.read'],
        dlg: 1,
        ttlSeconds: 30 * 86_400,
      });
      const chainFile = join(dir, `${d.domain}.chain`);
      writeFileSync(chainFile, `${chain.chain.join('\n')}\n`);
      siteEntries.push({ domain: d.domain, endpoint: d.endpoint, ma_urn: maUrn, chain_file: chainFile });
    }
    const port = o.child ? await freePort() : 0;
    const raw = {
      role: 'sa',
      urn: home.sa.urn,
      listen: { host: '127.0.0.1', port },
      tls: { ca: home.sa.caPath, cert: home.sa.certPath, key: home.sa.keyPath },
      trust_bundle: home.bundleFile,
      data_dir: join(dir, 'sa-data'),
      log_level: o.child ? 'info' : 'silent',
      shutdown_grace_ms: 2000,
      admins: [home.admin.urn],
      sites: siteEntries,
      providers: [{ urn: home.sp.urn, quotas: o.quotas ?? {} }],
      limits: { site_deadline_ms: 6000 },
      sweep_interval_ms: 200,
      intent_retry_interval_ms: 300,
      ...o.saConfig,
    };
    const configFile = join(dir, 'sa.json');
    writeFileSync(configFile, JSON.stringify(raw, null, 2));
    const config = compileConfig(saConfigSchema, { file: configFile }, SA_PATH_FIELDS);

    let service: HostedService | undefined;
    let address = '';
    const saClients: { close(): void }[] = [];
    const fed: Federation = {
      dir,
      home,
      sites,
      nodes,
      configFile,
      saAddress: () => address,
      sa: undefined,
      child: undefined,
      saClient: (who = home.sp) => {
        const c = createClient(SliceAuthorityService, { address, tls: { caCerts: home.pki.caPem, cert: who.certPem, key: who.keyPem }, serverUrn: home.sa.urn, deadlineMs: 60_000 });
        saClients.push(c);
        return c;
      },
      nodeClient: (node, who) => {
        const c = createClient(NodeManagerService, { address: node.endpoint, tls: { caCerts: readCa(), cert: who.certPem, key: who.keyPem }, serverUrn: node.urn, deadlineMs: 15_000 });
        clients.push(c);
        return c;
      },
      sliversOnNodes: async () => {
        const out: [string, string, string][] = [];
        for (const list of nodes.values()) {
          for (const n of list) {
            const c = n.client();
            const res = await c.listSlivers({ pageSize: 1000, pageToken: '', sliceUrn: '' }, { chain: n.ownerChain });
            for (const s of res.slivers) out.push([n.urn, s.sliceUrn, s.urn]);
          }
        }
        return out;
      },
      startSa: async () => {
        if (o.child) {
          const started = await startCli(['serve', 'sa', '--config', configFile], (l) => l.msg === 'listening', { timeoutMs: 60_000 });
          fed.child = started.child;
          address = `127.0.0.1:${port}`;
        } else {
          service = await hostService(config, silentLogger(), sliceAuthorityRole({ onBuilt: (x) => (fed.sa = x) }));
          address = `127.0.0.1:${service.port}`;
        }
      },
      stopSa: async () => {
        for (const c of saClients.splice(0)) c.close();
        const s = service;
        service = undefined;
        await s?.stop();
        const c = fed.child;
        if (c && c.exitCode === null && c.signalCode === null) {
          const gone = new Promise((r) => c.once('exit', r));
          c.kill('SIGTERM');
          await gone;
        }
      },
      kill9Sa: async () => {
        for (const c of saClients.splice(0)) c.close();
        const c = fed.child;
        if (!c || c.exitCode !== null || c.signalCode !== null) return;
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      },
      destroy: async () => {
        await fed.stopSa();
        await cleanup();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    const readCa = (): string => parties.map((p) => p.pki.caPem).join('');
    await fed.startSa();
    return fed;
  } catch (err) {
    await cleanup();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
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
