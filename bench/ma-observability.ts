/**
 * bench:ma's cost of metrics and the audit log: the same MA (same store,
 * same enrolled nodes) hosted with both off and with both on — per-call
 * counters and latency histograms, the role's gauges, a `/metrics` listener
 * scraped every 5 s as Prometheus would, and the audit log on every call —
 * in rounds of alternating order, measuring (1) the MA's CPU per heartbeat under a
 * steady heartbeat load and (2) the latency of an Allocate of every node.
 *
 * The config has no switch for the audit log (every hosted service keeps
 * one), so the MA here is hosted by {@link serveBenchMa}: hostService's
 * wiring (store, TLS, bundle, federation trust, the MA role, the server)
 * with the metrics and the audit log given or not, in a child process of
 * its own so its CPU is read from /proc.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { AuditLog } from '../services/core/audit/audit-log.js';
import { CallAudit } from '../services/core/audit/call-audit.js';
import { compileConfig, federationSettings, loadTls, serverLimitsFromConfig } from '../services/core/config.js';
import { FileBundleSource } from '../services/core/federation/bundle-source.js';
import { federationService } from '../services/core/federation/federation-service.js';
import { PeerTrust } from '../services/core/federation/peer-trust.js';
import { parseUrn } from '../services/core/identity/urn.js';
import { createLogger } from '../services/core/log.js';
import { startMetricsListener } from '../services/core/metrics/metrics-listener.js';
import { ServiceMetrics } from '../services/core/metrics/service-metrics.js';
import { createClient } from '../services/core/rpc/client.js';
import { startServer, type TlsMaterial } from '../services/core/rpc/server.js';
import { Store } from '../services/core/store/store.js';
import { AggregateService } from '../services/generated/fedlab/v1/aggregate.js';
import { ManagementAuthorityService } from '../services/generated/fedlab/v1/management_authority.js';
import { managementAuthorityRole, maConfigSchema, MA_PATH_FIELDS } from '../services/management-authority/index.js';
import { cpuSeconds, median, quantile } from './support.js';

/** The flag that makes bench/ma.ts a bench MA host: `--ma-host on|off --config FILE`. */
export const MA_HOST_FLAG = '--ma-host';

const ALL_PARTS = ['metrics', 'defaults', 'scrape', 'audit'];

/**
 * What "on" hosts: all of it unless FEDLAB_BENCH_OBS names some of `metrics` (counters, histograms, the
 * MA's gauges), `defaults` (prom-client's process metrics), `scrape` (the listener, scraped every 5 s),
 * `audit` — to split the cost between them.
 */
function onParts(): Set<string> {
  const named = process.env.FEDLAB_BENCH_OBS;
  return new Set(named ? named.split(',').map((p) => p.trim()) : ALL_PARTS);
}

/** CPU seconds of a process's main thread (its thread id is its pid), from /proc; NaN once it is gone. */
function mainThreadCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    // utime and stime, as in cpuSeconds (bench/support.ts).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * The child: hosts the MA of `--config` with metrics and the audit log on or off, says `ready` (with
 * the metrics port) over IPC, and stops on SIGTERM.
 */
export async function serveBenchMa(argv: readonly string[]): Promise<void> {
  const on = argv[argv.indexOf(MA_HOST_FLAG) + 1] === 'on';
  const file = argv[argv.indexOf('--config') + 1] as string;
  const config = compileConfig(maConfigSchema, { file, env: {} }, MA_PATH_FIELDS);
  const log = createLogger({ name: 'ma', level: config.log_level }).child({ urn: config.urn });
  const domain = parseUrn(config.urn).domain;
  const tls = loadTls(config);
  const bundle = await FileBundleSource.open(config.trust_bundle, domain, log);
  const fed = federationSettings(config);
  const federation = await PeerTrust.open({ domain, tls, bundle, peersDir: fed.peersDir, log, reloadIntervalMs: fed.reloadIntervalMs });
  const store = await Store.open(config.data_dir, { log });
  const parts = on ? onParts() : new Set<string>();
  const metrics = parts.has('metrics') ? new ServiceMetrics('ma', { processDefaults: parts.has('defaults') }) : undefined;
  const audit = parts.has('audit') ? new CallAudit(await AuditLog.open(store, { now: () => Date.now(), log, retentionMs: 0 })) : undefined;
  const role = await managementAuthorityRole()({
    config,
    store,
    tls,
    bundle,
    log,
    federation,
    trustStore: federation.trustStore,
    ...(metrics ? { metrics } : {}),
  });
  const scrape = metrics && parts.has('scrape') ? await startMetricsListener({ host: '127.0.0.1', port: 0, metrics, log }) : undefined;
  const server = await startServer(
    {
      host: config.listen.host,
      port: config.listen.port,
      tls,
      log,
      trust: federation,
      limits: serverLimitsFromConfig(config.server),
      ...(metrics ? { metrics } : {}),
      ...(audit ? { audit } : {}),
      onStop: [async () => scrape?.stop(), async () => federation.stop(), async () => role.onStop?.(), async () => store.close()],
    },
    [federationService(bundle), ...role.registrations],
  );
  federation.start();
  process.once('SIGTERM', () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  process.send?.({ type: 'ready', metricsPort: scrape?.port ?? 0 });
  await new Promise<never>(() => {});
}

/** A node's identity, as the sender workers take it. */
interface NodeIdentity {
  readonly urn: string;
  readonly cert: string;
  readonly key: string;
}

/** What the phase needs of the bench. */
export interface ObservabilityContext {
  /** bench/ma.ts itself (forked as MA host and as sender worker). */
  readonly benchFile: string;
  /** An MA config whose store has `nodes` enrolled, heartbeat interval `intervalMs`. */
  readonly configFile: string;
  readonly address: string;
  readonly maUrn: string;
  readonly caPem: string;
  readonly admin: TlsMaterial;
  /** The slice authority's identity (and its JWK-less certificate, for the delegation). */
  readonly sa: TlsMaterial & { readonly urn: string };
  readonly nodes: readonly NodeIdentity[];
  readonly intervalMs: number;
  readonly windowS: number;
  readonly rounds: number;
  readonly allocates: number;
  readonly workers: number;
}

/** One hosting's figures. */
interface RoundFigures {
  readonly perBeatUs: number;
  /** Of it, the main thread's (the rest: GC helpers, the libuv pool, LevelDB's compaction). */
  readonly mainUs: number;
  readonly rate: number;
  readonly failed: number;
  readonly allocateMs: number[];
}

function onMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      child.off('message', on);
      child.off('exit', gone);
      resolve(m as T);
    };
    const gone = (code: number | null) => reject(new Error(`a bench child exited (${code}) before it said ${type}`));
    child.on('message', on);
    child.once('exit', gone);
  });
}

async function stopChild(child: ChildProcess, how: () => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  how();
  await exited;
}

/** Runs the on/off rounds and prints the figures and their ratios. */
export async function observabilityCost(ctx: ObservabilityContext): Promise<void> {
  const M = ctx.nodes.length;
  console.log(
    `metrics + audit on vs off: ${M} nodes beating every ${ctx.intervalMs / 1000} s (${(M / (ctx.intervalMs / 1000)).toFixed(0)}/s), ` +
      `${ctx.windowS} s windows, ${ctx.allocates} Allocates of all ${M} nodes per hosting (after one not counted), ${ctx.rounds} round(s), off then on and on then off in turn` +
      (process.env.FEDLAB_BENCH_OBS ? `; "on" hosts only: ${[...onParts()].join(', ')}` : ''),
  );
  let chain: string[] | undefined;
  const figures: Record<'off' | 'on', RoundFigures[]> = { off: [], on: [] };
  for (let round = 0; round < ctx.rounds; round++) {
    // ABBA: the order alternates (off, on, then on, off), so what comes first in a round does not favour either.
    for (const mode of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      // FEDLAB_BENCH_PROFILE_DIR: each hosting writes its CPU profiles (one per thread) into ma-<mode>-<round> there.
      const profile = process.env.FEDLAB_BENCH_PROFILE_DIR;
      const ma = fork(ctx.benchFile, [MA_HOST_FLAG, mode, '--config', ctx.configFile], {
        execArgv: ['--import', 'tsx', ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}/ma-${mode}-${round}`] : [])],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      const senders: ChildProcess[] = [];
      try {
        const { metricsPort } = await onMessage<{ metricsPort: number }>(ma, 'ready');
        const admin = createClient(ManagementAuthorityService, {
          address: ctx.address,
          tls: ctx.admin,
          serverUrn: ctx.maUrn,
          deadlineMs: 30_000,
        });
        const agg = createClient(AggregateService, { address: ctx.address, tls: ctx.sa, serverUrn: ctx.maUrn, deadlineMs: 60_000 });
        try {
          chain ??= (
            await admin.delegateToSliceAuthority({
              requestId: 'bench-obs-sa',
              sliceAuthorityUrn: ctx.sa.urn,
              sliceAuthorityJwk: '',
              sliceAuthorityCertificatePem: ctx.sa.cert,
              privileges: [],
              targets: [],
              limits: {},
              ttlS: 0,
              maxDelegations: 1,
            })
          ).chain;
          const perW = Math.ceil(M / ctx.workers);
          for (let w = 0; w < ctx.workers; w++) {
            const part = ctx.nodes.slice(w * perW, (w + 1) * perW);
            if (part.length === 0) continue;
            const child = fork(ctx.benchFile, ['--worker'], {
              execArgv: ['--import', 'tsx'],
              stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
            });
            senders.push(child);
            const connected = onMessage(child, 'connected');
            child.send({
              type: 'setup',
              address: ctx.address,
              maUrn: ctx.maUrn,
              caPem: ctx.caPem,
              intervalMs: ctx.intervalMs,
              nodes: part,
              // One unary call per beat (the figure is what a unary Heartbeat costs with metrics and audit on), or
              // FEDLAB_BENCH_OBS_HEARTBEATS=stream: the same beats as messages on each node's HeartbeatStream.
              mode: process.env.FEDLAB_BENCH_OBS_HEARTBEATS === 'stream' ? 'stream' : 'unary',
            });
            await connected;
          }
          // One interval at the steady rate, then the window (Prometheus' scrapes included when on).
          await new Promise((r) => setTimeout(r, ctx.intervalMs));
          const stats = async () =>
            Promise.all(
              senders.map((s) => {
                const got = onMessage<{ ok: number; failed: number }>(s, 'stats');
                s.send({ type: 'stats' });
                return got;
              }),
            );
          await stats();
          const scrapes = metricsPort
            ? setInterval(
                () =>
                  void fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(
                    (r) => r.text(),
                    () => '',
                  ),
                5000,
              )
            : undefined;
          const c0 = cpuSeconds(ma.pid as number);
          const m0 = mainThreadCpuSeconds(ma.pid as number);
          const t0 = performance.now();
          await new Promise((r) => setTimeout(r, ctx.windowS * 1000));
          const cpu = cpuSeconds(ma.pid as number) - c0;
          const mainCpu = mainThreadCpuSeconds(ma.pid as number) - m0;
          const seconds = (performance.now() - t0) / 1000;
          clearInterval(scrapes);
          const s = await stats();
          const ok = s.reduce((a, b) => a + b.ok, 0);
          const failed = s.reduce((a, b) => a + b.failed, 0);
          // Allocates with the senders stopped (nodes stay UP for three intervals): the call alone.
          for (const w of senders.splice(0)) await stopChild(w, () => w.send({ type: 'stop' }));
          const allocateMs: number[] = [];
          // The first Allocate of a hosting warms it up (code paths, caches) and is not counted.
          for (let k = -1; k < ctx.allocates; k++) {
            const sliceUrn = `urn:fedlab:${parseUrn(ctx.maUrn).domain}:slice:obs-${mode}-${round}-${k}`;
            const t = performance.now();
            const res = await agg.allocate(
              {
                users: [],
                requestId: `obs-${mode}-${round}-${k}`,
                sliceUrn,
                providerUrn: `urn:fedlab:${parseUrn(ctx.maUrn).domain}:sp:bench`,
                request: {
                  nodes: { nodeUrns: [], count: M, clientIds: [] },
                  resources: { cpuMillis: 10, memMb: 8, diskMb: 8, pids: 8, bandwidthKbps: 0 },
                  links: [],
                  exclusive: false,
                  requestDocument: '',
                  requestDocumentFormat: '',
                },
              },
              { chain },
            );
            if (k >= 0) allocateMs.push(performance.now() - t);
            if (res.slivers.length !== M) console.log(`  (warning: an Allocate held ${res.slivers.length} slivers, expected ${M})`);
            await agg.delete({ urns: [sliceUrn], bestEffort: true }, { chain });
          }
          const f: RoundFigures = {
            perBeatUs: (cpu / Math.max(ok, 1)) * 1e6,
            mainUs: (mainCpu / Math.max(ok, 1)) * 1e6,
            rate: ok / seconds,
            failed,
            allocateMs,
          };
          figures[mode].push(f);
          const sorted = [...allocateMs].sort((a, b) => a - b);
          console.log(
            `  round ${round + 1}, ${mode}: ${f.rate.toFixed(0)} heartbeats/s answered (${failed} failed), MA CPU ${((cpu / seconds) * 100).toFixed(1)}% of one core, ` +
              `${f.perBeatUs.toFixed(0)} µs per heartbeat (main thread ${f.mainUs.toFixed(0)}, other threads ${(f.perBeatUs - f.mainUs).toFixed(0)}); Allocate of ${M} nodes p50 ${quantile(sorted, 0.5).toFixed(0)} ms (${sorted.map((x) => x.toFixed(0)).join(', ')})`,
          );
        } finally {
          admin.close();
          agg.close();
        }
      } finally {
        for (const w of senders) await stopChild(w, () => w.send({ type: 'stop' }));
        await stopChild(ma, () => ma.kill('SIGTERM'));
      }
    }
  }
  const beat = (m: 'off' | 'on') => median(figures[m].map((f) => f.perBeatUs));
  const alloc = (m: 'off' | 'on') => median(figures[m].flatMap((f) => f.allocateMs));
  const ratio = (on: number, off: number) =>
    `${(on / off).toFixed(2)}x (${(((on - off) / off) * 100).toFixed(1)}% ${on >= off ? 'slower' : 'faster'})`;
  // Each round hosts both modes back to back: its own ratio is the least disturbed by drift in the machine's load.
  const perRound = figures.on.map((f, i) => f.perBeatUs / (figures.off[i] as RoundFigures).perBeatUs);
  const perRoundMain = figures.on.map((f, i) => f.mainUs / (figures.off[i] as RoundFigures).mainUs);
  const pct = (r: number) => `${r >= 1 ? '+' : ''}${((r - 1) * 100).toFixed(0)}%`;
  console.log(
    `   per round, on / off: heartbeat ${perRound.map(pct).join(', ')}; main thread alone ${perRoundMain.map(pct).join(', ')}` +
      `; other threads ${median(figures.on.map((f) => f.perBeatUs - f.mainUs)).toFixed(0)} / ${median(figures.off.map((f) => f.perBeatUs - f.mainUs)).toFixed(0)} µs (medians)`,
  );
  console.log(
    `=> metrics + audit on / off: heartbeat ${beat('on').toFixed(0)} / ${beat('off').toFixed(0)} µs of MA CPU = ${ratio(beat('on'), beat('off'))}; ` +
      `Allocate of ${M} nodes p50 ${alloc('on').toFixed(0)} / ${alloc('off').toFixed(0)} ms = ${ratio(alloc('on'), alloc('off'))} (target: at most 10% slower)`,
  );
}
