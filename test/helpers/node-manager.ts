// A node manager for tests, one call: a PKI with the node, its owner, a management authority, a slice
// authority and a provider; the owner → MA chain and slice credentials; the NM served over mTLS on port 0
// (in this process, or as `fedlab serve nm` in a child process); clients; and a cleanup that removes every
// sliver cgroup, process and directory of the node manager's instance even when a test failed.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { delegate, issueRoot } from '../../services/core/credentials/index.js';
import { compileConfig } from '../../services/core/config.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { silentLogger, type Logger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../services/core/rpc/server.js';
import { AllocationState } from '../../services/generated/fedlab/v1/common.js';
import { NodeManagerService, type CreateSliverRequest } from '../../services/generated/fedlab/v1/node_manager.js';
import { purgeInstance as purgeNmInstance } from '../../services/node-manager/drivers/instance-purge.js';
import { containerSupport } from '../../services/node-manager/drivers/select.js';
import { instanceId, nmConfigSchema, NM_PATH_FIELDS, nodeManagerRole, type NmConfig } from '../../services/node-manager/index.js';
import type { NodeManager } from '../../services/node-manager/node-manager.js';
import type { Clock } from '../../services/core/clock.js';
import type { SliverDriver } from '../../services/node-manager/drivers/driver.js';
import { makeTestPki, type TestIdentity, type TestPki } from './pki.js';

export const DOMAIN = 'plc.test';
export const NODE_URN = `urn:fedlab:${DOMAIN}:node:n1`;
export const OWNER_URN = `urn:fedlab:${DOMAIN}:owner:alice`;
export const MA_URN = `urn:fedlab:${DOMAIN}:authority:ma`;
export const SA_URN = `urn:fedlab:${DOMAIN}:authority:sa`;
export const SP_URN = `urn:fedlab:${DOMAIN}:sp:acme`;

/** Every privilege the owner → MA chain grants in tests. */
export const NODE_PRIVILEGES = [
  'node.read',
  'sliver.create',
  'sliver.delete',
  'sliver.renew',
  'sliver.control',
  'sliver.read',
  'sliver.exec',
];
/** What a slice credential SA → SP grants in tests. */
export const SLICE_PRIVILEGES = ['sliver.exec', 'sliver.read', 'sliver.control', 'sliver.renew'];

/** Whether the container driver can run here, and if not why (tests that need it skip and say so). */
export const containerCheck = containerSupport();
export const canContain = containerCheck.ok;
export const cannotContainReason = containerCheck.ok ? '' : containerCheck.reason;

/** The parties of a test federation with their certificates. */
export interface NmParties {
  readonly pki: TestPki;
  readonly node: TestIdentity;
  readonly owner: TestIdentity;
  readonly ma: TestIdentity;
  readonly sa: TestIdentity;
  readonly sp: TestIdentity;
  /** owner → MA over the site's nodes, every node privilege. */
  readonly ownerChain: readonly string[];
}

let partiesOnce: Promise<NmParties> | undefined;

/** The test federation's parties (made once per test file). */
export function parties(): Promise<NmParties> {
  partiesOnce ??= (async () => {
    const pki = await makeTestPki(DOMAIN);
    const node = await pki.issueServer(NODE_URN);
    const owner = await pki.issue(OWNER_URN);
    const ma = await pki.issueServer(MA_URN);
    const sa = await pki.issue(SA_URN);
    const sp = await pki.issue(SP_URN);
    const ownerChain = (
      await issueRoot({
        key: owner.privateKey,
        issuer: OWNER_URN,
        subject: MA_URN,
        subjectKey: ma.jwk as Record<string, unknown>,
        targets: [`urn:fedlab:${DOMAIN}:node:*`],
        privileges: NODE_PRIVILEGES,
        dlg: 2,
        ttlSeconds: 90 * 86_400,
      })
    ).chain;
    return { pki, node, owner, ma, sa, sp, ownerChain };
  })();
  return partiesOnce;
}

/** An owner → MA chain with other privileges, limits or lifetime. */
export async function ownerChainWith(o: {
  privileges?: string[];
  limits?: Record<string, number>;
  ttlSeconds?: number;
  targets?: string[];
}): Promise<string[]> {
  const p = await parties();
  return [
    ...(
      await issueRoot({
        key: p.owner.privateKey,
        issuer: OWNER_URN,
        subject: MA_URN,
        subjectKey: p.ma.jwk as Record<string, unknown>,
        targets: o.targets ?? [`urn:fedlab:${DOMAIN}:node:*`],
        privileges: o.privileges ?? NODE_PRIVILEGES,
        dlg: 2,
        ...(o.limits ? { limits: o.limits } : {}),
        ttlSeconds: o.ttlSeconds ?? 90 * 86_400,
      })
    ).chain,
  ];
}

/** A slice credential SA → SP for one slice (optionally delegated on to `member`). */
export async function sliceChain(
  sliceUrn: string,
  o: { privileges?: string[]; member?: TestIdentity; ttlSeconds?: number; limits?: Record<string, number> } = {},
): Promise<string[]> {
  const p = await parties();
  const root = await issueRoot({
    key: p.sa.privateKey,
    issuer: SA_URN,
    subject: SP_URN,
    subjectKey: p.sp.jwk as Record<string, unknown>,
    targets: [sliceUrn],
    privileges: o.privileges ?? SLICE_PRIVILEGES,
    dlg: 1,
    ttlSeconds: o.ttlSeconds ?? 30 * 86_400,
    ...(o.limits ? { limits: o.limits } : {}),
  });
  if (!o.member) return [...root.chain];
  return [
    ...(
      await delegate(root.chain, {
        key: p.sp.privateKey,
        subject: o.member.urn,
        subjectKey: o.member.jwk as Record<string, unknown>,
        dlg: 0,
      })
    ).chain,
  ];
}

/** TLS material of a party, for clients. */
export function tlsOf(p: NmParties, who: TestIdentity): TlsMaterial {
  return { caCerts: p.pki.caPem, cert: who.certPem, key: who.keyPem };
}

/** Options of {@link startNodeManager}. */
export interface StartOptions {
  readonly driver?: 'container' | 'process' | 'simulated';
  /** Extra config (merged over the defaults below). */
  readonly config?: Record<string, unknown>;
  /** Reuse a data directory (to restart a node manager on the same state). */
  readonly dataDir?: string;
  readonly clock?: Clock;
  readonly log?: Logger;
  /** A driver object to use instead of the configured one. */
  readonly driverObject?: SliverDriver;
}

/** A running node manager and what tests need around it. */
export interface NmHarness {
  readonly parties: NmParties;
  readonly dataDir: string;
  readonly configFile: string;
  readonly config: Readonly<NmConfig>;
  readonly service: HostedService;
  readonly nm: NodeManager;
  readonly address: string;
  /** A client as the MA (or another party), one per party; closed by {@link NmHarness.stop}. */
  client(who?: TestIdentity): PromiseClient<typeof NodeManagerService>;
  /** Stops the service (clients first), keeping slivers and the data dir. */
  stop(): Promise<void>;
  /** Stops, removes every sliver runtime of the instance, and the data directory. */
  destroy(): Promise<void>;
}

/** Writes a node manager config file for `dataDir` (with listen port 0). */
export async function writeNmConfig(dataDir: string, o: StartOptions = {}): Promise<string> {
  const p = await parties();
  const bundle = await p.pki.bundle({ file: join(dataDir, '..', `bundle-${Math.random().toString(36).slice(2)}.json`) });
  const config = {
    role: 'nm',
    urn: NODE_URN,
    listen: { host: '127.0.0.1', port: 0 },
    tls: { ca: p.node.caPath, cert: p.node.certPath, key: p.node.keyPath },
    trust_bundle: bundle.file,
    data_dir: dataDir,
    log_level: 'silent',
    shutdown_grace_ms: 2000,
    owner: { certificate: p.owner.certPath },
    management_authority: { urn: MA_URN },
    driver: o.driver ?? 'process',
    capacity: { cpu_millis: 4000, mem_mb: 4096, disk_mb: 8192, pids: 4096, slivers: 100 },
    defaults: { cpu_millis: 100, mem_mb: 64, disk_mb: 64, pids: 64 },
    reaper_interval_ms: 100,
    disk_check_interval_ms: 60_000,
    ...o.config,
  };
  const file = join(dataDir, '..', `nm-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** Starts a node manager in this process over mTLS on port 0. */
export async function startNodeManager(o: StartOptions = {}): Promise<NmHarness> {
  const p = await parties();
  const root = o.dataDir ? join(o.dataDir, '..') : tempDir();
  const dataDir = o.dataDir ?? join(root, 'data');
  const configFile = await writeNmConfig(dataDir, o);
  const config = compileConfig(nmConfigSchema, { file: configFile }, NM_PATH_FIELDS);
  let nm: NodeManager | undefined;
  const service = await hostService(
    config,
    o.log ?? silentLogger(),
    nodeManagerRole({
      ...(o.clock ? { clock: o.clock } : {}),
      ...(o.driverObject ? { driver: o.driverObject } : {}),
      onBuilt: (x) => (nm = x),
    }),
  );
  const address = `127.0.0.1:${service.port}`;
  const clients: PromiseClient<typeof NodeManagerService>[] = [];
  const byUrn = new Map<string, PromiseClient<typeof NodeManagerService>>();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const c of clients) c.close();
    await service.stop();
  };
  return {
    parties: p,
    dataDir,
    configFile,
    config,
    service,
    nm: nm as unknown as NodeManager,
    address,
    client: (who = p.ma) => {
      let c = byUrn.get(who.urn + who.kid);
      if (!c) {
        c = createClient(NodeManagerService, { address, tls: tlsOf(p, who), serverUrn: NODE_URN, deadlineMs: 20_000 });
        clients.push(c);
        byUrn.set(who.urn + who.kid, c);
      }
      return c;
    },
    stop,
    destroy: async () => {
      await stop();
      await purgeInstance(dataDir, config.driver, config.network);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Removes every cgroup, process and work directory of the node manager instance that used `dataDir`, and
 * what its sliver network left here: the slivers' namespace names, veths, nftables tables, and the bridge
 * `network.bridge` names (services/node-manager/drivers/instance-purge.ts).
 */
export async function purgeInstance(dataDir: string, kind: NmConfig['driver'], network?: { readonly bridge?: string }): Promise<void> {
  if (kind === 'simulated') return;
  await purgeNmInstance({
    kind,
    workRoot: join(dataDir, 'slivers'),
    instance: instanceId(dataDir),
    log: silentLogger(),
    ...(network?.bridge ? { bridge: network.bridge } : {}),
  });
}

/** The containers runc knows under a node manager's data directory (its own --root). */
export function runcList(dataDir: string): { id: string; pid: number; status: string }[] {
  const root = join(dataDir, 'runc');
  if (!existsSync(root) || !containerCheck.ok) return [];
  const out = execFileSync(containerCheck.runc, ['--root', root, 'list', '--format', 'json'], { encoding: 'utf8' }).trim();
  return out && out !== 'null' ? (JSON.parse(out) as { id: string; pid: number; status: string }[]) : [];
}

/** Where Debian's umoci is; {@link buildBusyboxImage} needs it (tests that build images skip without it). */
const UMOCI = '/usr/bin/umoci';
/** Whether umoci is installed (`apt-get install umoci`). */
export const umociThere = existsSync(UMOCI);

/**
 * Builds a small OCI image layout `<imagesDir>/<name>` from the host's static busybox with umoci (nothing is
 * downloaded): busybox and its applets under /bin, and an /etc/os-release naming the image.
 */
export function buildBusyboxImage(imagesDir: string, name: string): string {
  const layout = join(imagesDir, name);
  const work = mkdtempSync(join(tmpdir(), 'fedlab-img-'));
  const umoci = (...args: string[]) => execFileSync(UMOCI, args, { stdio: 'pipe' });
  try {
    mkdirSync(imagesDir, { recursive: true });
    umoci('init', '--layout', layout);
    umoci('new', '--image', `${layout}:latest`);
    umoci('unpack', '--image', `${layout}:latest`, join(work, 'b'));
    const rootfs = join(work, 'b', 'rootfs');
    for (const d of ['bin', 'etc', 'root', 'tmp', 'proc', 'dev', 'sys']) mkdirSync(join(rootfs, d), { recursive: true });
    copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
    chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
    for (const applet of ['sh', 'cat', 'ls', 'echo', 'id', 'touch', 'rm', 'sleep', 'mkdir', 'hostname', 'head', 'wc', 'stat'])
      symlinkSync('busybox', join(rootfs, 'bin', applet));
    writeFileSync(join(rootfs, 'etc', 'os-release'), `ID=fedlab-${name}\nPRETTY_NAME="Fedlab test image ${name}"\n`);
    writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    umoci('repack', '--image', `${layout}:latest`, join(work, 'b'));
    return layout;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Mount points under a directory (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}

/** A CreateSliver request with test defaults. */
export function createRequest(name: string, o: Partial<CreateSliverRequest> = {}): CreateSliverRequest {
  return {
    requestId: `req-${name}-${Math.random().toString(36).slice(2)}`,
    sliverUrn: `urn:fedlab:${DOMAIN}:sliver:${name}`,
    sliceUrn: `urn:fedlab:${DOMAIN}:slice:s1`,
    sliceAuthorityUrn: SA_URN,
    sliceAuthorityJwk: '',
    providerUrn: SP_URN,
    resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
    exclusive: false,
    interfaces: [],
    users: [],
    allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
    clientId: '',
    start: true,
    ...o,
  };
}

/** Fills in the SA's JWK (known only once the parties exist). */
export async function withSaJwk(req: CreateSliverRequest): Promise<CreateSliverRequest> {
  const p = await parties();
  return { ...req, sliceAuthorityJwk: req.sliceAuthorityJwk || JSON.stringify(p.sa.jwk) };
}

/** Collects an Exec stream: stdout, stderr, and the exit. */
export async function collectExec(
  stream: AsyncIterable<{ chunk?: { $case: string; stdout?: Buffer; stderr?: Buffer; exit?: unknown } | undefined }>,
): Promise<{
  stdout: string;
  stderr: string;
  exit:
    { status?: { $case: 'code'; code: number } | { $case: 'signal'; signal: string }; timedOut: boolean; durationMs: number } | undefined;
}> {
  let stdout = '';
  let stderr = '';
  let exit: unknown;
  for await (const m of stream) {
    if (m.chunk?.$case === 'stdout') stdout += m.chunk.stdout?.toString() ?? '';
    else if (m.chunk?.$case === 'stderr') stderr += m.chunk.stderr?.toString() ?? '';
    else if (m.chunk?.$case === 'exit') exit = m.chunk.exit;
  }
  return { stdout, stderr, exit: exit as never };
}

/** Creates (and by default starts) a sliver as the MA; returns the wire sliver. */
export async function createSliver(h: NmHarness, name: string, o: Partial<CreateSliverRequest> = {}, chain?: readonly string[]) {
  const res = await h.client().createSliver(await withSaJwk(createRequest(name, o)), { chain: chain ?? h.parties.ownerChain });
  return res.sliver!;
}

/** A fresh temporary directory (removed by the caller), traversable so that slivers' root users reach their bundles in it. */
export function tempDir(prefix = 'fedlab-nm-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o711);
  return dir;
}
