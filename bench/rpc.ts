/**
 * `npm run bench:rpc`: what an authenticated call costs over a plain one.
 *
 * A child process serves, over the same mutual TLS (one test CA, the same
 * server options, channelz off):
 *
 * - `bare`: a plain grpc-js server answering `/fedlab.v1.NodeManager/GetNodeInfo`
 *   with a fixed response and nothing else — no handler framework, no identity,
 *   no credential — the baseline;
 * - `health`: `grpc.health.v1.Health/Check` on the Fedlab server (TLS only);
 * - `auth-1` and `auth-4`: GetNodeInfo on the Fedlab server (`startServer`,
 *   the one adapter, metrics on, a logger at info writing to /dev/null),
 *   whose handler calls `authorize(ctx, 'node.read', node)` with a 1-link
 *   (MA → caller) or a 4-link (MA → SA → SP → member → caller) chain against a
 *   revocation set that holds a list for the MA, then answers the same fixed
 *   response. The chains are cached after the first call, as a server's are;
 *   every call still runs the clock, trust-anchor, revocation, holder and
 *   grant checks.
 *
 * The main process drives each workload with `--inflight` calls in flight on
 * one channel, in alternating rounds of `--round-s` seconds, and prints per
 * workload the throughput (median round), p50 and p99 latency, the server's
 * CPU per call (from /proc), and the ratios to `bare` taken within each round
 * (median), so both sides saw the same machine. No assertions.
 *
 * Flags: --inflight N (64) --round-s S (2) --rounds R (3) --only auth-4,... (bare always runs).
 * FEDLAB_BENCH_PROFILE_DIR=dir writes the server's CPU profile there.
 */
import { fork } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { credentials, Metadata, Server, ServerCredentials, type ChannelCredentials, Client } from '@grpc/grpc-js';
import { createTestPki } from '../certs/index.js';
import { quietIrrelevantWarnings } from '../cli/warnings.js';
import {
  authorize,
  delegate,
  emptyRevocationList,
  issueRoot,
  newJti,
  RevocationSet,
  thumbprintOf,
  toPublicJwk,
  TrustStore,
  withRevocation,
} from '../services/core/credentials/index.js';
import { createLogger, logDestination } from '../services/core/log.js';
import { ServiceMetrics } from '../services/core/metrics/service-metrics.js';
import { defineService, type ServiceHandlers } from '../services/core/rpc/adapter.js';
import type { CallContext } from '../services/core/rpc/context.js';
import { installHpackTables } from '../services/core/rpc/hpack-table.js';
import { startServer } from '../services/core/rpc/server.js';
import { grpcServerOptions, resolveServerLimits } from '../services/core/rpc/server-limits.js';
import { GetNodeInfoResponse, NodeManagerService } from '../services/generated/fedlab/v1/node_manager.js';
import { cpuSeconds, flagNumber, loadAverage, median, quantile, runBenchmark } from './support.js';

quietIrrelevantWarnings();

const SELF = fileURLToPath(import.meta.url);
const DOMAIN = 'plc.test';
const NODE = `urn:fedlab:${DOMAIN}:node:n1`;
const GET_NODE_INFO = NodeManagerService.getNodeInfo.path;
const HEALTH_CHECK = '/grpc.health.v1.Health/Check';

/** The fixed answer every GetNodeInfo gets (a node with a name, an owner and a few resources). */
const RESPONSE: GetNodeInfoResponse = GetNodeInfoResponse.fromPartial({
  node: {
    urn: NODE,
    ownerUrn: `urn:fedlab:${DOMAIN}:authority:ma`,
    capacity: { cpuMillis: 4000, memMb: 8192, diskMb: 20480, pids: 4096, bandwidthKbps: 0 },
  },
});

/** What the main process hands the server child. */
interface ServerSetup {
  readonly type: 'setup';
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly maUrn: string;
  readonly maJwk: Record<string, unknown>;
  readonly revokedJti: string;
}

type Workload = 'bare' | 'health' | 'auth-1' | 'auth-4';
const ALL_WORKLOADS: readonly Workload[] = ['bare', 'health', 'auth-1', 'auth-4'];
// --only a,b: run just these (bare always, for the ratios), e.g. to profile one workload.
const only = process.argv.includes('--only') ? String(process.argv[process.argv.indexOf('--only') + 1]).split(',') : undefined;
const WORKLOADS = ALL_WORKLOADS.filter((w) => !only || w === 'bare' || only.includes(w));

/** The server child: the bare server and the Fedlab server, their ports sent back over IPC. */
async function serve(): Promise<void> {
  const setup = await new Promise<ServerSetup>((resolve) => process.once('message', (m) => resolve(m as ServerSetup)));
  const limits = resolveServerLimits();
  const tlsCreds = (): ServerCredentials =>
    ServerCredentials.createSsl(
      Buffer.from(setup.caPem),
      [{ private_key: Buffer.from(setup.keyPem), cert_chain: Buffer.from(setup.certPem) }],
      true,
    );

  const bare = new Server({ ...grpcServerOptions(limits), 'grpc.enable_channelz': 0 });
  bare.addService(NodeManagerService, {
    getNodeInfo: (_call: unknown, callback: (err: null, res: GetNodeInfoResponse) => void) => callback(null, RESPONSE),
  } as never);
  const barePort = await new Promise<number>((resolve, reject) =>
    bare.bindAsync('127.0.0.1:0', tlsCreds(), (err, port) => (err ? reject(err) : resolve(port))),
  );

  const trust = new TrustStore();
  trust.addBundle({
    v: 1,
    domain: DOMAIN,
    serial: 1,
    issued_at: new Date().toISOString(),
    ca_certs: [],
    authorities: [{ urn: setup.maUrn, jwk: setup.maJwk as never, kid: thumbprintOf(toPublicJwk(setup.maJwk)) }],
    revocation_version: 0,
  });
  // A list from the MA with one entry: every call looks its links up in it.
  const revocations = new RevocationSet();
  revocations.put(
    withRevocation(emptyRevocationList(toPublicJwk(setup.maJwk), setup.maUrn), {
      jti: setup.revokedJti,
      reason: 'bench',
      time: Math.floor(Date.now() / 1000),
    }),
  );
  // At info, as servers run, into the destination servers use (bound to /dev/null instead of stdout).
  const log = createLogger({ name: 'bench-rpc', level: 'info', destination: logDestination('/dev/null') });
  const metrics = new ServiceMetrics('nm');
  const handlers: Record<string, () => Promise<never>> = Object.fromEntries(
    Object.keys(NodeManagerService).map((k) => [
      k,
      async () => {
        throw new Error(`${k} is not served by bench:rpc`);
      },
    ]),
  );
  const fedlab = await startServer({ port: 0, tls: { caCerts: setup.caPem, cert: setup.certPem, key: setup.keyPem }, log, metrics }, [
    defineService(NodeManagerService, {
      ...handlers,
      getNodeInfo: async (_req: unknown, ctx: CallContext) => {
        authorize(ctx, 'node.read', NODE, { trust, revocations });
        return RESPONSE;
      },
    } as unknown as ServiceHandlers<typeof NodeManagerService>),
  ]);
  process.send?.({ type: 'ready', barePort, fedlabPort: fedlab.port });
  process.once('message', () => {
    bare.forceShutdown();
    void fedlab.stop().then(() => process.exit(0));
  });
}

/** A channel to `port` with the caller's certificate (the server's name is not checked: one test CA signed both). */
function channel(port: number, creds: ChannelCredentials): Client {
  return new Client(`127.0.0.1:${port}`, creds, { 'grpc.enable_channelz': 0 });
}

/** `inflight` calls kept in flight for `ms`; returns the calls done and their latencies (ms). */
async function drive(
  client: Client,
  path: string,
  metadata: Metadata,
  inflight: number,
  ms: number,
): Promise<{ n: number; lat: number[] }> {
  const lat: number[] = [];
  const end = performance.now() + ms;
  let failed: Error | undefined;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t = performance.now();
      client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        metadata.clone(),
        { deadline: Date.now() + 10_000 },
        (err) => {
          if (err) failed ??= err;
          else lat.push(performance.now() - t);
          resolve();
        },
      );
    });
  const lane = async (): Promise<void> => {
    while (performance.now() < end && !failed) await one();
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  if (failed) throw new Error(`a ${path} call failed: ${failed.message}`);
  return { n: lat.length, lat };
}

async function main(): Promise<void> {
  const inflight = flagNumber('inflight', 64);
  const roundS = flagNumber('round-s', 2);
  const rounds = Math.max(1, flagNumber('rounds', 3));
  const pki = await createTestPki({ domain: DOMAIN });
  try {
    const server = await pki.issueServer(`urn:fedlab:${DOMAIN}:node:n1`);
    const caller = await pki.issue(`urn:fedlab:${DOMAIN}:user:bob`);
    const ma = await pki.issue(`urn:fedlab:${DOMAIN}:authority:ma`);
    const sa = await pki.issue(`urn:fedlab:${DOMAIN}:authority:sa`);
    const sp = await pki.issue(`urn:fedlab:${DOMAIN}:sp:acme`);
    const member = await pki.issue(`urn:fedlab:${DOMAIN}:user:alice`);
    const pub = (k: KeyObject) => createPublicKey(k);
    const privileges = ['node.read'] as const;
    const root = async (subject: string, subjectKey: KeyObject) =>
      (
        await issueRoot({
          key: ma.privateKey,
          issuer: ma.urn,
          subject,
          subjectKey,
          targets: [`urn:fedlab:${DOMAIN}:node:*`],
          privileges: [...privileges],
          dlg: 3,
        })
      ).chain;
    const chain1 = await root(caller.urn, pub(caller.privateKey));
    let chain4 = await root(sa.urn, pub(sa.privateKey));
    chain4 = (await delegate(chain4, { key: sa.privateKey, subject: sp.urn, subjectKey: pub(sp.privateKey) })).chain;
    chain4 = (await delegate(chain4, { key: sp.privateKey, subject: member.urn, subjectKey: pub(member.privateKey) })).chain;
    chain4 = (await delegate(chain4, { key: member.privateKey, subject: caller.urn, subjectKey: pub(caller.privateKey), targets: [NODE] }))
      .chain;

    const profile = process.env.FEDLAB_BENCH_PROFILE_DIR;
    const child = fork(SELF, ['--worker'], {
      execArgv: ['--import', 'tsx', ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = new Promise<{ barePort: number; fedlabPort: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { barePort: number; fedlabPort: number }));
      child.once('exit', (code) => reject(new Error(`the server child exited (${code})`)));
    });
    child.send({
      type: 'setup',
      caPem: pki.caPem,
      certPem: server.certPem,
      keyPem: server.keyPem,
      maUrn: ma.urn,
      maJwk: toPublicJwk(ma.privateKey) as unknown as Record<string, unknown>,
      revokedJti: newJti(),
    } satisfies ServerSetup);
    const { barePort, fedlabPort } = await ready;

    // The client's sessions as a Fedlab client's (createClient installs the same): HPACK tables that hold a chain.
    installHpackTables();
    const creds = credentials.createSsl(Buffer.from(pki.caPem), Buffer.from(caller.keyPem), Buffer.from(caller.certPem), {
      checkServerIdentity: () => undefined,
    });
    const withChain = (chain: readonly string[]): Metadata => {
      const md = new Metadata();
      for (const link of chain) md.add('fedlab-credential', link);
      return md;
    };
    const targets: Record<Workload, { client: Client; path: string; metadata: Metadata }> = {
      bare: { client: channel(barePort, creds), path: GET_NODE_INFO, metadata: new Metadata() },
      health: { client: channel(fedlabPort, creds), path: HEALTH_CHECK, metadata: new Metadata() },
      'auth-1': { client: channel(fedlabPort, creds), path: GET_NODE_INFO, metadata: withChain(chain1) },
      'auth-4': { client: channel(fedlabPort, creds), path: GET_NODE_INFO, metadata: withChain(chain4) },
    };
    const fresh = (): { rate: number[]; cpuUs: number[]; clientUs: number[]; lat: number[] } => ({
      rate: [],
      cpuUs: [],
      clientUs: [],
      lat: [],
    });
    const results: Record<Workload, ReturnType<typeof fresh>> = { bare: fresh(), health: fresh(), 'auth-1': fresh(), 'auth-4': fresh() };
    // Warm-up: connections, JIT, the chain cache.
    for (const w of WORKLOADS) await drive(targets[w].client, targets[w].path, targets[w].metadata, inflight, 500);
    console.log(
      `bench:rpc — node ${process.version}, ${inflight} calls in flight on one channel per workload, ${rounds} rounds of ${roundS} s, order rotating; load average ${loadAverage()}`,
    );
    for (let r = 0; r < rounds; r++) {
      const order = WORKLOADS.map((_, i) => WORKLOADS[(i + r) % WORKLOADS.length] as Workload);
      for (const w of order) {
        const c0 = cpuSeconds(child.pid as number);
        const own0 = process.cpuUsage();
        const t0 = performance.now();
        const { n, lat } = await drive(targets[w].client, targets[w].path, targets[w].metadata, inflight, roundS * 1000);
        const s = (performance.now() - t0) / 1000;
        const cpu = cpuSeconds(child.pid as number) - c0;
        const own = process.cpuUsage(own0);
        results[w].rate.push(n / s);
        results[w].cpuUs.push((cpu / n) * 1e6);
        results[w].clientUs.push((own.user + own.system) / n);
        for (const x of lat) results[w].lat.push(x);
      }
    }
    const ratio = (w: Workload): number => median(results[w].rate.map((x, i) => x / (results.bare.rate[i] as number)));
    for (const w of WORKLOADS) {
      const f = results[w];
      const sorted = f.lat.sort((a, b) => a - b);
      const rel = w === 'bare' ? '' : `; ${ratio(w).toFixed(2)}x bare`;
      const target = w.startsWith('auth') ? ` (target >= 0.80: ${ratio(w) >= 0.8 ? 'met' : 'NOT met'})` : '';
      console.log(
        `  ${w.padEnd(7)} ${median(f.rate).toFixed(0).padStart(6)} calls/s, p50 ${quantile(sorted, 0.5).toFixed(2)} ms, p99 ${quantile(sorted, 0.99).toFixed(2)} ms, ` +
          `server CPU ${median(f.cpuUs).toFixed(0)} µs, client CPU ${median(f.clientUs).toFixed(0)} µs per call${rel}${target}`,
      );
    }
    for (const t of Object.values(targets)) t.client.close();
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.send({ type: 'stop' });
    });
  } finally {
    await rm(pki.dir, { recursive: true, force: true });
  }
}

runBenchmark(main, serve);
