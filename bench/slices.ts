/**
 * `npm run bench:slices`: create-to-ready time of slices of 10, 100 and 1,000 nodes over three sites.
 *
 * What runs (all real, all over mutual TLS):
 * - three domains, each with its own CA: plc.test (planetlab style), emu.test (emulab style) and
 *   geni.test (protogeni style), peered with each other by pinned bundles;
 * - each site's management authority as its own process (`fedlab serve ma`);
 * - one slice authority (`fedlab serve sa`, its own process, in plc.test), holding an `MA → SA` chain
 *   from every site (DelegateToSliceAuthority);
 * - N node managers with the `simulated` driver, each a real NodeManager gRPC server on its own port
 *   with its own key, certificate (from EnrollNode at its MA, with a one-time token and the owner's
 *   `owner → MA` chain) and LevelDB store, spread over a few worker processes; each heartbeats to its MA.
 *
 * Measured: CreateSlice (wait, start) from a provider's client to the answer READY, per slice size,
 * i.e. the SA's Allocate → Provision → start at every site in parallel, each MA fanning out to its node
 * managers. Baseline in the same run (the floor): the same number of CreateSliver calls (start, READY)
 * sent directly to the same node managers from one client holding each site's MA identity and owner
 * chain, over warm channels, 64 in flight per site. Setup (PKI, enrolment) is timed apart.
 *
 * Flags: --sizes 10,100,1000  --runs R (3; at most 2 for sizes above 500)  --workers W (2)
 *        --heartbeat-ms MS (30000)  --log-level L (info; logs go to /dev/null)  --profile DIR (CPU
 *        profiles of the SA, MAs and workers during the measured runs)  --logs DIR (the MAs' and SA's logs)
 *        --styles planetlab,emulab,protogeni (which sites)  --ma-concurrency N (64: the MAs' node_calls.concurrency).
 * Prints figures and ratios; asserts nothing.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createTestPki, type TestIdentity, type TestPki } from '../certs/test-pki.js';
import { writeChainFile } from '../cli/chain-file.js';
import { peerEachOther } from '../cli/kit/peering.js';
import { maConfig, nmConfig, saConfig, type LogLevel } from '../cli/kit/role-configs.js';
import { quietIrrelevantWarnings } from '../cli/warnings.js';
import { hostService, type HostedService } from '../services/core/host.js';
import { privateKeyToPem, publicKeyToPem } from '../services/core/identity/keys.js';
import { createLogger, silentLogger, type Logger } from '../services/core/log.js';
import { createClient, type PromiseClient } from '../services/core/rpc/client.js';
import { AllocationState, NodeHealth, OperationalState, SliceMode, SliverIsolation } from '../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService } from '../services/generated/fedlab/v1/management_authority.js';
import { NodeManagerService } from '../services/generated/fedlab/v1/node_manager.js';
import { SliceAuthorityService, SliceState } from '../services/generated/fedlab/v1/slice_authority.js';
import { enrollNode, issueOwnerCredential } from '../services/management-authority/enrolment-client.js';
import { nodeManagerRole } from '../services/node-manager/index.js';
import { pool } from '../services/core/timing.js';
import { cpuSeconds, flagText, freePort, loadAverage, median, runBenchmark } from './support.js';
import { generateKeyPair } from '../services/core/identity/keys.js';

// An entry point: Node's DEP0123 (IP-address SNI from grpc-js) says nothing here.
quietIrrelevantWarnings();

const SELF = fileURLToPath(import.meta.url);
const ROOT = join(SELF, '..', '..');
const RESOURCES = { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 };
const CAPACITY = { cpu_millis: 4000, mem_mb: 8192, disk_mb: 20_000, pids: 4096, slivers: 100 };

type Style = 'planetlab' | 'emulab' | 'protogeni';
const ALL_SITES: readonly { domain: string; style: Style }[] = [
  { domain: 'plc.test', style: 'planetlab' },
  { domain: 'emu.test', style: 'emulab' },
  { domain: 'geni.test', style: 'protogeni' },
];
/** `--styles planetlab,protogeni` leaves sites out (e.g. to see what emulab's namespaces cost). */
const SITES = ALL_SITES.filter((s) => flagText('styles', 'planetlab,emulab,protogeni').split(',').includes(s.style));

// ---- the worker: hosts its share of the node managers ---------------------------------------------

/** What a worker needs to know about a site. */
interface WorkerSite {
  readonly domain: string;
  readonly style: Style;
  readonly maUrn: string;
  readonly maAddress: string;
  readonly enrolAddress: string;
  readonly caPem: string;
  readonly bundleFile: string;
  readonly ownerCertPath: string;
  readonly ownerChain: readonly string[];
}

interface WorkerSetup {
  readonly type: 'setup';
  readonly dir: string;
  readonly heartbeatMs: number;
  readonly logLevel: LogLevel;
  readonly sites: readonly WorkerSite[];
  readonly nodes: readonly { domain: string; name: string; token: string }[];
}

async function worker(): Promise<void> {
  const setup = await new Promise<WorkerSetup>((resolve) => process.once('message', (m) => resolve(m as WorkerSetup)));
  const sites = new Map(setup.sites.map((s) => [s.domain, s]));
  // One log destination for every node manager here: their per-call lines cost what they cost in production.
  const log: Logger =
    setup.logLevel === 'silent'
      ? silentLogger()
      : createLogger({ level: setup.logLevel as 'info', destination: pino.destination({ dest: '/dev/null', sync: false }) });
  const hosted: HostedService[] = [];
  const t0 = performance.now();
  await pool(setup.nodes, 16, async (n) => {
    const site = sites.get(n.domain) as WorkerSite;
    const urn = `urn:fedlab:${n.domain}:node:${n.name}`;
    const dir = join(setup.dir, `${n.domain}-${n.name}`);
    mkdirSync(dir, { recursive: true });
    const keys = generateKeyPair('p256');
    let port = await freePort();
    const res = await enrollNode(
      { address: site.enrolAddress, caPem: site.caPem, maUrn: site.maUrn, deadlineMs: 60_000 },
      {
        token: n.token,
        publicKeyPem: publicKeyToPem(keys.publicKey),
        csrPem: '',
        ownerCredentialChain: [...site.ownerChain],
        endpoint: `127.0.0.1:${port}`,
        capacity: {
          cpuMillis: CAPACITY.cpu_millis,
          memMb: CAPACITY.mem_mb,
          diskMb: CAPACITY.disk_mb,
          pids: CAPACITY.pids,
          bandwidthKbps: 0,
        },
        isolation: SliverIsolation.SLIVER_ISOLATION_SIMULATED,
        version: 'bench',
        netemAvailable: false,
      },
    );
    writeFileSync(join(dir, 'key.pem'), privateKeyToPem(keys.privateKey), { mode: 0o600 });
    writeFileSync(join(dir, 'cert.pem'), res.certificatePem);
    writeFileSync(join(dir, 'ca.pem'), res.caChainPem.join(''));
    for (let attempt = 0; ; attempt++) {
      const config = nmConfig({
        urn,
        listen: { host: '127.0.0.1', port },
        endpoint: `127.0.0.1:${port}`,
        tls: { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' },
        trust_bundle: site.bundleFile,
        data_dir: join(dir, 'data'),
        log_level: setup.logLevel,
        owner: { certificate: site.ownerCertPath },
        management_authority: { urn: site.maUrn, address: site.maAddress },
        style: site.style,
        exclusive: site.style === 'emulab',
        driver: 'simulated',
        capacity: CAPACITY,
        heartbeat_interval_ms: setup.heartbeatMs,
        // A node's own background work, which on real machines would not share these two cores: the
        // reaper, the disk check and the peers reload run less often than their defaults here.
        reaper_interval_ms: 30_000,
        disk_check_interval_ms: 300_000,
        federation: { reload_interval_ms: 60_000, refresh_interval_s: 0 },
      }).writeAndCompile(join(dir, 'nm.json'));
      try {
        hosted.push(await hostService(config, log.child({ node: urn }), nodeManagerRole()));
        break;
      } catch (err) {
        // Another process took the port between the probe and the bind: try another (the heartbeat reports the new endpoint).
        if (attempt >= 3 || !/the port is in use/.test(String((err as Error).message))) throw err;
        port = await freePort();
      }
    }
  });
  process.send?.({ type: 'ready', nodes: hosted.length, ms: performance.now() - t0 });
  process.on('message', (m: { type: string }) => {
    if (m.type !== 'stop') return;
    void Promise.all(hosted.map((h) => h.stop())).then(() => process.exit(0));
  });
}

// ---- main -----------------------------------------------------------------------------------------

interface SiteRun {
  readonly domain: string;
  readonly style: Style;
  readonly pki: TestPki;
  readonly maUrn: string;
  readonly ma: TestIdentity;
  readonly admin: TestIdentity;
  readonly owner: TestIdentity;
  readonly bundleFile: string;
  readonly port: number;
  readonly enrolPort: number;
  proc?: ChildProcess;
  ownerChain?: readonly string[];
  nodes: string[];
}

function spawnServe(role: 'ma' | 'sa', configFile: string, profileDir: string | undefined, logFile: string | undefined): ChildProcess {
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const out = logFile ? openSync(logFile, 'a') : 'ignore';
  return spawn(process.execPath, [...prof, '--import', 'tsx', join(ROOT, 'cli/main.ts'), 'serve', role, '--config', configFile], {
    stdio: ['ignore', out, 'inherit'],
  });
}

/** Polls `probe` until it succeeds (the process logs nothing we read). */
async function until(what: string, child: ChildProcess, probe: () => Promise<unknown>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode})`);
    try {
      await probe();
      return;
    } catch (err) {
      if (Date.now() > end) throw new Error(`${what} not ready within ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function main(): Promise<void> {
  const sizes = flagText('sizes', '10,100,1000')
    .split(',')
    .map(Number)
    .filter((n) => n >= 3);
  const runs = Math.max(1, Number(flagText('runs', '3')));
  const workers = Math.max(1, Math.min(16, Number(flagText('workers', '2'))));
  const heartbeatMs = Number(flagText('heartbeat-ms', '30000'));
  const maConcurrency = Number(flagText('ma-concurrency', '64'));
  // Checked when the first config is built.
  const logLevel = flagText('log-level', 'info') as LogLevel;
  const profileDir = process.argv.includes('--profile') ? flagText('profile', join(ROOT, 'bench-profiles')) : undefined;
  const logDir = process.argv.includes('--logs') ? flagText('logs', '') : undefined;
  if (logDir) mkdirSync(logDir, { recursive: true });
  const maxN = Math.max(...sizes);
  const perSite = (n: number): number[] => SITES.map((_, i) => Math.floor(n / SITES.length) + (i < n % SITES.length ? 1 : 0));
  const nodesPerSite = perSite(maxN);
  const fdLimit = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  console.log(
    `bench:slices — ${SITES.map((s) => `${s.domain} (${s.style})`).join(', ')}; ${maxN} node managers (simulated driver; each its own mTLS gRPC server, key, certificate and LevelDB) in ${workers} worker processes; ` +
      `${SITES.length} MAs and the SA each its own process; ${availableParallelism()} cores; heartbeats every ${heartbeatMs / 1000} s; logs at ${logLevel} to /dev/null; open-file limit ${fdLimit ?? '?'}`,
  );
  if (fdLimit && Number(fdLimit) < maxN * 12)
    console.log(`  (warning: ${maxN} nodes need about ${maxN * 12} open files; raise the limit with ulimit -n)`);

  const dir = mkdtempSync(join(tmpdir(), 'fedlab-bench-slices-'));
  const procs: ChildProcess[] = [];
  const clients: { close(): void }[] = [];
  const setupStart = performance.now();
  try {
    // 1. Three domains: CA, MA, admin, owner; the SA and the provider in plc.test.
    const sites: SiteRun[] = [];
    for (const [i, s] of SITES.entries()) {
      const pki = await createTestPki({ domain: s.domain, dir: join(dir, `pki-${s.domain}`) });
      const maUrn = `urn:fedlab:${s.domain}:authority:ma`;
      sites.push({
        domain: s.domain,
        style: s.style,
        pki,
        maUrn,
        ma: await pki.issueServer(maUrn),
        admin: await pki.issue(`urn:fedlab:${s.domain}:user:admin`),
        owner: await pki.issue(`urn:fedlab:${s.domain}:owner:o`),
        bundleFile: (await pki.bundle()).file,
        port: await freePort(),
        enrolPort: await freePort(),
        nodes: Array.from({ length: nodesPerSite[i] as number }, (_, k) => `n${String(k).padStart(4, '0')}`),
      });
    }
    const home = sites[0] as SiteRun;
    const saUrn = `urn:fedlab:${home.domain}:authority:sa`;
    const sa = await home.pki.issueServer(saUrn);
    const sp = await home.pki.issue(`urn:fedlab:${home.domain}:sp:acme`);
    // Peering, as `fedlab federation peer add` leaves it: every domain pins every other's bundle.
    await peerEachOther(sites);

    // 2. The MAs, each its own process.
    for (const s of sites) {
      const file = maConfig({
        urn: s.maUrn,
        style: s.style,
        listen: { host: '127.0.0.1', port: s.port },
        tls: { ca: s.ma.caPath, cert: s.ma.certPath, key: s.ma.keyPath },
        trust_bundle: s.bundleFile,
        data_dir: join(dir, `ma-${s.domain}-data`),
        log_level: logLevel,
        admins: [s.admin.urn],
        enrolment: { listen: { host: '127.0.0.1', port: s.enrolPort }, ca_dir: s.pki.caDir },
        heartbeat: { interval_ms: heartbeatMs },
        delegation_policy: { allow_own_domain: true, allow: [saUrn] },
        // The first slice opens every MA → node channel at once (hundreds of TLS handshakes on a shared machine).
        node_calls: { deadline_ms: 30_000, concurrency: maConcurrency },
        federation: { refresh_interval_s: 0 },
      }).writeTo(join(dir, `ma-${s.domain}.json`));
      s.proc = spawnServe('ma', file, profileDir, logDir && join(logDir, `ma-${s.domain}.log`));
      procs.push(s.proc);
    }
    const admin = (s: SiteRun): PromiseClient<typeof ManagementAuthorityService> => {
      const c = createClient(ManagementAuthorityService, {
        address: `127.0.0.1:${s.port}`,
        tls: { caCerts: s.pki.caPem, cert: s.admin.certPem, key: s.admin.keyPem },
        serverUrn: s.maUrn,
        deadlineMs: 30_000,
      });
      clients.push(c);
      return c;
    };
    const admins = sites.map(admin);
    await Promise.all(
      sites.map((s, i) =>
        until(`the MA of ${s.domain}`, s.proc as ChildProcess, () =>
          (admins[i] as PromiseClient<typeof ManagementAuthorityService>).listNodes({ pageSize: 1, pageToken: '', health: 0 }),
        ),
      ),
    );

    // 3. Delegation MA → SA at every site, and the SA.
    const siteEntries = [];
    for (const [i, s] of sites.entries()) {
      const res = await (admins[i] as PromiseClient<typeof ManagementAuthorityService>).delegateToSliceAuthority({
        requestId: `bench-sa-${i}`,
        sliceAuthorityUrn: saUrn,
        sliceAuthorityJwk: '',
        sliceAuthorityCertificatePem: sa.certPem,
        privileges: [],
        targets: [],
        limits: {},
        ttlS: 0,
        maxDelegations: 1,
      });
      const chainFile = writeChainFile(join(dir, `${s.domain}.chain`), res.chain);
      siteEntries.push({ domain: s.domain, endpoint: `127.0.0.1:${s.port}`, ma_urn: s.maUrn, chain_file: chainFile });
    }
    const saPort = await freePort();
    const saFile = saConfig({
      urn: saUrn,
      listen: { host: '127.0.0.1', port: saPort },
      tls: { ca: sa.caPath, cert: sa.certPath, key: sa.keyPath },
      trust_bundle: home.bundleFile,
      data_dir: join(dir, 'sa-data'),
      log_level: logLevel,
      admins: [home.admin.urn],
      sites: siteEntries,
      providers: [{ urn: sp.urn, quotas: {} }],
      limits: { site_deadline_ms: 120_000 },
      federation: { refresh_interval_s: 0 },
    }).writeTo(join(dir, 'sa.json'));
    const saProc = spawnServe('sa', saFile, profileDir, logDir && join(logDir, 'sa.log'));
    procs.push(saProc);
    const saClient = createClient(SliceAuthorityService, {
      address: `127.0.0.1:${saPort}`,
      tls: { caCerts: home.pki.caPem, cert: sp.certPem, key: sp.keyPem },
      serverUrn: saUrn,
      deadlineMs: 180_000,
    });
    clients.push(saClient);
    await until('the SA', saProc, () => saClient.listSlices({ pageSize: 1, pageToken: '', state: 0 }));
    const pkiS = (performance.now() - setupStart) / 1000;

    // 4. Node managers: tokens from each MA, the owner's chain, then the workers enrol and serve them.
    const tokens: { domain: string; name: string; token: string }[] = [];
    for (const [i, s] of sites.entries()) {
      s.ownerChain = (
        await issueOwnerCredential({
          ownerKey: s.owner.privateKey,
          ownerUrn: s.owner.urn,
          maUrn: s.maUrn,
          maKey: s.ma.jwk as Record<string, unknown>,
          ttlSeconds: 30 * 86_400,
        })
      ).chain;
      const c = admins[i] as PromiseClient<typeof ManagementAuthorityService>;
      const list: { domain: string; name: string; token: string }[] = s.nodes.map((name) => ({ domain: s.domain, name, token: '' }));
      await pool(list, 32, async (n) => {
        n.token = (await c.createEnrollmentToken({ requestId: `bench-${n.name}`, nodeName: n.name, ownerUrn: s.owner.urn, ttlS: 0 })).token;
      });
      tokens.push(...list);
    }
    const tEnrol = performance.now();
    const workerSites: WorkerSite[] = sites.map((s) => ({
      domain: s.domain,
      style: s.style,
      maUrn: s.maUrn,
      maAddress: `127.0.0.1:${s.port}`,
      enrolAddress: `127.0.0.1:${s.enrolPort}`,
      caPem: s.pki.caPem,
      bundleFile: s.bundleFile,
      ownerCertPath: s.owner.certPath,
      ownerChain: s.ownerChain as readonly string[],
    }));
    const workerProcs: ChildProcess[] = [];
    const ready: Promise<{ nodes: number }>[] = [];
    for (let w = 0; w < workers; w++) {
      // Interleaved, so that every worker serves nodes of every site.
      const part = tokens.filter((_, i) => i % workers === w);
      if (part.length === 0) continue;
      const execArgv = ['--import', 'tsx', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])];
      const child = fork(SELF, ['--worker'], {
        execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '8' },
      });
      workerProcs.push(child);
      procs.push(child);
      ready.push(
        new Promise((resolve, reject) => {
          child.once('exit', (code) => reject(new Error(`worker ${w} exited with ${code} before its nodes were up`)));
          child.on('message', (m: { type: string; nodes: number }) => {
            if (m.type === 'ready') resolve(m);
          });
        }),
      );
      child.send({
        type: 'setup',
        dir: join(dir, `nodes-${w}`),
        heartbeatMs,
        logLevel,
        sites: workerSites,
        nodes: part,
      } satisfies WorkerSetup);
    }
    await Promise.all(ready);
    const enrolS = (performance.now() - tEnrol) / 1000;
    const tUp = performance.now();
    for (const [i, s] of sites.entries()) {
      const c = admins[i] as PromiseClient<typeof ManagementAuthorityService>;
      await until(`${s.nodes.length} nodes UP at ${s.domain}`, s.proc as ChildProcess, async () => {
        let token = '';
        let up = 0;
        do {
          const page = await c.listNodes({ pageSize: 1000, pageToken: token, health: NodeHealth.NODE_HEALTH_UP });
          up += page.nodes.length;
          token = page.nextPageToken;
        } while (token);
        if (up < s.nodes.length) throw new Error(`${up} of ${s.nodes.length} UP`);
      });
    }
    console.log(
      `setup: PKI, MAs, delegations and SA ${pkiS.toFixed(1)} s; ${maxN} nodes enrolled (token + EnrollNode + own server and store each) in ${enrolS.toFixed(1)} s; all UP at their MAs ${((performance.now() - tUp) / 1000).toFixed(1)} s later (not measured below)`,
    );

    // 5. The floor: direct CreateSliver calls from one client, as each site's MA with its owner chain.
    const nodeClients = new Map<string, PromiseClient<typeof NodeManagerService>>();
    for (const s of sites) {
      const endpoints = new Map<string, string>();
      let token = '';
      do {
        const page = await (admins[sites.indexOf(s)] as PromiseClient<typeof ManagementAuthorityService>).listNodes({
          pageSize: 1000,
          pageToken: token,
          health: 0,
        });
        for (const n of page.nodes) endpoints.set(n.urn, n.endpoint);
        token = page.nextPageToken;
      } while (token);
      for (const name of s.nodes) {
        const urn = `urn:fedlab:${s.domain}:node:${name}`;
        const c = createClient(NodeManagerService, {
          address: endpoints.get(urn) as string,
          tls: { caCerts: s.pki.caPem, cert: s.ma.certPem, key: s.ma.keyPem },
          serverUrn: urn,
          deadlineMs: 60_000,
        });
        nodeClients.set(urn, c);
        clients.push(c);
      }
    }
    // Warm every channel (TLS handshake) once, as the MA's pool would be after its first slice.
    const tWarm = performance.now();
    await pool([...nodeClients.entries()], 64, async ([urn, c]) => {
      const s = sites.find((x) => urn.includes(`:${x.domain}:`)) as SiteRun;
      await c.getNodeInfo({}, { chain: s.ownerChain as string[] });
    });
    console.log(
      `floor client: ${nodeClients.size} channels opened (TLS handshake + GetNodeInfo each, 64 at once) in ${(performance.now() - tWarm).toFixed(0)} ms`,
    );
    let floorSeq = 0;
    const floor = async (n: number): Promise<number> => {
      const id = `floor${floorSeq++}`;
      const counts = perSite(n);
      const plan = sites.map((s, i) => ({ s, nodes: s.nodes.slice(0, counts[i]) }));
      const t = performance.now();
      await Promise.all(
        plan.map(({ s, nodes }) =>
          pool(nodes, 64, async (name, k) => {
            const urn = `urn:fedlab:${s.domain}:node:${name}`;
            const res = await (nodeClients.get(urn) as PromiseClient<typeof NodeManagerService>).createSliver(
              {
                users: [],
                requestId: `${id}-${k}`,
                sliverUrn: `urn:fedlab:${s.domain}:sliver:${id}-${k}`,
                sliceUrn: `urn:fedlab:${home.domain}:slice:${id}`,
                sliceAuthorityUrn: saUrn,
                sliceAuthorityJwk: JSON.stringify(sa.jwk),
                providerUrn: sp.urn,
                resources: RESOURCES,
                expiresAt: new Date(Date.now() + 86_400_000),
                exclusive: s.style === 'emulab',
                interfaces: [],
                allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
                clientId: `c${k}`,
                start: true,
              },
              { chain: s.ownerChain as string[] },
            );
            if (res.sliver?.operationalState !== OperationalState.OPERATIONAL_STATE_READY)
              throw new Error(`floor: sliver on ${urn} is not READY`);
          }),
        ),
      );
      const ms = performance.now() - t;
      await Promise.all(
        plan.map(({ s, nodes }) =>
          pool(nodes, 64, async (name, k) => {
            const urn = `urn:fedlab:${s.domain}:node:${name}`;
            await (nodeClients.get(urn) as PromiseClient<typeof NodeManagerService>).deleteSliver(
              { sliverUrn: `urn:fedlab:${s.domain}:sliver:${id}-${k}` },
              { chain: s.ownerChain as string[] },
            );
          }),
        ),
      );
      return ms;
    };

    const pids = {
      sa: saProc.pid as number,
      mas: sites.map((s) => s.proc?.pid as number),
      workers: workerProcs.map((w) => w.pid as number),
    };
    const cpuNow = (): { sa: number; mas: number; workers: number; self: number } => ({
      sa: cpuSeconds(pids.sa),
      mas: pids.mas.reduce((a, p) => a + cpuSeconds(p), 0),
      workers: pids.workers.reduce((a, p) => a + cpuSeconds(p), 0),
      self: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
    });

    // 6. Slices through the SA.
    let sliceSeq = 0;
    // Each create's window on the profiles' (monotonic) clock, so a reader can keep just those samples.
    const creates: { n: number; startUs: number; endUs: number }[] = [];
    const slice = async (n: number, cold = false): Promise<{ ms: number; deleteMs: number; cpu: ReturnType<typeof cpuNow> }> => {
      const name = `bench${sliceSeq++}`;
      const counts = perSite(n);
      const before = cpuNow();
      const t = performance.now();
      const startUs = Number(process.hrtime.bigint() / 1000n);
      const res = await saClient.createSlice({
        users: [],
        requestId: `r-${name}`,
        name,
        description: '',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: sites.map((s, i) => ({
          site: s.domain,
          request: {
            nodes: { nodeUrns: [], count: counts[i] as number, clientIds: [] },
            resources: RESOURCES,
            links: [],
            exclusive: false,
            requestDocument: '',
            requestDocumentFormat: '',
          },
        })),
        start: true,
        wait: true,
      });
      const ms = performance.now() - t;
      if (!cold) creates.push({ n, startUs, endUs: Number(process.hrtime.bigint() / 1000n) });
      const after = cpuNow();
      const cpu = {
        sa: after.sa - before.sa,
        mas: after.mas - before.mas,
        workers: after.workers - before.workers,
        self: after.self - before.self,
      };
      const s = res.slice;
      const readyCount = s?.slivers.filter((x) => x.operationalState === OperationalState.OPERATIONAL_STATE_READY).length ?? 0;
      if (s?.state !== SliceState.SLICE_STATE_READY || readyCount !== n) {
        const why = s?.sites.map((x) => `${x.site}: ${x.status?.reason}`).join('; ');
        throw new Error(`slice ${name} of ${n} nodes: state ${SliceState[s?.state ?? 0]}, ${readyCount} slivers READY (${why})`);
      }
      const td = performance.now();
      let del = await saClient.deleteSlice({ sliceUrn: s.urn });
      while (del.slice?.state !== SliceState.SLICE_STATE_DELETED) {
        await new Promise((r) => setTimeout(r, 100));
        del = { slice: (await saClient.getSlice({ sliceUrn: s.urn })).slice, results: [] };
      }
      return { ms, deleteMs: performance.now() - td, cpu };
    };

    // The profiles' clock is the monotonic one: this window lets a reader keep only the slices.
    const windowStart = process.hrtime.bigint() / 1000n;
    // The first slice pays for the MAs' channels to their nodes (TLS handshakes): shown, not counted.
    const c0 = performance.now();
    try {
      const cold = await slice(maxN, true);
      console.log(
        `first slice of ${maxN} nodes (cold: every MA → node channel opens): ${cold.ms.toFixed(0)} ms; setup total ${((c0 - setupStart) / 1000).toFixed(1)} s; load average ${loadAverage()}`,
      );
    } catch (err) {
      console.log(
        `first slice of ${maxN} nodes (cold) failed after ${(performance.now() - c0).toFixed(0)} ms: ${(err as Error).message.slice(0, 600)}`,
      );
    }
    console.log('');
    const rows: { n: number; sa: number; floor: number; del: number; cpu: Record<string, number>; runs: number }[] = [];
    for (const n of sizes) {
      const r = n > 500 ? Math.min(runs, 2) : runs;
      const saMs: number[] = [];
      const floorMs: number[] = [];
      const delMs: number[] = [];
      const cpu = { sa: 0, mas: 0, workers: 0, self: 0 };
      for (let k = 0; k < r; k++) {
        floorMs.push(await floor(n));
        const x = await slice(n);
        for (const key of Object.keys(cpu) as (keyof typeof cpu)[]) cpu[key] += x.cpu[key] / r;
        saMs.push(x.ms);
        delMs.push(x.deleteMs);
      }
      rows.push({ n, sa: median(saMs), floor: median(floorMs), del: median(delMs), cpu, runs: r });
      const last = rows[rows.length - 1] as (typeof rows)[number];
      console.log(
        `${String(n).padStart(5)} nodes (${perSite(n).join('+')}): create→READY ${last.sa.toFixed(0)} ms (${(last.sa / n).toFixed(2)} ms/node)  ` +
          `floor ${last.floor.toFixed(0)} ms (${(last.floor / n).toFixed(2)} ms/node)  ratio to floor ${(last.sa / last.floor).toFixed(2)}x  ` +
          `[median of ${r}; runs ${saMs.map((x) => x.toFixed(0)).join(', ')} ms; delete ${last.del.toFixed(0)} ms; CPU s of the create: SA ${cpu.sa.toFixed(2)}, MAs ${cpu.mas.toFixed(2)}, nodes ${cpu.workers.toFixed(2)}; load ${loadAverage()}]`,
      );
    }
    console.log('');
    const at100 = rows.find((r) => r.n === 100);
    const at1000 = rows.find((r) => r.n === 1000);
    if (at100 && at1000) {
      const g = at1000.sa / 1000 / (at100.sa / 100);
      const gf = at1000.floor / 1000 / (at100.floor / 100);
      console.log(`per-node cost at 1,000 vs 100 nodes: ${g.toFixed(2)}x through the SA (floor: ${gf.toFixed(2)}x)`);
      console.log(
        `target: 1,000 nodes READY in under 3 s — ${at1000.sa < 3000 ? 'met' : 'NOT met'} (${(at1000.sa / 1000).toFixed(2)} s); per-node cost at 1,000 no higher than at 100 — ${g <= 1 ? 'met' : 'NOT met'} (${g.toFixed(2)}x)`,
      );
    }
    if (profileDir) {
      mkdirSync(profileDir, { recursive: true });
      writeFileSync(
        join(profileDir, 'window.json'),
        JSON.stringify({ startUs: Number(windowStart), endUs: Number(process.hrtime.bigint() / 1000n), pids, creates }),
      );
    }
    if (profileDir) console.log(`CPU profiles of the SA, MAs and workers are written to ${profileDir} as the processes exit`);
  } finally {
    for (const c of clients) c.close();
    for (const p of procs) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const gone = new Promise((r) => p.once('exit', r));
      if (p.connected) p.send({ type: 'stop' });
      else p.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(main, worker);
