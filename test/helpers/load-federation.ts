// The servers of bench/load.ts: a PKI for one domain, its management authority and slice authority as
// `fedlab serve` processes (logging only warnings, so a flood of calls costs no log lines), simulated node
// managers enrolled the way an owner enrols them and hosted in the calling process, the MA → SA
// delegation, and one provider account with a slice quota per load client. Also the /proc readings the
// benchmark prints (resident memory, open descriptors).
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestPki, type TestIdentity } from '../../certs/test-pki.js';
import { writeChainFile } from '../../cli/chain-file.js';
import { maConfig, nmConfig, saConfig } from '../../cli/kit/role-configs.js';
import { freePort } from '../../cli/up/processes.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { privateKeyToPem, publicKeyToPem } from '../../services/core/identity/keys.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient } from '../../services/core/rpc/client.js';
import { sleep } from '../../services/core/timing.js';
import { AggregateService } from '../../services/generated/fedlab/v1/aggregate.js';
import { SliverIsolation } from '../../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService } from '../../services/generated/fedlab/v1/management_authority.js';
import { SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import { enrollNode, issueOwnerCredential, OWNER_PRIVILEGES } from '../../services/management-authority/enrolment-client.js';
import { nodeManagerRole } from '../../services/node-manager/index.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

const ROOT = join(import.meta.dirname, '..', '..');
export const DOMAIN = 'load.test';
export const MA_URN = `urn:fedlab:${DOMAIN}:authority:ma`;
export const SA_URN = `urn:fedlab:${DOMAIN}:authority:sa`;
/** Live slices a provider may hold at the SA: the documented quota the creates run into. */
export const SLICE_QUOTA = 3;

/** The servers and who may call them. */
export interface LoadFederation {
  readonly dir: string;
  readonly caPem: string;
  readonly providers: readonly TestIdentity[];
  readonly admin: TestIdentity;
  readonly ma: { readonly child: ChildProcess; readonly address: string; readonly enrolPort: number };
  readonly sa: { readonly child: ChildProcess; readonly address: string };
  readonly nodes: readonly HostedService[];
  readonly nodeUrns: readonly string[];
  readonly termsDigest: string;
}

/** Resident memory of a process, from /proc (bytes; NaN once it is gone). */
export function rss(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m?.[1]) * 1024;
  } catch {
    return NaN;
  }
}

/** Open file descriptors of a process (sockets included). */
export function fds(pid: number | undefined): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Starts `fedlab serve <role>` (warn-level logs; `nodeArgs` for Node, e.g. `--cpu-prof`) and polls `ready` until it answers. */
async function serve(
  role: 'ma' | 'sa',
  config: string,
  ready: () => Promise<unknown>,
  nodeArgs: readonly string[] = [],
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(ROOT, 'cli/main.ts'), 'serve', role, '--config', config], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const until = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`fedlab serve ${role} exited with ${child.exitCode}`);
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`fedlab serve ${role} did not answer within 120 s`);
    }
    if (
      await ready().then(
        () => true,
        () => false,
      )
    )
      return child;
    await sleep(300);
  }
}

/** A client as `who` (one HTTP/2 connection per client). */
export function loadClient<D extends Parameters<typeof createClient>[0]>(
  definition: D,
  address: string,
  serverUrn: string,
  caPem: string,
  who: TestIdentity,
) {
  return createClient(definition, { address, tls: { caCerts: caPem, cert: who.certPem, key: who.keyPem }, serverUrn, deadlineMs: 30_000 });
}

/** Enrols and starts one simulated node manager here, the way an owner enrols a node. */
async function startNode(
  dir: string,
  i: number,
  s: { caPem: string; admin: TestIdentity; owner: TestIdentity; ma: TestIdentity; maAddress: string; enrolPort: number; bundle: string },
) {
  const admin = loadClient(ManagementAuthorityService, s.maAddress, MA_URN, s.caPem, s.admin);
  const name = `n${i}`;
  const { token } = await admin.createEnrollmentToken({ requestId: `t-${name}`, nodeName: name, ownerUrn: s.owner.urn, ttlS: 0 });
  admin.close();
  const { chain } = await issueOwnerCredential({
    ownerKey: s.owner.privateKey,
    ownerUrn: s.owner.urn,
    maUrn: MA_URN,
    maKey: s.ma.jwk as Record<string, unknown>,
    privileges: OWNER_PRIVILEGES,
    ttlSeconds: 90 * 86_400,
  });
  const keys = generateKeyPair('p256');
  const port = await freePort();
  const capacity = { cpu_millis: 64_000, mem_mb: 256_000, disk_mb: 256_000, pids: 100_000, slivers: 400 };
  const res = await enrollNode(
    { address: `127.0.0.1:${s.enrolPort}`, caPem: s.caPem, maUrn: MA_URN },
    {
      token,
      publicKeyPem: publicKeyToPem(keys.publicKey),
      csrPem: '',
      ownerCredentialChain: [...chain],
      endpoint: `127.0.0.1:${port}`,
      capacity: { cpuMillis: capacity.cpu_millis, memMb: capacity.mem_mb, diskMb: capacity.disk_mb, pids: capacity.pids, bandwidthKbps: 0 },
      isolation: SliverIsolation.SLIVER_ISOLATION_SIMULATED,
      version: 'bench',
      netemAvailable: false,
    },
  );
  const nodeDir = join(dir, name);
  const files = { key: join(dir, `${name}.key`), cert: join(dir, `${name}.pem`), ca: join(dir, `${name}.ca`) };
  writeFileSync(files.key, privateKeyToPem(keys.privateKey), { mode: 0o600 });
  writeFileSync(files.cert, res.certificatePem);
  writeFileSync(files.ca, res.caChainPem.join(''));
  const config = nmConfig({
    urn: res.nodeUrn,
    listen: { host: '127.0.0.1', port },
    endpoint: `127.0.0.1:${port}`,
    tls: files,
    trust_bundle: s.bundle,
    data_dir: nodeDir,
    log_level: 'silent',
    owner: { certificate: s.owner.certPath },
    management_authority: { urn: MA_URN, address: s.maAddress },
    style: 'planetlab',
    driver: 'simulated',
    capacity,
    heartbeat_interval_ms: 2000,
  }).writeAndCompile(join(dir, `${name}.json`));
  return { urn: res.nodeUrn, service: await hostService(config, silentLogger(), nodeManagerRole()) };
}

/** Options of {@link startLoadFederation}. */
export interface LoadFederationOptions {
  /**
   * Provider accounts at the SA (default: one per client). With fewer, client `i` is provider
   * `i % accounts`, each client still with its own key, certificate and connection.
   */
  readonly accounts?: number;
  /** Node options of the SA process (e.g. `--cpu-prof`, `--cpu-prof-dir=DIR`). */
  readonly saNodeArgs?: readonly string[];
}

/** PKI, the MA, the nodes, the MA → SA delegation, the SA with one account per client (or `options.accounts`). */
export async function startLoadFederation(
  clients: number,
  nodeCount: number,
  options: LoadFederationOptions = {},
): Promise<LoadFederation> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlab-bench-load-'));
  const pki = await createTestPki({ domain: DOMAIN, dir: join(dir, 'pki') });
  const ma = await pki.issueServer(MA_URN);
  const sa = await pki.issueServer(SA_URN);
  const admin = await pki.issue(`urn:fedlab:${DOMAIN}:user:admin`);
  const owner = await pki.issue(`urn:fedlab:${DOMAIN}:owner:olivia`);
  const providers: TestIdentity[] = [];
  const accounts = Math.min(clients, options.accounts ?? clients);
  for (let i = 0; i < clients; i++) providers.push(await pki.issue(`urn:fedlab:${DOMAIN}:sp:p${i % accounts}`));
  const bundle = (await pki.bundle()).file;
  const [port, enrolPort, saPort] = [await freePort(), await freePort(), await freePort()];
  const maAddress = `127.0.0.1:${port}`;
  const maFile = maConfig({
    urn: MA_URN,
    style: 'planetlab',
    listen: { host: '127.0.0.1', port },
    tls: { ca: ma.caPath, cert: ma.certPath, key: ma.keyPath },
    trust_bundle: bundle,
    data_dir: join(dir, 'ma-data'),
    log_level: 'warn',
    admins: [admin.urn],
    enrolment: { listen: { host: '127.0.0.1', port: enrolPort }, ca_dir: pki.caDir },
    heartbeat: { interval_ms: 2000 },
    delegation_policy: { allow_own_domain: true, allow: [SA_URN] },
  }).writeTo(join(dir, 'ma.json'));
  const children: ChildProcess[] = [];
  const nodes: HostedService[] = [];
  try {
    const adminMa = loadClient(ManagementAuthorityService, maAddress, MA_URN, pki.caPem, admin);
    const maChild = await serve('ma', maFile, () => adminMa.listNodes({ pageSize: 1, pageToken: '', health: 0 }, { deadlineMs: 1000 }));
    children.push(maChild);
    const nodeUrns: string[] = [];
    for (let i = 1; i <= nodeCount; i++) {
      const n = await startNode(dir, i, { caPem: pki.caPem, admin, owner, ma, maAddress, enrolPort, bundle });
      nodes.push(n.service);
      nodeUrns.push(n.urn);
    }
    for (;;) {
      const up = await adminMa.listNodes({ pageSize: 1000, pageToken: '', health: 1 });
      if (up.nodes.length >= nodeCount) break;
      await sleep(300);
    }
    const { chain } = await adminMa.delegateToSliceAuthority({
      requestId: 'sa',
      sliceAuthorityUrn: SA_URN,
      sliceAuthorityJwk: '',
      sliceAuthorityCertificatePem: sa.certPem,
      privileges: [],
      targets: [],
      limits: {},
      ttlS: 0,
      maxDelegations: 1,
    });
    adminMa.close();
    const saFile = saConfig({
      urn: SA_URN,
      listen: { host: '127.0.0.1', port: saPort },
      tls: { ca: sa.caPath, cert: sa.certPath, key: sa.keyPath },
      trust_bundle: bundle,
      data_dir: join(dir, 'sa-data'),
      log_level: 'warn',
      admins: [admin.urn],
      sites: [{ domain: DOMAIN, endpoint: maAddress, ma_urn: MA_URN, chain_file: writeChainFile(join(dir, 'sa.chain'), chain) }],
      providers: providers.slice(0, accounts).map((p) => ({ urn: p.urn, quotas: { slices: SLICE_QUOTA } })),
    }).writeTo(join(dir, 'sa.json'));
    const saAddress = `127.0.0.1:${saPort}`;
    const probe = loadClient(SliceAuthorityService, saAddress, SA_URN, pki.caPem, providers[0] as TestIdentity);
    const saChild = await serve(
      'sa',
      saFile,
      () => probe.listSlices({ pageSize: 1, pageToken: '', state: 0 }, { deadlineMs: 1000 }),
      options.saNodeArgs,
    );
    children.push(saChild);
    const agg = loadClient(AggregateService, maAddress, MA_URN, pki.caPem, admin);
    const termsDigest = (await agg.getVersion({})).termsDigest;
    agg.close();
    probe.close();
    return {
      dir,
      caPem: pki.caPem,
      providers,
      admin,
      ma: { child: maChild, address: maAddress, enrolPort },
      sa: { child: saChild, address: saAddress },
      nodes,
      nodeUrns,
      termsDigest,
    };
  } catch (err) {
    // Nothing is left running when the set-up fails half-way.
    for (const n of nodes) await n.stop();
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Stops the nodes and both servers (SIGTERM, then waits for them) and removes the directory. */
export async function stopLoadFederation(f: LoadFederation): Promise<void> {
  for (const n of f.nodes) await n.stop();
  const gone = (c: ChildProcess): Promise<void> =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        });
  await Promise.all([gone(f.ma.child), gone(f.sa.child)]);
  rmSync(f.dir, { recursive: true, force: true });
}
