// A small federation for service provider tests: sites of different domains (each its own CA, a real MA
// over mTLS and real node managers with the `process` driver, enrolled through the MA — see
// ma-harness.ts), every MA delegating MA → SA to the home domain's slice authority (a real one, in this
// process), and the service provider — in this process or as `fedlab serve sp` (a child process, for
// kill -9). The domains are peered with each other the way `fedlab federation peer add` leaves them (a
// peer record of every other domain beside each domain's trust bundle), so every server accepts the
// others' certificates; test clients trust every test CA (one combined CA file).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { compileConfig } from '../../services/core/config.js';
import { PeerDirectory } from '../../services/core/federation/peers.js';
import { bundleFingerprint, parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../services/core/rpc/server.js';
import { NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { ServiceProviderService } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import { serviceProviderRole, spConfigSchema, SP_PATH_FIELDS, type ServiceProvider } from '../../services/service-provider/index.js';
import { saConfigSchema, SA_PATH_FIELDS, sliceAuthorityRole } from '../../services/slice-authority/index.js';
import { startCli } from '../helpers/cli.js';
import type { TestIdentity } from '../helpers/pki.js';
import { enrolNode, freePort, siteParties, startSite, until, type Site, type SiteParties, type TestNode } from './ma-harness.js';

/** Options of {@link startSpFederation}. */
export interface SpFederationOptions {
  readonly sites: readonly { readonly domain: string; readonly nodes: number; readonly style?: 'planetlab' | 'protogeni' }[];
  /** Extra SP config (merged over the defaults). */
  readonly spConfig?: Record<string, unknown>;
  /** Run the SP as `fedlab serve sp` (a child process). */
  readonly child?: boolean;
}

/** A running test federation with a service provider. */
export interface SpFederation {
  readonly dir: string;
  readonly home: SiteParties;
  readonly sites: readonly Site[];
  readonly nodes: ReadonlyMap<string, readonly TestNode[]>;
  readonly caFile: string;
  readonly spConfigFile: string;
  /** The SP's administrator and a member (home domain identities). */
  readonly spAdmin: TestIdentity;
  readonly member: TestIdentity;
  /** The in-process SP's parts (in-process SP only). */
  sp: ServiceProvider | undefined;
  child: import('node:child_process').ChildProcess | undefined;
  spAddress(): string;
  tls(who: TestIdentity): TlsMaterial;
  spClient(who?: TestIdentity): PromiseClient<typeof ServiceProviderService>;
  saClient(who?: TestIdentity): PromiseClient<typeof SliceAuthorityService>;
  nodeClient(endpoint: string, nodeUrn: string, who: TestIdentity): PromiseClient<typeof NodeManagerService>;
  /** Every sliver on every node as the nodes' owners see them: `[nodeUrn, sliceUrn, sliverUrn]`. */
  sliversOnNodes(): Promise<[string, string, string][]>;
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
export async function startSpFederation(o: SpFederationOptions): Promise<SpFederation> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlab-sp-'));
  const parties: SiteParties[] = [];
  for (const s of o.sites) parties.push(await siteParties(s.domain));
  const home = parties[0] as SiteParties;
  const caFile = join(dir, 'all-ca.pem');
  const allCa = parties.map((p) => p.pki.caPem).join('');
  writeFileSync(caFile, allCa);
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
  const spAdmin = await home.pki.issue(`urn:fedlab:${home.domain}:user:operator`);
  const member = await home.pki.issue(`urn:fedlab:${home.domain}:user:bob`);

  const sites: Site[] = [];
  const nodes = new Map<string, TestNode[]>();
  const clients: { close(): void }[] = [];
  let sa: HostedService | undefined;
  let sp: HostedService | undefined;
  const cleanup = async (): Promise<void> => {
    for (const c of clients.splice(0)) c.close();
    await sp?.stop();
    await sa?.stop();
    for (const list of nodes.values()) for (const n of list) await n.destroy();
    for (const s of sites) await s.destroy();
  };
  try {
    for (const s of o.sites) {
      const p = parties[sites.length] as SiteParties;
      const site = await startSite({ style: s.style ?? 'planetlab', parties: p, config: { delegation_policy: { allow: [home.sa.urn] } } });
      sites.push(site);
      const list: TestNode[] = [];
      nodes.set(s.domain, list);
      for (let n = 1; n <= s.nodes; n++) {
        list.push(await enrolNode(site, { name: `n${n}`, driver: 'process' }));
      }
      await until(
        async () => (await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes.length === s.nodes,
        15_000,
        `${s.domain}: ${s.nodes} nodes UP`,
      );
    }
    const saSites = [];
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
      saSites.push({ domain: site.parties.domain, endpoint: site.address, ma_urn: site.parties.maUrn, chain_file: chainFile });
    }
    const saPort = await freePort();
    const saConfigFile = join(dir, 'sa.json');
    writeFileSync(
      saConfigFile,
      JSON.stringify({
        role: 'sa',
        urn: home.sa.urn,
        listen: { host: '127.0.0.1', port: saPort },
        tls: { ca: home.sa.caPath, cert: home.sa.certPath, key: home.sa.keyPath },
        trust_bundle: home.bundleFile,
        data_dir: join(dir, 'sa-data'),
        log_level: 'silent',
        shutdown_grace_ms: 2000,
        admins: [home.admin.urn],
        sites: saSites,
        providers: [{ urn: home.sp.urn, quotas: {} }],
        limits: { site_deadline_ms: 8000 },
        sweep_interval_ms: 200,
        intent_retry_interval_ms: 300,
      }),
    );
    const saConfig = compileConfig(saConfigSchema, { file: saConfigFile }, SA_PATH_FIELDS);
    sa = await hostService(saConfig, silentLogger(), sliceAuthorityRole());
    const saAddress = `127.0.0.1:${saPort}`;

    const spPort = o.child ? await freePort() : 0;
    const spConfigFile = join(dir, 'sp.json');
    writeFileSync(
      spConfigFile,
      JSON.stringify({
        role: 'sp',
        urn: home.sp.urn,
        listen: { host: '127.0.0.1', port: spPort },
        tls: { ca: home.sp.caPath, cert: home.sp.certPath, key: home.sp.keyPath },
        trust_bundle: home.bundleFile,
        data_dir: join(dir, 'sp-data'),
        log_level: o.child ? 'info' : 'silent',
        shutdown_grace_ms: 2000,
        admins: [spAdmin.urn],
        readers: [`urn:fedlab:${home.domain}:user:*`],
        slice_authority: { urn: home.sa.urn, endpoint: saAddress },
        sites: sites.map((s) => ({ domain: s.parties.domain, ma_urn: s.parties.maUrn, endpoint: s.address })),
        registration: { retry_ms: 200, max_retry_ms: 1000 },
        supervision: { backoff_initial_ms: 200, backoff_max_ms: 800, backoff_reset_ms: 5000, retry_ms: 300 },
        ...o.spConfig,
      }),
    );
    const spConfig = compileConfig(spConfigSchema, { file: spConfigFile }, SP_PATH_FIELDS);
    let spAddress = '';
    const tls = (who: TestIdentity): TlsMaterial => ({ caCerts: allCa, cert: who.certPem, key: who.keyPem });
    const fed: SpFederation = {
      dir,
      home,
      sites,
      nodes,
      caFile,
      spConfigFile,
      spAdmin,
      member,
      sp: undefined,
      child: undefined,
      spAddress: () => spAddress,
      tls,
      spClient: (who = spAdmin) => {
        const c = createClient(ServiceProviderService, { address: spAddress, tls: tls(who), serverUrn: home.sp.urn, deadlineMs: 60_000 });
        clients.push(c);
        return c;
      },
      saClient: (who = home.sp) => {
        const c = createClient(SliceAuthorityService, { address: saAddress, tls: tls(who), serverUrn: home.sa.urn, deadlineMs: 30_000 });
        clients.push(c);
        return c;
      },
      nodeClient: (endpoint, nodeUrn, who) => {
        const c = createClient(NodeManagerService, { address: endpoint, tls: tls(who), serverUrn: nodeUrn, deadlineMs: 15_000 });
        clients.push(c);
        return c;
      },
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
      startSp: async () => {
        if (o.child) {
          const started = await startCli(['serve', 'sp', '--config', spConfigFile], (l) => l.msg === 'listening', { timeoutMs: 120_000 });
          fed.child = started.child;
          spAddress = `127.0.0.1:${spPort}`;
        } else {
          sp = await hostService(spConfig, silentLogger(), serviceProviderRole({ onBuilt: (x) => (fed.sp = x) }));
          spAddress = `127.0.0.1:${sp.port}`;
        }
      },
      stopSp: async () => {
        const s = sp;
        sp = undefined;
        await s?.stop();
        const c = fed.child;
        if (c && c.exitCode === null && c.signalCode === null) {
          const gone = new Promise((r) => c.once('exit', r));
          c.kill('SIGTERM');
          await gone;
        }
      },
      stopSa: async () => {
        const s = sa;
        sa = undefined;
        await s?.stop();
      },
      startSa: async () => {
        sa ??= await hostService(saConfig, silentLogger(), sliceAuthorityRole());
      },
      kill9Sp: async () => {
        const c = fed.child;
        if (!c || c.exitCode !== null || c.signalCode !== null) return;
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      },
      destroy: async () => {
        await fed.stopSp();
        await cleanup();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    await fed.startSp();
    return fed;
  } catch (err) {
    await cleanup();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
