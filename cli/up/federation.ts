/**
 * A whole federation on one machine, every party its own `fedlab serve`
 * process: per site (planetlab, emulab, protogeni style, each its own domain
 * and CA) a management authority and N node managers, enrolled the way a site
 * admin and node owner would (one-time token, owner → MA chain, EnrollNode);
 * in the home domain (the first site's) a slice authority and a service
 * provider. Used by `fedlab up` and by the end-to-end tests.
 *
 * Everything lives under one directory: certificates, configs, data and logs.
 * Ports are chosen up front and kept in the state file, so a second run on
 * the same directory restarts the same federation.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../../services/core/errors.js';
import { PeerDirectory } from '../../services/core/federation/peers.js';
import { privateKeyToPem, publicKeyToPem } from '../../services/core/identity/keys.js';
import { bundleFingerprint, parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { NodeHealth, SliverIsolation, type Node } from '../../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService } from '../../services/generated/fedlab/v1/management_authority.js';
import { DeploymentState, ServiceProviderService, type Deployment, type DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import { enrollNode, issueOwnerCredential } from '../../services/management-authority/enrolment-client.js';
import { maInstance } from '../../services/management-authority/index.js';
import { containerSupport, createDriver } from '../../services/node-manager/drivers/select.js';
import { instanceId } from '../../services/node-manager/index.js';
import { homeUrns, makePki, siteUrns, tlsOfDir } from './pki.js';
import {
  ALL_STYLES,
  homePaths,
  isFreshDir,
  isOurProcess,
  logFile,
  nodePaths,
  readState,
  SITE_DOMAINS,
  sitePaths,
  writeState,
  type SitePlan,
  type SiteStyleName,
  type UpState,
} from './plan.js';
import { defaultFedlabArgs, freePort, portInUse, ServiceProcess } from './processes.js';

/** Options of {@link LocalFederation.open}. */
export interface FederationOptions {
  /** The federation's directory (created if missing). */
  readonly dir: string;
  /** Site styles, in order; the first site's domain is the home of the SA and SP. */
  readonly sites?: readonly SiteStyleName[];
  /** Node managers per site (3 by default). */
  readonly nodes?: number;
  /** Node arguments that start `fedlab` (the compiled CLI next to this module by default). */
  readonly fedlabArgs?: readonly string[];
  /** Sliver driver of the node managers: `auto` (container where it can run, else process). */
  readonly driver?: 'auto' | 'container' | 'process';
  /** Heartbeat interval of MAs and node managers (ms); 1000 by default. */
  readonly heartbeatMs?: number;
  /** Log level of the services. */
  readonly logLevel?: string;
  /** Progress lines for a person. */
  readonly say?: (line: string) => void;
}

/** A running node manager. */
export interface NodeRuntime {
  readonly name: string;
  readonly urn: string;
  endpoint: string;
  readonly paths: ReturnType<typeof nodePaths>;
  readonly proc: ServiceProcess;
}

/** A running site. */
export interface SiteRuntime {
  readonly plan: SitePlan;
  readonly style: SiteStyleName;
  readonly domain: string;
  readonly maUrn: string;
  /** host:port clients dial for the MA (ManagementAuthority, Aggregate, Federation); it listens on 127.0.0.1. */
  address: string;
  readonly paths: ReturnType<typeof sitePaths>;
  readonly ma: ServiceProcess;
  readonly nodes: NodeRuntime[];
}

/** The sliver driver the node managers run with, and why. */
export interface DriverChoice {
  readonly kind: 'container' | 'process';
  /** Why not the container driver, when it is `process`. */
  readonly reason?: string;
}

/** Chooses the node managers' driver: container where it can run (root, cgroups), else process. */
export function chooseDriver(asked: 'auto' | 'container' | 'process' = 'auto'): DriverChoice {
  if (asked === 'process') return { kind: 'process', reason: 'asked for with --driver process' };
  const support = containerSupport();
  if (support.ok) return { kind: 'container' };
  if (asked === 'container') throw new FailedPreconditionError(`the container driver cannot run here: ${support.reason}`);
  return { kind: 'process', reason: support.reason };
}

/** A local federation: its plan, its processes, and how to stop them. */
export class LocalFederation {
  readonly sites: SiteRuntime[] = [];
  readonly driver: DriverChoice;
  private readonly fedlabArgs: readonly string[];
  private readonly heartbeatMs: number;
  private readonly say: (line: string) => void;
  private readonly clients: { close(): void }[] = [];
  private exitHook: (() => void) | undefined;
  /** Set when stop() begins: nothing is started after it (a Ctrl-C during start-up). */
  private closed = false;
  /** Processes in start order (stopped in reverse). */
  readonly processes: ServiceProcess[] = [];

  private constructor(
    readonly dir: string,
    public state: UpState,
    /** True when the directory was made by this run (false: reused). */
    readonly fresh: boolean,
    private readonly o: FederationOptions,
  ) {
    this.driver = chooseDriver(o.driver);
    this.fedlabArgs = o.fedlabArgs ?? defaultFedlabArgs();
    this.heartbeatMs = o.heartbeatMs ?? 1000;
    this.say = o.say ?? (() => {});
  }

  /** Which start of this directory this is (1 the first time). */
  get run(): number {
    return this.state.runs;
  }

  /** The home domain (of the slice authority and service provider). */
  get home(): string {
    return this.state.home;
  }

  /**
   * Opens a federation directory: makes the plan (ports) and the PKI in a
   * fresh (missing or empty) one, or reuses one a previous run made with the
   * same sites and node count. Refuses anything else, saying why, and changes nothing then.
   */
  static async open(o: FederationOptions): Promise<LocalFederation> {
    const dir = resolve(o.dir);
    const styles = o.sites ?? ALL_STYLES;
    const nodes = o.nodes ?? 3;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64) throw new InvalidArgumentError(`--nodes must be between 1 and 64, got ${nodes}`);
    const existing = readState(dir);
    if (existing) {
      const want = styles.join(',');
      const have = existing.sites.map((s) => s.style).join(',');
      if (want !== have || existing.sites.some((s) => s.nodes.length !== nodes)) {
        throw new InvalidArgumentError(
          `${dir} holds a federation of ${have} with ${existing.sites[0]?.nodes.length ?? 0} nodes per site, not ${want} with ${nodes}; ` +
            'run again with those --sites and --nodes to reuse it, or choose another --dir (or remove it)',
        );
      }
      const alive = existing.pids.filter((pid) => isOurProcess(pid, dir));
      if (alive.length) {
        throw new FailedPreconditionError(`a fedlab up of ${dir} still runs (processes ${alive.join(', ')}); stop it (Ctrl-C there, or kill ${alive.join(' ')}) before starting it again`);
      }
      if (!existing.complete) {
        throw new FailedPreconditionError(`${dir} holds a federation whose set-up did not finish; remove the directory (rm -r ${dir}) and run again`);
      }
      const ports = [existing.sa_port, existing.sp_port, ...existing.sites.flatMap((s) => [s.ma_port, s.enrol_port, s.bundle_port, ...s.nodes.map((n) => n.port)])];
      const busy: number[] = [];
      for (const p of ports) if (await portInUse(p)) busy.push(p);
      if (busy.length) throw new FailedPreconditionError(`ports ${busy.join(', ')} of the federation in ${dir} are taken by other programs; free them or choose another --dir`);
      return new LocalFederation(dir, existing, false, o);
    }
    if (!isFreshDir(dir)) throw new InvalidArgumentError(`${dir} exists and is not a fedlab up directory; choose another --dir (an empty or missing one)`);
    const fed = new LocalFederation(dir, await LocalFederation.plan(styles, nodes), true, o);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync(`${dir}/logs`, { recursive: true, mode: 0o700 });
    writeState(dir, fed.state);
    fed.say(`making the CAs, certificates and trust bundles of ${fed.state.sites.map((s) => s.domain).join(', ')} in ${dir}`);
    await makePki(dir, fed.state.sites, fed.home);
    return fed;
  }

  private static async plan(styles: readonly SiteStyleName[], nodes: number): Promise<UpState> {
    const taken = new Set<number>();
    const port = async (): Promise<number> => {
      for (;;) {
        const p = await freePort();
        if (!taken.has(p)) {
          taken.add(p);
          return p;
        }
      }
    };
    const sites: SitePlan[] = [];
    for (const style of styles) {
      const domain = SITE_DOMAINS[style];
      const names = Array.from({ length: nodes }, (_, i) => `${domain.split('.')[0]}${i + 1}`);
      const planned = { style, domain, ma_port: await port(), enrol_port: await port(), bundle_port: await port(), nodes: [] as { name: string; port: number }[] };
      for (const name of names) planned.nodes.push({ name, port: await port() });
      sites.push(planned);
    }
    return { v: 1, created_at: new Date().toISOString(), complete: false, home: (sites[0] as SitePlan).domain, sites, sa_port: await port(), sp_port: await port(), pids: [], runs: 0 };
  }

  /** Records the running processes' ids (so a second run refuses while they live). */
  private savePids(): void {
    this.state = { ...this.state, pids: this.processes.map((p) => p.pid).filter((x): x is number => x !== undefined) };
    writeState(this.dir, this.state);
  }

  private track(p: ServiceProcess): ServiceProcess {
    if (this.closed) throw new Error('the federation is stopping; nothing more is started');
    this.processes.push(p);
    if (!this.exitHook) {
      // If this process dies without stopping them, the children go too (they are in their own groups).
      this.exitHook = () => {
        for (const q of this.processes) q.killSync();
      };
      process.on('exit', this.exitHook);
    }
    return p;
  }

  /** An admin client of a site's MA. */
  maClient(site: SiteRuntime): PromiseClient<typeof ManagementAuthorityService> {
    const c = createClient(ManagementAuthorityService, { address: site.address, tls: tlsOfDir(site.paths.admin), serverUrn: site.maUrn, deadlineMs: 10_000 });
    this.clients.push(c);
    return c;
  }

  private maConfig(site: SitePlan): Record<string, unknown> {
    const p = sitePaths(this.dir, site.domain);
    return {
      role: 'ma',
      urn: siteUrns(site.domain).ma,
      style: site.style,
      listen: { host: '127.0.0.1', port: site.ma_port },
      tls: { ca: `${p.ma}/ca.pem`, cert: `${p.ma}/cert.pem`, key: `${p.ma}/key.pem` },
      trust_bundle: p.bundle,
      data_dir: p.maData,
      log_level: this.o.logLevel ?? 'info',
      shutdown_grace_ms: 3000,
      admins: [siteUrns(site.domain).admin],
      enrolment: { listen: { host: '127.0.0.1', port: site.enrol_port }, ca_dir: p.ca },
      federation: { bundle_listen: { host: '127.0.0.1', port: site.bundle_port }, reload_interval_ms: 500 },
      heartbeat: { interval_ms: this.heartbeatMs, flush_interval_ms: 500 },
      defaults: { cpu_millis: 100, mem_mb: 64, disk_mb: 64, pids: 64 },
      node_calls: { deadline_ms: 8000 },
      intent_retry_interval_ms: 1000,
      // Each site delegates to the home domain's slice authority only (its own domain's by default).
      delegation_policy: { allow_own_domain: true, allow: site.domain === this.home ? [] : [homeUrns(this.home).sa] },
    };
  }

  private nmConfig(site: SitePlan, node: { name: string; port: number }): Record<string, unknown> {
    const sp = sitePaths(this.dir, site.domain);
    const np = nodePaths(this.dir, site.domain, node.name);
    const urns = siteUrns(site.domain);
    return {
      role: 'nm',
      urn: urns.node(node.name),
      listen: { host: '127.0.0.1', port: node.port },
      endpoint: `localhost:${node.port}`,
      tls: { ca: np.ca, cert: np.cert, key: np.key },
      trust_bundle: sp.bundle,
      data_dir: np.data,
      log_level: this.o.logLevel ?? 'info',
      shutdown_grace_ms: 2000,
      owner: { certificate: `${sp.owner}/cert.pem`, credential: np.ownerChain },
      management_authority: { urn: urns.ma, address: `localhost:${site.ma_port}` },
      style: site.style,
      exclusive: site.style === 'emulab',
      driver: this.driver.kind,
      capacity: { cpu_millis: 1000, mem_mb: 1024, disk_mb: 2048, pids: 512, slivers: 20 },
      defaults: { cpu_millis: 100, mem_mb: 64, disk_mb: 64, pids: 64 },
      reaper_interval_ms: 1000,
      heartbeat_interval_ms: this.heartbeatMs,
      heartbeat_deadline_ms: 2000,
      federation: { reload_interval_ms: 500 },
    };
  }

  /**
   * Phase 1: starts every site's MA, enrols its nodes (first run only), starts
   * the node managers and waits until the MA sees every node UP.
   */
  async startSites(): Promise<void> {
    this.state = { ...this.state, runs: this.state.runs + 1 };
    writeState(this.dir, this.state);
    for (const plan of this.state.sites) {
      const paths = sitePaths(this.dir, plan.domain);
      const ma = this.track(
        new ServiceProcess({ name: `${plan.domain} MA`, role: 'ma', configFile: paths.maConfig, logFile: logFile(this.dir, `${plan.domain}-ma`), fedlabArgs: this.fedlabArgs }),
      );
      const site: SiteRuntime = { plan, style: plan.style, domain: plan.domain, maUrn: siteUrns(plan.domain).ma, address: `localhost:${plan.ma_port}`, paths, ma, nodes: [] };
      this.sites.push(site);
    }
    writeFileSync(this.allCaFile, this.state.sites.map((p) => readFileSync(`${sitePaths(this.dir, p.domain).ca}/ca.pem`, 'utf8')).join(''));
    // MAs start in parallel: each process spends most of a second loading.
    this.say(`starting ${this.sites.length} management authorities`);
    await Promise.all(
      this.sites.map((s) =>
        this.startOnFreePorts(s.ma, () => {
          s.address = `localhost:${s.plan.ma_port}`;
          writeFileSync(s.paths.maConfig, `${JSON.stringify(this.maConfig(s.plan), null, 2)}\n`);
        }),
      ),
    );
    this.savePids();
    for (const site of this.sites) {
      for (const node of site.plan.nodes) {
        const np = nodePaths(this.dir, site.domain, node.name);
        if (!existsSync(np.cert)) await this.enrol(site, node);
        const proc = this.track(
          new ServiceProcess({ name: `${site.domain} node ${node.name}`, role: 'nm', configFile: np.config, logFile: logFile(this.dir, `${site.domain}-${node.name}`), fedlabArgs: this.fedlabArgs }),
        );
        site.nodes.push({ name: node.name, urn: siteUrns(site.domain).node(node.name), endpoint: `localhost:${node.port}`, paths: np, proc });
      }
    }
    if (!this.state.complete) {
      this.state = { ...this.state, complete: true };
      writeState(this.dir, this.state);
    }
    const all = this.sites.flatMap((s) => s.nodes);
    this.say(`starting ${all.length} node managers (${this.driver.kind} driver)`);
    // A few at a time: a node manager's start is mostly CPU on this machine.
    await inBatches(all, 4, async (n) => {
      const site = this.sites.find((x) => x.nodes.includes(n)) as SiteRuntime;
      const plan = site.plan.nodes.find((x) => x.name === n.name) as { name: string; port: number };
      await this.startOnFreePorts(n.proc, () => {
        // The node tells its MA its endpoint with every heartbeat, so a new port needs no re-enrolment.
        n.endpoint = `localhost:${plan.port}`;
        writeFileSync(n.paths.config, `${JSON.stringify(this.nmConfig(site.plan, plan), null, 2)}\n`);
      });
    });
    this.savePids();
    await this.waitNodesUp();
  }

  /**
   * Writes a service's config and starts it. Ports are chosen up front, so
   * another program may take one before the service binds it: then that port
   * is replaced in the plan by a free one, the config rewritten, and the start
   * retried (a few times).
   */
  private async startOnFreePorts(proc: ServiceProcess, writeConfig: () => void): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      writeConfig();
      if (this.closed) throw new Error('the federation is stopping; nothing more is started');
      try {
        await proc.start();
        // stop() may have run while this one was starting: it must not outlive it.
        if (this.closed) await proc.stop();
        return;
      } catch (err) {
        // The service names the listener it could not bind (its earlier log lines name others' ports).
        const m = /cannot listen on (?:127\.0\.0\.1|localhost|\[::1\]):(\d+): the port is in use/.exec((err as Error).message);
        if (!m || attempt >= 4) throw err;
        const taken = Number(m[1]);
        const fresh = await freePort();
        if (!this.replacePort(taken, fresh)) throw err;
        this.say(`port ${taken} of ${proc.o.name} was taken by another program; using ${fresh}`);
        writeState(this.dir, this.state);
      }
    }
  }

  /** Replaces a port of the plan (in place); false when the plan has no such port. */
  private replacePort(taken: number, fresh: number): boolean {
    const st = this.state;
    if (st.sa_port === taken) return (st.sa_port = fresh), true;
    if (st.sp_port === taken) return (st.sp_port = fresh), true;
    for (const site of st.sites) {
      if (site.ma_port === taken) return (site.ma_port = fresh), true;
      if (site.enrol_port === taken) return (site.enrol_port = fresh), true;
      if (site.bundle_port === taken) return (site.bundle_port = fresh), true;
      for (const n of site.nodes) if (n.port === taken) return (n.port = fresh), true;
    }
    return false;
  }

  /** Enrols one node as its owner would: admin token, owner → MA chain, EnrollNode for a fresh key. */
  private async enrol(site: SiteRuntime, node: { name: string; port: number }): Promise<void> {
    const urns = siteUrns(site.domain);
    const np = nodePaths(this.dir, site.domain, node.name);
    const admin = this.maClient(site);
    const { token } = await admin.createEnrollmentToken({ requestId: `up-${node.name}`, nodeName: node.name, ownerUrn: urns.owner, ttlS: 0 });
    const ownerKey = readFileSync(`${site.paths.owner}/key.pem`, 'utf8');
    const { chain } = await issueOwnerCredential({
      ownerKey: createPrivateKey(ownerKey),
      ownerUrn: urns.owner,
      maUrn: urns.ma,
      maKey: createPublicKey(readFileSync(`${site.paths.ma}/cert.pem`)),
      ttlSeconds: 180 * 86_400,
    });
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const res = await enrollNode(
      { address: `localhost:${site.plan.enrol_port}`, caPem: readFileSync(`${site.paths.ca}/ca.pem`, 'utf8'), maUrn: urns.ma },
      {
        token,
        publicKeyPem: publicKeyToPem(keys.publicKey),
        csrPem: '',
        ownerCredentialChain: [...chain],
        endpoint: `localhost:${node.port}`,
        capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 2048, pids: 512, bandwidthKbps: 0 },
        isolation: this.driver.kind === 'container' ? SliverIsolation.SLIVER_ISOLATION_CONTAINER : SliverIsolation.SLIVER_ISOLATION_PROCESS,
        version: '',
        netemAvailable: false,
      },
    );
    mkdirSync(np.root, { recursive: true, mode: 0o700 });
    writeFileSync(np.key, privateKeyToPem(keys.privateKey), { mode: 0o600 });
    writeFileSync(np.cert, res.certificatePem);
    writeFileSync(np.ca, res.caChainPem.join(''));
    writeFileSync(np.ownerChain, `${chain.join('\n')}\n`);
  }

  /** Every site's nodes as its MA sees them. */
  async listNodes(site: SiteRuntime): Promise<Node[]> {
    const c = this.maClient(site);
    try {
      const out: Node[] = [];
      let token = '';
      do {
        const page = await c.listNodes({ pageSize: 1000, pageToken: token, health: NodeHealth.NODE_HEALTH_UNSPECIFIED }, { deadlineMs: 3000 });
        out.push(...page.nodes);
        token = page.nextPageToken;
      } while (token);
      return out;
    } finally {
      c.close();
    }
  }

  /** Waits until every site's MA reports all its nodes UP. */
  async waitNodesUp(timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (const site of this.sites) {
      for (;;) {
        const nodes = await this.listNodes(site).catch(() => [] as Node[]);
        const up = nodes.filter((n) => n.health === NodeHealth.NODE_HEALTH_UP).length;
        if (up >= site.nodes.length) break;
        if (Date.now() > end) {
          const down = site.nodes.filter((n) => !nodes.some((x) => x.urn === n.urn && x.health === NodeHealth.NODE_HEALTH_UP)).map((n) => n.name);
          throw new Error(`${site.domain}: nodes ${down.join(', ')} are not UP after ${Math.round(timeoutMs / 1000)} s; see their logs in ${this.dir}/logs`);
        }
        await sleep(200);
      }
      this.say(`${site.domain} (${site.style}): ${site.nodes.length} nodes UP`);
    }
  }

  /**
   * Phase 2: peers every domain with every other, as their admins would: the
   * admin of A runs `fedlab federation peer add` for B with B's bundle
   * fingerprint (read from B's bundle file, as B's admin would hand it over),
   * fetched from B's public bundle endpoint; the record lands in A's peers
   * directory, which all of A's services watch.
   */
  async peerDomains(): Promise<void> {
    const fingerprints = new Map<string, string>();
    for (const s of this.sites) fingerprints.set(s.domain, bundleFingerprint(await parseTrustBundle(readFileSync(s.paths.bundle, 'utf8'))));
    const pairs: [SiteRuntime, SiteRuntime][] = [];
    for (const a of this.sites) {
      const peers = new PeerDirectory(a.paths.peers);
      for (const b of this.sites) {
        if (a === b) continue;
        const have = await peers.get(b.domain);
        if (!have || have.pinned_fingerprint !== fingerprints.get(b.domain)) pairs.push([a, b]);
      }
    }
    await inBatches(pairs, 3, async ([a, b]) => {
      const args = [
        ...this.fedlabArgs,
        'federation', 'peer', 'add',
        '--config', a.paths.maConfig,
        '--domain', b.domain,
        '--endpoint', `localhost:${b.plan.bundle_port}`,
        '--fingerprint', fingerprints.get(b.domain) as string,
      ];
      await new Promise<void>((resolve, reject) => {
        execFile(process.execPath, args, { timeout: 30_000 }, (err, _stdout, stderr) => {
          if (err) reject(new Error(`fedlab federation peer add --domain ${b.domain} for ${a.domain} failed: ${stderr.trim() || err.message}`));
          else resolve();
        });
      });
    });
    this.say(`peered ${this.sites.map((s) => s.domain).join(', ')} with each other (fedlab federation peer add, pinned bundle fingerprints)`);
    // Services reload their peers directory every reload_interval_ms (500 ms here).
    if (pairs.length) await sleep(1200);
  }

  /** Paths of the home domain's SA, SP, operator and member. */
  get homePaths(): ReturnType<typeof homePaths> {
    return homePaths(this.dir, this.home);
  }

  /**
   * host:port of the slice authority and the service provider. Services listen on 127.0.0.1;
   * clients dial `localhost`, a name their certificates carry (TLS has no server name for an IP).
   */
  get saAddress(): string {
    return `localhost:${this.state.sa_port}`;
  }
  get spAddress(): string {
    return `localhost:${this.state.sp_port}`;
  }

  /** The file holding a site's `MA → SA` chain. */
  chainFile(domain: string): string {
    return `${this.dir}/${this.home}/chains/${domain}.chain`;
  }

  /**
   * Phase 2: every site's administrator delegates slice creation to the home
   * domain's slice authority (`DelegateToSliceAuthority`, idempotent on its
   * request id); the chains are written where the SA's config points.
   */
  async delegateToSliceAuthority(): Promise<void> {
    const saCert = readFileSync(`${this.homePaths.sa}/cert.pem`, 'utf8');
    mkdirSync(`${this.dir}/${this.home}/chains`, { recursive: true, mode: 0o700 });
    for (const site of this.sites) {
      const c = this.maClient(site);
      try {
        const res = await c.delegateToSliceAuthority({
          requestId: `up-sa-${site.domain}`,
          sliceAuthorityUrn: homeUrns(this.home).sa,
          sliceAuthorityJwk: '',
          sliceAuthorityCertificatePem: saCert,
          privileges: [],
          targets: [],
          limits: {},
          ttlS: 0,
          maxDelegations: 1,
        });
        writeFileSync(this.chainFile(site.domain), `${res.chain.join('\n')}\n`, { mode: 0o600 });
      } finally {
        c.close();
      }
    }
    this.say(`every site delegated slice creation to ${homeUrns(this.home).sa}`);
  }

  private saConfig(): Record<string, unknown> {
    const h = this.homePaths;
    const home = sitePaths(this.dir, this.home);
    return {
      role: 'sa',
      urn: homeUrns(this.home).sa,
      listen: { host: '127.0.0.1', port: this.state.sa_port },
      tls: { ca: `${h.sa}/ca.pem`, cert: `${h.sa}/cert.pem`, key: `${h.sa}/key.pem` },
      trust_bundle: home.bundle,
      data_dir: h.saData,
      log_level: this.o.logLevel ?? 'info',
      shutdown_grace_ms: 3000,
      admins: [siteUrns(this.home).admin],
      sites: this.sites.map((s) => ({
        domain: s.domain,
        endpoint: s.address,
        ma_urn: s.maUrn,
        chain_file: this.chainFile(s.domain),
        ...(s.domain === this.home ? {} : { ca: `${s.paths.ca}/ca.pem` }),
      })),
      providers: [{ urn: homeUrns(this.home).sp, quotas: { slices: 20, slivers: 200 } }],
      limits: { site_deadline_ms: 6000 },
      federation: { reload_interval_ms: 500 },
      sweep_interval_ms: 500,
      intent_retry_interval_ms: 1000,
    };
  }

  private spConfig(): Record<string, unknown> {
    const h = this.homePaths;
    const home = sitePaths(this.dir, this.home);
    return {
      role: 'sp',
      urn: homeUrns(this.home).sp,
      listen: { host: '127.0.0.1', port: this.state.sp_port },
      tls: { ca: `${h.sp}/ca.pem`, cert: `${h.sp}/cert.pem`, key: `${h.sp}/key.pem` },
      trust_bundle: home.bundle,
      data_dir: h.spData,
      log_level: this.o.logLevel ?? 'info',
      shutdown_grace_ms: 3000,
      admins: [homeUrns(this.home).operator],
      readers: [homeUrns(this.home).member],
      contact: `operators@${this.home}`,
      slice_authority: { urn: homeUrns(this.home).sa, endpoint: this.saAddress },
      sites: this.sites.map((s) => ({ domain: s.domain, ma_urn: s.maUrn, endpoint: s.address })),
      supervision: { backoff_initial_ms: 500, backoff_max_ms: 5000 },
      federation: { reload_interval_ms: 500 },
    };
  }

  /** The slice authority's process (once started). */
  sa: ServiceProcess | undefined;
  /** The service provider's process (once started). */
  sp: ServiceProcess | undefined;

  /** Phase 2: starts the slice authority with a config written from its schema. */
  async startSliceAuthority(): Promise<void> {
    const h = this.homePaths;
    this.sa = this.track(new ServiceProcess({ name: `${this.home} SA`, role: 'sa', configFile: h.saConfig, logFile: logFile(this.dir, `${this.home}-sa`), fedlabArgs: this.fedlabArgs }));
    await this.startOnFreePorts(this.sa, () => writeFileSync(h.saConfig, `${JSON.stringify(this.saConfig(), null, 2)}\n`));
    this.savePids();
    this.say(`slice authority ${homeUrns(this.home).sa} at ${this.saAddress}`);
  }

  /** Phase 3: starts the service provider with a config written from its schema. */
  async startServiceProvider(): Promise<void> {
    const h = this.homePaths;
    this.sp = this.track(new ServiceProcess({ name: `${this.home} SP`, role: 'sp', configFile: h.spConfig, logFile: logFile(this.dir, `${this.home}-sp`), fedlabArgs: this.fedlabArgs }));
    await this.startOnFreePorts(this.sp, () => writeFileSync(h.spConfig, `${JSON.stringify(this.spConfig(), null, 2)}\n`));
    this.savePids();
    this.say(`service provider ${homeUrns(this.home).sp} at ${this.spAddress}`);
  }

  /** Restarts the slice authority on its config (same data, same port), e.g. after a kill -9. */
  async restartSliceAuthority(): Promise<void> {
    await this.sa?.start();
    this.savePids();
  }

  /** A client of the slice authority as `who` (an identity directory; the provider by default). */
  saClient(who = this.homePaths.sp, deadlineMs = 30_000): PromiseClient<typeof SliceAuthorityService> {
    const c = createClient(SliceAuthorityService, { address: this.saAddress, tls: tlsOfDir(who), serverUrn: homeUrns(this.home).sa, deadlineMs });
    this.clients.push(c);
    return c;
  }

  /** A client of the service provider as `who` (the operator by default). */
  spClient(who = this.homePaths.operator, deadlineMs = 60_000): PromiseClient<typeof ServiceProviderService> {
    const c = createClient(ServiceProviderService, { address: this.spAddress, tls: tlsOfDir(who), serverUrn: homeUrns(this.home).sp, deadlineMs });
    this.clients.push(c);
    return c;
  }

  /**
   * Phase 3: the provider deploys `command` (a service it keeps running) on
   * `perSite` nodes of every site, and the progress events are passed to
   * `onEvent`. Resolves with the deployment once it reaches a stable state.
   */
  async deploy(name: string, command: readonly string[], o: { perSite?: number; onEvent?: (e: DeployResponse) => void; timeoutMs?: number } = {}): Promise<Deployment | undefined> {
    const c = this.spClient(this.homePaths.operator, o.timeoutMs ?? 120_000);
    let last: Deployment | undefined;
    const stream = c.deploy({
      requestId: `up-${name}-run${this.state.runs}`,
      name,
      spec: {
        sliceUrn: '',
        sliceAuthorityUrn: '',
        sliceName: name,
        mode: 1,
        sites: this.sites.map((s) => ({
          site: s.domain,
          request: {
            nodes: { nodeUrns: [], count: o.perSite ?? s.nodes.length, clientIds: [] },
            resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
            links: [],
            exclusive: s.style === 'emulab',
            requestDocument: '',
            requestDocumentFormat: '',
          },
        })),
        steps: [{ name: 'service', argv: [...command], env: {}, timeoutMs: 0, service: true }],
      },
    });
    for await (const e of stream) {
      o.onEvent?.(e);
      if (e.deployment) last = e.deployment;
    }
    return last;
  }

  /** The provider's view of a deployment (GetDeployment as the operator). */
  async getDeployment(name: string): Promise<Deployment | undefined> {
    const c = this.spClient(this.homePaths.operator, 5000);
    try {
      return (await c.getDeployment({ name })).deployment;
    } finally {
      c.close();
    }
  }

  /** Every domain's CA certificate in one file: what a client of one domain passes as `--ca` to reach servers of all of them. */
  get allCaFile(): string {
    return `${this.dir}/all-ca.pem`;
  }

  /** Where {@link prepareMember} writes the member's chain. */
  get memberChainFile(): string {
    return `${this.dir}/${this.home}/member.chain`;
  }

  /**
   * Registers the home domain's member with the provider and has the provider
   * delegate it exec and read on a slice (`SP → member`); writes the chain for
   * `fedlab sliver exec|logs`.
   */
  async prepareMember(sliceUrn: string): Promise<string[]> {
    const c = this.spClient(this.homePaths.operator, 10_000);
    const member = homeUrns(this.home).member;
    try {
      await c.addMember({ requestId: 'up-member', memberUrn: member, certificatePem: readFileSync(`${this.homePaths.member}/cert.pem`, 'utf8'), displayName: 'member' });
      const res = await c.delegateToMember({
        requestId: `up-member-${sliceUrn.split(':').pop() ?? 'slice'}-${Date.now()}`,
        memberUrn: member,
        sliceUrn,
        privileges: ['sliver.exec', 'sliver.read'],
        targets: [],
        ttlS: 0,
        maxDelegations: 0,
      });
      writeFileSync(this.memberChainFile, `${res.chain.join('\n')}\n`, { mode: 0o600 });
      return res.chain;
    } finally {
      c.close();
    }
  }

  /** Deletes a deployment and its slice (so that nothing runs on any node), waiting until it is DELETED or `timeoutMs` passed. */
  async deleteDeployment(name: string, timeoutMs = 30_000): Promise<boolean> {
    const c = this.spClient(this.homePaths.operator, timeoutMs);
    const end = Date.now() + timeoutMs;
    try {
      for (;;) {
        const res = await c.deleteDeployment({ name, keepSlice: false });
        if (res.deployment?.state === DeploymentState.DEPLOYMENT_STATE_DELETED) return true;
        if (Date.now() > end) return false;
        await sleep(500);
      }
    } catch {
      return false;
    } finally {
      c.close();
    }
  }

  /** Removes what a graceful stop may have left on this machine: sliver runtimes of every node, emulab namespaces. Says what it removed. */
  async sweepLeftovers(): Promise<string[]> {
    const removed: string[] = [];
    for (const site of this.sites) {
      for (const n of site.nodes) {
        const data = n.paths.data;
        if (!existsSync(data)) continue;
        const driver = createDriver({ kind: this.driver.kind, workRoot: join(data, 'slivers'), instance: instanceId(data), netNamespace: false, log: silentLogger() });
        const left = await driver.listArtifacts().catch(() => [] as string[]);
        if (left.length) {
          await driver.purge();
          removed.push(`${site.domain}/${n.name}: ${left.length} sliver runtime(s)`);
        }
      }
      if (site.style === 'emulab' && process.getuid?.() === 0) {
        const prefix = `fedlab-${maInstance(site.paths.maData)}-`;
        let list = '';
        try {
          list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
        } catch {
          list = '';
        }
        for (const ns of list.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(prefix))) {
          try {
            execFileSync('ip', ['netns', 'del', ns]);
            removed.push(`${site.domain}: namespace ${ns}`);
          } catch {
            // Already gone.
          }
        }
      }
    }
    return removed;
  }

  /** Stops every process: the newest first, SIGTERM then SIGKILL after `graceMs`. Reports what had to be killed. */
  async stop(graceMs = 8000): Promise<string[]> {
    this.closed = true;
    for (const c of this.clients.splice(0)) c.close();
    const killed: string[] = [];
    // Providers and authorities first, then node managers, then MAs: nobody loses the party it calls mid-way.
    const order = [...this.processes].reverse();
    const nms = order.filter((p) => p.o.role === 'nm');
    const others = order.filter((p) => p.o.role !== 'nm' && p.o.role !== 'ma');
    const mas = order.filter((p) => p.o.role === 'ma');
    for (const group of [others, nms, mas]) {
      const results = await Promise.all(group.map(async (p) => ({ p, r: await p.stop(graceMs) })));
      for (const { p, r } of results) if (r === 'killed') killed.push(p.o.name);
    }
    if (this.exitHook) process.off('exit', this.exitHook);
    this.exitHook = undefined;
    this.state = { ...this.state, pids: [] };
    writeState(this.dir, this.state);
    return killed;
  }
}

/** Runs `fn` over `items`, at most `n` at a time. */
export async function inBatches<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** Sleeps `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
