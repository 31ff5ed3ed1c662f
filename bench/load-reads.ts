/**
 * The read phase of bench:load (`--reads`, issue 19 target 5): many concurrent authenticated clients
 * calling ListSlices and GetSlice against a real slice authority process holding `--slices` slices.
 *
 * Every client has its own key, certificate and HTTP/2 connection (test/helpers/load-federation.ts);
 * with fewer slices than clients, clients share provider accounts (client `i` is provider `i % slices`,
 * each provider owning one READY slice at the MA's simulated nodes), so every ListSlices returns the
 * caller's slice and every GetSlice asks for a slice the caller owns. The baseline, in the same run, over
 * the same connections: `grpc.health.v1.Health/Check` on the same SA (mutual TLS, no SA work). Each
 * workload runs closed-loop (every client calls again as soon as its answer arrives) for `--round-s`
 * seconds, in `--rounds` rounds with the order rotating, so all of them see the same machine; with
 * `--rate R`, open loop instead: each client calls about R/clients times a second from a random phase.
 * The clients are spread over `--workers` client processes (bench/load-reads-worker.ts), so that one
 * client event loop is not what is measured; answers are not decoded while timed (each client's
 * answers are checked once, decoded, before the rounds), and every timed call must end OK.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pool } from '../services/core/timing.js';
import { SliceAuthorityService } from '../services/generated/fedlab/v1/slice_authority.js';
import { DOMAIN, loadClient, SA_URN, type LoadFederation } from '../test/helpers/load-federation.js';
import type { FromReadWorker, ReadWorkload, ToReadWorker } from './load-reads-worker.js';
import { cpuSeconds, loadAverage, median, quantile } from './support.js';

/** Options of the read phase. */
export interface ReadPhaseOptions {
  /** Seconds each workload runs per round. */
  readonly roundS: number;
  readonly rounds: number;
  /** Providers that own one slice each (the first `slices` clients create them). */
  readonly slices: number;
  /** Client processes. */
  readonly workers: number;
  /** Calls a second offered by all clients together (open loop); 0 for closed loop. */
  readonly rate: number;
  /**
   * Seconds at the start of each round run untimed and printed apart: while the other workloads ran, no
   * slice was read, so GetSlice's records are past their freshness when its round begins, and its
   * first readers wait for the sites (the cold start of a slice nobody read for 2 s, not the load).
   */
  readonly settleS: number;
}

const WORKLOADS: readonly ReadWorkload[] = ['health', 'ListSlices', 'GetSlice'];

/** Creates one READY slice for each of the first `n` clients (one per provider account); returns their URNs by provider. */
async function createSlices(s: LoadFederation, n: number): Promise<string[]> {
  const urns: string[] = new Array<string>(n);
  await pool(
    Array.from({ length: n }, (_, i) => i),
    8,
    async (i) => {
      const sa = loadClient(SliceAuthorityService, s.sa.address, SA_URN, s.caPem, s.providers[i] as (typeof s.providers)[number]);
      const name = `read-${i}`;
      const { slice } = await sa.createSlice({
        users: [],
        requestId: name,
        name,
        description: 'bench:load --reads',
        mode: 0,
        sites: [
          {
            site: DOMAIN,
            request: {
              nodes: { nodeUrns: [], count: 1, clientIds: [] },
              resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
              links: [],
              exclusive: false,
              requestDocument: '',
              requestDocumentFormat: '',
            },
          },
        ],
        start: true,
        wait: true,
      });
      sa.close();
      if (!slice) throw new Error(`CreateSlice ${name} gave no slice`);
      urns[i] = slice.urn;
    },
  );
  return urns;
}

/** A client process and a way to ask it something and wait for its answer. */
interface Worker {
  readonly child: ChildProcess;
  ask(m: ToReadWorker): Promise<FromReadWorker>;
}

function startWorker(): Worker {
  const child = fork(join(import.meta.dirname, 'load-reads-worker.ts'), ['--reads-worker'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return {
    child,
    ask: (m) =>
      new Promise((resolve, reject) => {
        const onExit = (code: number | null): void => reject(new Error(`a client process exited with ${code}`));
        child.once('exit', onExit);
        child.once('message', (a: FromReadWorker) => {
          child.off('exit', onExit);
          if (a.type === 'error') reject(new Error(a.message));
          else resolve(a);
        });
        child.send(m);
      }),
  };
}

/** Runs the read phase and prints its figures. */
export async function readPhase(s: LoadFederation, o: ReadPhaseOptions): Promise<void> {
  const t0 = performance.now();
  const sliceOf = await createSlices(s, o.slices);
  console.log(`  ${o.slices} READY slices (one node each) created in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const workers = Array.from({ length: o.workers }, startWorker);
  try {
    const n = s.providers.length;
    await Promise.all(
      workers.map((w, k) =>
        w.ask({
          type: 'setup',
          address: s.sa.address,
          caPem: s.caPem,
          clients: s.providers
            .map((p, i) => ({ certPem: p.certPem, keyPem: p.keyPem, sliceUrn: sliceOf[i % o.slices] as string, i }))
            .filter(({ i }) => i % o.workers === k)
            .map(({ certPem, keyPem, sliceUrn }) => ({ certPem, keyPem, sliceUrn })),
        }),
      ),
    );
    const perClientRate = o.rate > 0 ? o.rate / n : 0;
    const run = async (workload: ReadWorkload, ms: number): Promise<number[]> => {
      const answers = await Promise.all(workers.map((w) => w.ask({ type: 'run', workload, ms, perClientRate })));
      const lat: number[] = [];
      for (const a of answers) {
        if (a.type !== 'done') continue;
        if (a.failed) throw new Error(`a ${workload} call failed: ${a.failed}`);
        for (const x of a.lat) lat.push(x);
      }
      return lat;
    };
    const pid = s.sa.child.pid as number;
    const results = Object.fromEntries(
      WORKLOADS.map((w) => [w, { rate: [] as number[], cpuUs: [] as number[], lat: [] as number[], cold: [] as number[] }]),
    ) as Record<ReadWorkload, { rate: number[]; cpuUs: number[]; lat: number[]; cold: number[] }>;
    for (const w of WORKLOADS) await run(w, 1000);
    const mode = o.rate > 0 ? `open loop at ${o.rate} calls/s offered` : 'closed loop';
    console.log(
      `  ${n} clients (each its own certificate and connection, ${o.slices} provider accounts) in ${o.workers} client processes, ${mode}, ` +
        `${o.rounds} rounds of ${o.roundS} s, each after ${o.settleS} s untimed; load ${loadAverage()}`,
    );
    for (let r = 0; r < o.rounds; r++) {
      for (const w of WORKLOADS.map((_, i) => WORKLOADS[(i + r) % WORKLOADS.length] as ReadWorkload)) {
        if (o.settleS > 0) for (const x of await run(w, o.settleS * 1000)) results[w].cold.push(x);
        const c0 = cpuSeconds(pid);
        const started = performance.now();
        const lat = await run(w, o.roundS * 1000);
        const took = (performance.now() - started) / 1000;
        results[w].rate.push(lat.length / took);
        results[w].cpuUs.push(((cpuSeconds(pid) - c0) / lat.length) * 1e6);
        for (const x of lat) results[w].lat.push(x);
      }
    }
    for (const w of WORKLOADS) {
      const f = results[w];
      const sorted = f.lat.sort((a, b) => a - b);
      const ratio = median(f.rate.map((x, i) => x / (results.health.rate[i] as number)));
      const p99 = quantile(sorted, 0.99);
      const tail = w === 'health' ? '' : `; ${ratio.toFixed(2)}x health; target p99 < 100 ms: ${p99 < 100 ? 'met' : 'NOT met'}`;
      const cold = f.cold.sort((a, b) => a - b);
      console.log(
        `  ${w.padEnd(10)} ${median(f.rate).toFixed(0).padStart(6)} calls/s, p50 ${quantile(sorted, 0.5).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ` +
          `SA CPU ${median(f.cpuUs).toFixed(0)} µs per call${tail}` +
          (cold.length
            ? `; first ${o.settleS} s of its rounds (untimed): p50 ${quantile(cold, 0.5).toFixed(1)} ms, p99 ${quantile(cold, 0.99).toFixed(1)} ms`
            : ''),
      );
    }
    console.log(`  load ${loadAverage()}`);
  } finally {
    for (const w of workers) if (w.child.connected) w.child.send({ type: 'stop' } satisfies ToReadWorker);
  }
}
