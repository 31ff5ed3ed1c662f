// `npm run bench:node`: node manager latencies through the real API (mTLS gRPC, credential checks, LevelDB,
// the driver): CreateSliver-to-READY and DeleteSliver latency (median, p95) for the container and process
// drivers, and CreateSliver throughput for the simulated driver. Prints figures; asserts nothing.
import 'reflect-metadata';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { quietIrrelevantWarnings } from '../cli/warnings.js';
import { createTestPki } from '../certs/test-pki.js';
import { compileConfig } from '../services/core/config.js';
import { issueRoot } from '../services/core/credentials/index.js';
import { hostService } from '../services/core/host.js';
import { silentLogger } from '../services/core/log.js';
import { createClient } from '../services/core/rpc/client.js';
import { AllocationState } from '../services/generated/fedlab/v1/common.js';
import { NodeManagerService, type CreateSliverRequest } from '../services/generated/fedlab/v1/node_manager.js';
import { containerSupport, createDriver } from '../services/node-manager/drivers/select.js';
import { instanceId, nmConfigSchema, NM_PATH_FIELDS, nodeManagerRole } from '../services/node-manager/index.js';
import { compareWithRunc } from './node-vs-runc.js';
import { quantile } from './support.js';

// An entry point: Node's DEP0123 (IP-address SNI from grpc-js) says nothing here.
quietIrrelevantWarnings();

const DOMAIN = 'bench.test';
const NODE = `urn:fedlab:${DOMAIN}:node:n1`;
const OWNER = `urn:fedlab:${DOMAIN}:owner:o`;
const MA = `urn:fedlab:${DOMAIN}:authority:ma`;
const SA = `urn:fedlab:${DOMAIN}:authority:sa`;
const LATENCY_RUNS = Number(process.env.BENCH_NODE_RUNS ?? 40);
const SIM_CREATES = Number(process.env.BENCH_NODE_SIM ?? 2000);
const SIM_CONCURRENCY = 32;
const RUNC_SLIVERS = Number(process.env.BENCH_NODE_RUNC ?? 50);
const RUNC_PARALLEL = 4;

const pki = await createTestPki({ domain: DOMAIN });
const node = await pki.issueServer(NODE);
const owner = await pki.issue(OWNER);
const ma = await pki.issue(MA);
const sa = await pki.issue(SA);
const chain = (
  await issueRoot({
    key: owner.privateKey,
    issuer: OWNER,
    subject: MA,
    subjectKey: ma.jwk as Record<string, unknown>,
    targets: [`urn:fedlab:${DOMAIN}:node:*`],
    privileges: ['node.read', 'sliver.create', 'sliver.delete', 'sliver.control', 'sliver.read', 'sliver.exec'],
  })
).chain;
const bundle = await pki.bundle();

const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

function request(i: number, prefix: string): CreateSliverRequest {
  return {
    users: [],
    requestId: `${prefix}-${i}`,
    sliverUrn: `urn:fedlab:${DOMAIN}:sliver:${prefix}${i}`,
    sliceUrn: `urn:fedlab:${DOMAIN}:slice:${prefix}${i}`,
    sliceAuthorityUrn: SA,
    sliceAuthorityJwk: JSON.stringify(sa.jwk),
    providerUrn: `urn:fedlab:${DOMAIN}:sp:p`,
    resources: { cpuMillis: 250, memMb: 64, diskMb: 8, pids: 64, bandwidthKbps: 0 },
    exclusive: false,
    interfaces: [],
    allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
    clientId: '',
    start: true,
  };
}

async function withNode<T>(
  driver: 'container' | 'process' | 'simulated',
  fn: (client: ReturnType<typeof createClient<typeof NodeManagerService>>) => Promise<T>,
): Promise<T> {
  const root = mkdtempSync(join(tmpdir(), `fedlab-bench-nm-${driver}-`));
  // Slivers' root users reach their bundles through it.
  chmodSync(root, 0o711);
  const dataDir = join(root, 'data');
  const file = join(root, 'nm.json');
  writeFileSync(
    file,
    JSON.stringify({
      role: 'nm',
      urn: NODE,
      listen: { host: '127.0.0.1', port: 0 },
      tls: { ca: node.caPath, cert: node.certPath, key: node.keyPath },
      trust_bundle: bundle.file,
      data_dir: dataDir,
      log_level: 'silent',
      owner: { certificate: owner.certPath },
      driver,
      capacity: { cpu_millis: 1_000_000, mem_mb: 16 * 1024 * 1024, disk_mb: 1024 * 1024, pids: 4_000_000, slivers: 100_000 },
    }),
  );
  const config = compileConfig(nmConfigSchema, { file }, NM_PATH_FIELDS);
  const service = await hostService(config, silentLogger(), nodeManagerRole());
  const client = createClient(NodeManagerService, {
    address: `127.0.0.1:${service.port}`,
    tls: { caCerts: pki.caPem, cert: ma.certPem, key: ma.keyPem },
    serverUrn: NODE,
    deadlineMs: 60_000,
  });
  try {
    return await fn(client);
  } finally {
    client.close();
    await service.stop();
    if (driver !== 'simulated') {
      await createDriver({ kind: driver, workRoot: join(dataDir, 'slivers'), instance: instanceId(dataDir), log: silentLogger() }).purge();
    }
    rmSync(root, { recursive: true, force: true });
  }
}

async function latencies(driver: 'container' | 'process'): Promise<void> {
  await withNode(driver, async (client) => {
    const create: number[] = [];
    const del: number[] = [];
    // One warm-up pair: first calls pay for connection set-up and code loading.
    await client.createSliver(request(0, 'warm'), { chain });
    await client.deleteSliver({ sliverUrn: request(0, 'warm').sliverUrn }, { chain });
    for (let i = 0; i < LATENCY_RUNS; i++) {
      const req = request(i, 'lat');
      let t = performance.now();
      const res = await client.createSliver(req, { chain });
      create.push(performance.now() - t);
      if (res.sliver?.operationalState !== 4) throw new Error(`sliver ${req.sliverUrn} is not READY`);
      t = performance.now();
      await client.deleteSliver({ sliverUrn: req.sliverUrn }, { chain });
      del.push(performance.now() - t);
    }
    create.sort((a, b) => a - b);
    del.sort((a, b) => a - b);
    console.log(
      `${driver.padEnd(9)}  create→READY median ${fmt(quantile(create, 0.5))}, p95 ${fmt(quantile(create, 0.95))}   delete median ${fmt(quantile(del, 0.5))}, p95 ${fmt(quantile(del, 0.95))}   (${LATENCY_RUNS} runs)`,
    );
  });
}

async function throughput(): Promise<void> {
  await withNode('simulated', async (client) => {
    await client.createSliver(request(0, 'warm'), { chain });
    let next = 0;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: SIM_CONCURRENCY }, async () => {
        while (next < SIM_CREATES) await client.createSliver(request(next++, 'sim'), { chain });
      }),
    );
    const s = (performance.now() - t) / 1000;
    console.log(
      `simulated  ${(SIM_CREATES / s).toFixed(0)} creates/s (${SIM_CREATES} CreateSliver calls, ${SIM_CONCURRENCY} in flight, each one credential check + one atomic LevelDB batch)`,
    );
  });
}

/** create → READY, one exec of /usr/bin/true, delete, through the API; i < 0 is a warm-up. */
async function runcComparison(runcPath: string): Promise<void> {
  await withNode('container', async (client) => {
    await compareWithRunc(runcPath, RUNC_SLIVERS, RUNC_PARALLEL, async (i) => {
      const req = request(i < 0 ? 0 : i, i < 0 ? 'cmpwarm' : 'cmp');
      const res = await client.createSliver(req, { chain });
      if (res.sliver?.operationalState !== 4) throw new Error(`sliver ${req.sliverUrn} is not READY`);
      for await (const m of client.exec({ sliverUrn: req.sliverUrn, argv: ['/usr/bin/true'], env: {}, timeoutMs: 0 }, { chain })) void m;
      await client.deleteSliver({ sliverUrn: req.sliverUrn }, { chain });
    });
  });
}

console.log(
  `node manager benchmark — ${availableParallelism()} cores, Node ${process.version}; every figure is a full gRPC call over mTLS with a credential chain\n`,
);
const support = containerSupport();
if (support.ok) {
  await latencies('container');
  await runcComparison(support.runc);
} else console.log(`container  skipped: ${support.reason}`);
await latencies('process');
await throughput();
await pki.cleanup();
