// A management authority site for tests, in one call: a PKI with the MA, an admin, a slice authority, a
// provider and node owners; the MA hosted over mTLS on port 0 (in this process) or as `fedlab serve ma`
// (a child process); real node managers enrolled through the MA's enrolment listener with one-time tokens
// and served in this process; clients for every party; and cleanup of everything (clients first, then servers).
import type { ChildProcess } from 'node:child_process';
import { type KeyObject } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostService, type HostedService } from '../../services/core/host.js';
import { privateKeyToPem, publicKeyToPem } from '../../services/core/identity/keys.js';
import { silentLogger, type Logger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../services/core/rpc/server.js';
import { AggregateService } from '../../services/generated/fedlab/v1/aggregate.js';
import { NodeHealth, SliverIsolation, type SliceUser } from '../../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService, type HeartbeatRequest } from '../../services/generated/fedlab/v1/management_authority.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import type { Clock } from '../../services/core/clock.js';
import { enrollNode, issueOwnerCredential, OWNER_PRIVILEGES } from '../../services/management-authority/enrolment-client.js';
import { managementAuthorityRole, type ManagementAuthority, type MaConfig } from '../../services/management-authority/index.js';
import { instanceId, nodeManagerRole, type NmConfig } from '../../services/node-manager/index.js';
import type { NodeManager } from '../../services/node-manager/node-manager.js';
import type { SliverDriver } from '../../services/node-manager/drivers/driver.js';
import { createDriver } from '../../services/node-manager/drivers/select.js';
import { maConfig, nmConfig, type MaConfigInput, type NmConfigInput } from '../../cli/kit/role-configs.js';
import { freePort } from '../../cli/up/processes.js';
import { startCli } from './cli.js';
import { makeTestPki, type TestIdentity, type TestPki } from './pki.js';
import { until } from '../../services/core/timing.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

/** What owners give the MA in these tests: the default owner → MA privileges. */
export const NODE_PRIVILEGES: readonly string[] = OWNER_PRIVILEGES;

/** A free TCP port on 127.0.0.1 (for servers that must know their port before they start): the one `fedlab up` uses. */
export { freePort };

/** Starts `fedlab serve <role> --config <configFile>` as a child process and waits until it logs `listening`. */
export async function serveChild(role: 'ma' | 'sa' | 'sp', configFile: string, timeoutMs = 60_000): Promise<ChildProcess> {
  return (await startCli(['serve', role, '--config', configFile], (l) => l.msg === 'listening', { timeoutMs })).child;
}

/** Sends `signal` to a child process that is still running and waits until it is gone (nothing if there is none). */
export async function signalChild(c: ChildProcess | undefined, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  await gone;
}

/** The parties of one test site. */
export interface SiteParties {
  readonly domain: string;
  readonly pki: TestPki;
  readonly maUrn: string;
  readonly ma: TestIdentity;
  readonly admin: TestIdentity;
  readonly sa: TestIdentity;
  readonly sp: TestIdentity;
  readonly owner: TestIdentity;
  readonly bundleFile: string;
}

const pkis: TestPki[] = [];

/** Removes every PKI made by {@link siteParties} in this process (call it last, in afterAll). */
export async function disposeParties(): Promise<void> {
  for (const p of pkis.splice(0)) await p.cleanup();
}

/** Makes the PKI and identities of a site. */
export async function siteParties(domain = 'plc.test'): Promise<SiteParties> {
  const pki = await makeTestPki(domain);
  pkis.push(pki);
  const maUrn = `urn:fedlab:${domain}:authority:ma`;
  const ma = await pki.issueServer(maUrn);
  const admin = await pki.issue(`urn:fedlab:${domain}:user:admin`);
  const sa = await pki.issue(`urn:fedlab:${domain}:authority:sa`);
  const sp = await pki.issue(`urn:fedlab:${domain}:sp:acme`);
  const owner = await pki.issue(`urn:fedlab:${domain}:owner:alice`);
  const bundle = await pki.bundle();
  return { domain, pki, maUrn, ma, admin, sa, sp, owner, bundleFile: bundle.file };
}

/** TLS material of a party. */
export function tlsOf(p: SiteParties, who: TestIdentity): TlsMaterial {
  return { caCerts: p.pki.caPem, cert: who.certPem, key: who.keyPem };
}

/** Options of {@link startSite}. */
export interface SiteOptions {
  readonly style?: 'planetlab' | 'emulab' | 'protogeni';
  readonly parties?: SiteParties;
  /** Extra MA config (merged over the defaults, section by section). */
  readonly config?: Partial<MaConfigInput>;
  readonly dataDir?: string;
  readonly clock?: Clock;
  readonly manualTimers?: boolean;
  readonly log?: Logger;
  /** Run the MA as `fedlab serve ma` in a child process (needs fixed ports, chosen here). */
  readonly child?: boolean;
  /** The address a child MA listens on (127.0.0.1 unless given; `0.0.0.0` so that node managers in other namespaces reach it). */
  readonly listenHost?: string;
}

/** A running test site. */
export interface Site {
  readonly parties: SiteParties;
  readonly dir: string;
  readonly dataDir: string;
  readonly configFile: string;
  readonly config: Readonly<MaConfig>;
  readonly address: string;
  readonly enrolAddress: string;
  /** The domain objects (in-process MA only). */
  readonly ma: ManagementAuthority | undefined;
  readonly service: HostedService | undefined;
  /** The child process (child MA only). */
  child: ChildProcess | undefined;
  /** Child MA only: kill -9, then wait for the process to be gone. */
  kill9(): Promise<void>;
  /** Child MA only: starts `fedlab serve ma` again on the same config (same data, same ports). */
  restart(): Promise<void>;
  maClient(who?: TestIdentity): PromiseClient<typeof ManagementAuthorityService>;
  aggClient(who?: TestIdentity): PromiseClient<typeof AggregateService>;
  /** An MA → SA chain for a slice authority, the site's own unless `sa` is given (all node and sliver privileges unless given). */
  saChain(asked?: {
    privileges?: string[];
    limits?: Record<string, number>;
    ttlS?: number;
    requestId?: string;
    sa?: TestIdentity;
  }): Promise<string[]>;
  /** Stops the MA (clients first), keeping its data. */
  stop(): Promise<void>;
  /** Stops and removes the site's directory. */
  destroy(): Promise<void>;
}

const sites: Site[] = [];

/** The MA config of a site: fast timers, the test's own sections over them; a child MA logs (its readiness is a log line). */
function siteConfig(p: SiteParties, dataDir: string, options: SiteOptions, ports: { main: number; enrol: number }) {
  return maConfig({
    urn: p.maUrn,
    style: options.style ?? 'planetlab',
    listen: { host: options.listenHost ?? '127.0.0.1', port: ports.main },
    tls: { ca: p.ma.caPath, cert: p.ma.certPath, key: p.ma.keyPath },
    trust_bundle: p.bundleFile,
    data_dir: dataDir,
    log_level: 'silent',
    shutdown_grace_ms: 2000,
    admins: [p.admin.urn],
    enrolment: { listen: { host: '127.0.0.1', port: ports.enrol }, ca_dir: p.pki.caDir },
    heartbeat: { interval_ms: 200, flush_interval_ms: 100 },
    defaults: { cpu_millis: 100, mem_mb: 64, disk_mb: 64, pids: 64 },
    sweep_interval_ms: 100,
    intent_retry_interval_ms: 500,
    node_calls: { deadline_ms: 8000 },
    ...options.config,
    ...(options.child ? { log_level: 'info' } : {}),
  });
}

/** Starts a management authority for a site. */
export async function startSite(options: SiteOptions = {}): Promise<Site> {
  const parties = options.parties ?? (await siteParties());
  const dir = options.dataDir ? join(options.dataDir, '..') : mkdtempSync(join(tmpdir(), 'fedlab-ma-'));
  const dataDir = options.dataDir ?? join(dir, 'data');
  const ports = options.child ? { main: await freePort(), enrol: await freePort() } : { main: 0, enrol: 0 };
  const configFile = join(dir, `ma-${Math.random().toString(36).slice(2)}.json`);
  const config = siteConfig(parties, dataDir, options, ports).writeAndCompile(configFile);

  let ma: ManagementAuthority | undefined;
  let service: HostedService | undefined;
  let child: ChildProcess | undefined;
  let address: string;
  let enrolAddress: string;
  if (options.child) {
    child = await serveChild('ma', configFile);
    address = `127.0.0.1:${ports.main}`;
    enrolAddress = `127.0.0.1:${ports.enrol}`;
  } else {
    service = await hostService(
      config,
      options.log ?? silentLogger(),
      managementAuthorityRole({
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.manualTimers ? { manualTimers: true } : {}),
        onBuilt: (built) => (ma = built),
      }),
    );
    address = `127.0.0.1:${service.port}`;
    enrolAddress = `127.0.0.1:${(ma as unknown as ManagementAuthority).enrolmentPort}`;
  }
  const clients: { close(): void }[] = [];
  // One client per service and identity, closed by stop().
  const cached = new Map<string, { close(): void }>();
  const clientAs = <D extends typeof ManagementAuthorityService | typeof AggregateService>(
    service: string,
    definition: D,
    who: TestIdentity,
  ): PromiseClient<D> => {
    const key = `${service} ${who.urn} ${who.kid}`;
    let c = cached.get(key) as PromiseClient<D> | undefined;
    if (!c) {
      c = createClient(definition, { address, tls: tlsOf(parties, who), serverUrn: parties.maUrn, deadlineMs: 30_000 });
      clients.push(c);
      cached.set(key, c);
    }
    return c;
  };
  let stopped = false;
  const site: Site = {
    parties,
    dir,
    dataDir,
    configFile,
    config,
    address,
    enrolAddress,
    ma,
    service,
    child,
    maClient: (who = parties.admin) => clientAs('ma', ManagementAuthorityService, who),
    aggClient: (who = parties.sa) => clientAs('aggregate', AggregateService, who),
    saChain: async (asked = {}) => {
      const res = await site.maClient().delegateToSliceAuthority({
        requestId: asked.requestId ?? `d-${Math.random().toString(36).slice(2)}`,
        sliceAuthorityUrn: (asked.sa ?? parties.sa).urn,
        sliceAuthorityJwk: '',
        sliceAuthorityCertificatePem: (asked.sa ?? parties.sa).certPem,
        privileges: asked.privileges ?? [],
        targets: [],
        limits: asked.limits ?? {},
        ttlS: asked.ttlS ?? 0,
        maxDelegations: 1,
      });
      return res.chain;
    },
    kill9: () => signalChild(site.child, 'SIGKILL'),
    restart: async () => {
      site.child = await serveChild('ma', configFile);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const c of clients) c.close();
      if (service) await service.stop();
      await signalChild(site.child, 'SIGTERM');
    },
    destroy: async () => {
      await site.stop();
      if (!options.dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  sites.push(site);
  return site;
}

/** A node manager enrolled with a site. */
export interface TestNode {
  readonly urn: string;
  readonly name: string;
  readonly dataDir: string;
  readonly config: Readonly<NmConfig>;
  readonly endpoint: string;
  service: HostedService | undefined;
  nm: NodeManager | undefined;
  /** Client as the MA (with the owner chain) for checking what really is on the node. */
  client(): PromiseClient<typeof NodeManagerService>;
  ownerChain: readonly string[];
  /** Starts (again) the node manager on its data directory. */
  start(): Promise<void>;
  /** Stops the node manager (slivers keep running). */
  stop(): Promise<void>;
  /** Stops and removes every sliver runtime and the data directory. */
  destroy(): Promise<void>;
}

/** A node's key certified by a site through its enrolment listener, the way a node owner enrols a node. */
interface EnrolledKey {
  readonly urn: string;
  /** Owner → MA over the site's nodes (the chain the MA shows a node manager). */
  readonly ownerChain: readonly string[];
  readonly privateKey: KeyObject;
  /** The node's certificate and the CA chain above it (PEM). */
  readonly certificatePem: string;
  readonly caChainPem: string[];
}

/**
 * The admin makes a one-time token, the owner signs owner → MA over the site's nodes, and EnrollNode on
 * the enrolment listener certifies a fresh key for a node that says it serves at `endpoint`.
 */
async function enrolKey(
  site: Site,
  node: {
    name: string;
    requestId: string;
    endpoint: string;
    capacity: { cpuMillis: number; memMb: number; diskMb: number; pids: number };
    isolation: SliverIsolation;
    version: string;
  },
): Promise<EnrolledKey> {
  const p = site.parties;
  const { token } = await site
    .maClient()
    .createEnrollmentToken({ requestId: node.requestId, nodeName: node.name, ownerUrn: p.owner.urn, ttlS: 0 });
  const { chain: ownerChain } = await issueOwnerCredential({
    ownerKey: p.owner.privateKey,
    ownerUrn: p.owner.urn,
    maUrn: p.maUrn,
    maKey: p.ma.jwk as Record<string, unknown>,
    privileges: NODE_PRIVILEGES,
    ttlSeconds: 90 * 86_400,
  });
  const keys = generateKeyPair('p256');
  const res = await enrollNode(
    { address: site.enrolAddress, caPem: p.pki.caPem, maUrn: p.maUrn },
    {
      token,
      publicKeyPem: publicKeyToPem(keys.publicKey),
      csrPem: '',
      ownerCredentialChain: [...ownerChain],
      endpoint: node.endpoint,
      capacity: { ...node.capacity, bandwidthKbps: 0 },
      isolation: node.isolation,
      version: node.version,
      netemAvailable: false,
    },
  );
  return {
    urn: `urn:fedlab:${p.domain}:node:${node.name}`,
    ownerChain,
    privateKey: keys.privateKey,
    certificatePem: res.certificatePem,
    caChainPem: res.caChainPem,
  };
}

/** Options of {@link enrolNode}. */
export interface NodeOptions {
  readonly name: string;
  readonly driver?: 'container' | 'process' | 'simulated';
  readonly driverObject?: SliverDriver;
  readonly capacity?: NmConfigInput['capacity'];
  readonly heartbeatMs?: number;
  /** Extra node manager config (merged over the defaults, section by section). */
  readonly config?: Partial<NmConfigInput>;
  /** Enrol only; do not start the node manager. */
  readonly noStart?: boolean;
}

/**
 * Enrols a node with a site the way a node owner would: the admin makes a token, the owner signs
 * owner → MA over the node, the node manager's key is certified through EnrollNode on the enrolment
 * listener, and the node manager starts with that certificate and pushes heartbeats to the MA.
 */
export async function enrolNode(site: Site, options: NodeOptions): Promise<TestNode> {
  const p = site.parties;
  const dir = mkdtempSync(join(tmpdir(), `fedlab-manode-${options.name}-`));
  // A container sliver's root user must traverse it to reach its bundle under the data directory.
  chmodSync(dir, 0o711);
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const endpoint = `127.0.0.1:${port}`;
  const capacity = { cpu_millis: 2000, mem_mb: 2048, disk_mb: 4096, pids: 1024, slivers: 20, ...options.capacity };
  const { urn, ownerChain, privateKey, certificatePem, caChainPem } = await enrolKey(site, {
    name: options.name,
    requestId: `t-${options.name}-${Math.random().toString(36).slice(2)}`,
    endpoint,
    capacity: { cpuMillis: capacity.cpu_millis, memMb: capacity.mem_mb, diskMb: capacity.disk_mb, pids: capacity.pids },
    isolation:
      options.driver === 'container'
        ? SliverIsolation.SLIVER_ISOLATION_CONTAINER
        : options.driver === 'simulated'
          ? SliverIsolation.SLIVER_ISOLATION_SIMULATED
          : SliverIsolation.SLIVER_ISOLATION_PROCESS,
    version: '0.1.0',
  });
  writeFileSync(join(dir, 'key.pem'), privateKeyToPem(privateKey), { mode: 0o600 });
  writeFileSync(join(dir, 'cert.pem'), certificatePem);
  writeFileSync(join(dir, 'ca.pem'), caChainPem.join(''));
  const style = site.config.style;
  const configFile = join(dir, 'nm.json');
  const config = nmConfig({
    urn,
    listen: { host: '127.0.0.1', port },
    endpoint,
    tls: { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' },
    trust_bundle: p.bundleFile,
    data_dir: dataDir,
    log_level: 'silent',
    shutdown_grace_ms: 1000,
    owner: { certificate: p.owner.certPath },
    management_authority: { urn: p.maUrn, address: site.address },
    style,
    exclusive: style === 'emulab',
    driver: options.driver ?? 'process',
    capacity,
    defaults: { cpu_millis: 100, mem_mb: 64, disk_mb: 64, pids: 64 },
    reaper_interval_ms: 200,
    disk_check_interval_ms: 60_000,
    heartbeat_interval_ms: options.heartbeatMs ?? 200,
    heartbeat_deadline_ms: 1000,
    ...options.config,
  }).writeAndCompile(configFile);
  const clients: { close(): void }[] = [];
  const node: TestNode = {
    urn,
    name: options.name,
    dataDir,
    config,
    endpoint,
    service: undefined,
    nm: undefined,
    ownerChain,
    client: () => {
      const c = createClient(NodeManagerService, { address: endpoint, tls: tlsOf(p, p.ma), serverUrn: urn, deadlineMs: 15_000 });
      clients.push(c);
      return c;
    },
    start: async () => {
      node.service = await hostService(
        config,
        silentLogger(),
        nodeManagerRole({ ...(options.driverObject ? { driver: options.driverObject } : {}), onBuilt: (built) => (node.nm = built) }),
      );
    },
    stop: async () => {
      for (const c of clients.splice(0)) c.close();
      const s = node.service;
      node.service = undefined;
      await s?.stop();
    },
    destroy: async () => {
      await node.stop();
      if (config.driver !== 'simulated' && !options.driverObject) {
        const driver = createDriver({
          kind: config.driver,
          workRoot: join(dataDir, 'slivers'),
          instance: instanceId(dataDir),
          netNamespace: false,
          log: silentLogger(),
        });
        await driver.purge();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (!options.noStart) await node.start();
  return node;
}

/** Polls until a condition holds (core's `until`, re-exported for the tests that wait on sites). */
export { until };

/** A heartbeat of `urn` (a 1-core node, nothing allocated or used), with `extra` fields over it. */
export function heartbeatMessage(urn: string, sequence: number, extra: Partial<HeartbeatRequest> = {}): HeartbeatRequest {
  return {
    nodeUrn: urn,
    sequence,
    sentAt: new Date(),
    capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 1024, pids: 512, bandwidthKbps: 0 },
    allocated: { cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0, bandwidthKbps: 0 },
    usage: { cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0, bandwidthKbps: 0 },
    sliverCount: 0,
    version: 'test',
    endpoint: '127.0.0.1:9',
    ...extra,
  };
}

/** A node enrolled for real but with no node manager: the test sends its heartbeats itself. */
export interface FakeNode {
  readonly urn: string;
  readonly ownerChain: readonly string[];
  readonly tls: TlsMaterial;
  /** Sends one heartbeat with the node's certificate. */
  beat(asked?: { capacity?: { cpuMillis: number; memMb: number; diskMb: number; pids: number } }): Promise<void>;
  close(): void;
}

/** Enrols a node through the enrolment listener (token, owner chain, key) and returns a heartbeat sender. */
export async function enrolFakeNode(
  site: Site,
  name: string,
  capacity = { cpuMillis: 1000, memMb: 1024, diskMb: 1024, pids: 512 },
): Promise<FakeNode> {
  const p = site.parties;
  const { urn, ownerChain, privateKey, certificatePem } = await enrolKey(site, {
    name,
    requestId: `t-${name}`,
    endpoint: '127.0.0.1:9',
    capacity,
    isolation: SliverIsolation.SLIVER_ISOLATION_SIMULATED,
    version: 'test',
  });
  const tls = { caCerts: p.pki.caPem, cert: certificatePem, key: privateKeyToPem(privateKey) };
  const client = createClient(ManagementAuthorityService, { address: site.address, tls, serverUrn: p.maUrn, deadlineMs: 10_000 });
  let seq = 0;
  return {
    urn,
    ownerChain,
    tls,
    beat: async (asked = {}) => {
      await client.heartbeat(heartbeatMessage(urn, ++seq, { capacity: { ...(asked.capacity ?? capacity), bandwidthKbps: 0 } }));
    },
    close: () => client.close(),
  };
}

/** Stops a node's manager, sees the MA mark it DOWN within three heartbeat intervals (plus slack), restarts it and sees it UP. */
export async function downAndUp(site: Site, node: TestNode, intervalMs = 200): Promise<number> {
  const health = async (): Promise<number | undefined> => (await site.maClient().getNode({ nodeUrn: node.urn })).node?.health;
  await node.stop();
  const stoppedAt = Date.now();
  await until(async () => (await health()) === NodeHealth.NODE_HEALTH_DOWN, 3 * intervalMs + 3000, `${node.name} DOWN`);
  const took = Date.now() - stoppedAt;
  await node.start();
  await until(async () => (await health()) === NodeHealth.NODE_HEALTH_UP, 5000, `${node.name} UP again`);
  return took;
}

/** A call a node manager got from its MA, as {@link recordNodeCalls} saw it arrive. */
export interface RecordedNodeCall {
  readonly sliverUrn: string;
  readonly users: SliceUser[];
  /** Whether the node manager answered it without error (set once it did). */
  ok?: boolean;
}

/** What {@link recordNodeCalls} records of one node manager. */
export interface NodeCalls {
  readonly creates: RecordedNodeCall[];
  readonly userUpdates: RecordedNodeCall[];
}

type NmMethod = (...args: unknown[]) => Promise<unknown>;

const recorders = new WeakMap<TestNode, NodeCalls>();

/**
 * Records the users every CreateSliver and UpdateSliverUsers brings to an in-process node manager (its
 * domain object's methods wrapped; the node manager still does the work). The recording goes on across
 * restarts of the node manager: a new one is wrapped as it is built, before it serves. Called again
 * for the same node, it returns the same recording.
 */
export function recordNodeCalls(node: TestNode): NodeCalls {
  const known = recorders.get(node);
  if (known) return known;
  const calls: NodeCalls = { creates: [], userUpdates: [] };
  const wrapAll = (built: NodeManager): void => {
    const nm = built as unknown as Record<string, NmMethod | undefined>;
    const wrap = (name: string, list: RecordedNodeCall[], read: (args: unknown[]) => RecordedNodeCall): void => {
      const original = nm[name]?.bind(nm);
      nm[name] = async (...args: unknown[]) => {
        const call = read(args);
        list.push(call);
        if (!original) throw new Error(`node manager has no ${name}`);
        const out = await original(...args);
        call.ok = true;
        return out;
      };
    };
    wrap('createSliver', calls.creates, (args) => {
      const req = args[1] as { sliverUrn: string; users?: SliceUser[] };
      return { sliverUrn: req.sliverUrn, users: [...(req.users ?? [])] };
    });
    wrap('updateSliverUsers', calls.userUpdates, (args) => ({
      sliverUrn: args[1] as string,
      users: [...((args[2] as SliceUser[]) ?? [])],
    }));
  };
  if (!node.nm) throw new Error(`node ${node.urn} has no in-process node manager`);
  let current: NodeManager | undefined = node.nm;
  wrapAll(current);
  Object.defineProperty(node, 'nm', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (built: NodeManager | undefined) => {
      current = built;
      if (built) wrapAll(built);
    },
  });
  recorders.set(node, calls);
  return calls;
}
