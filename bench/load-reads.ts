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
 * seconds, in `--rounds` rounds with the order rotating, so all of them see the same machine. Answers
 * are not decoded here (the client process would otherwise be the bottleneck): each workload's answer
 * is checked once, decoded, before the rounds, and every timed call must end OK.
 */
import { performance } from 'node:perf_hooks';
import { Metadata, status as Status } from '@grpc/grpc-js';
import { pool } from '../services/core/timing.js';
import { SliceAuthorityService } from '../services/generated/fedlab/v1/slice_authority.js';
import { DOMAIN, loadClient, SA_URN, type LoadFederation } from '../test/helpers/load-federation.js';
import { cpuSeconds, loadAverage, median, quantile } from './support.js';

const HEALTH_CHECK = '/grpc.health.v1.Health/Check';

/** Options of the read phase. */
export interface ReadPhaseOptions {
  /** Seconds each workload runs per round. */
  readonly roundS: number;
  readonly rounds: number;
  /** Providers that own one slice each (the first `slices` clients create them). */
  readonly slices: number;
}

type Workload = 'health' | 'ListSlices' | 'GetSlice';
const WORKLOADS: readonly Workload[] = ['health', 'ListSlices', 'GetSlice'];

interface Target {
  readonly path: string;
  readonly body: (client: number) => Buffer;
}

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

/** Every client calls `target` closed-loop for `ms`; returns the latencies (ms) of the calls that ended within it. */
async function drive(clients: readonly { raw: import('@grpc/grpc-js').Client }[], target: Target, ms: number): Promise<number[]> {
  const lat: number[] = [];
  const end = performance.now() + ms;
  let failed: Error | undefined;
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const t = performance.now();
      (clients[i] as { raw: import('@grpc/grpc-js').Client }).raw.makeUnaryRequest(
        target.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        target.body(i),
        new Metadata(),
        { deadline: Date.now() + 30_000 },
        (err) => {
          if (err) failed ??= err;
          else lat.push(performance.now() - t);
          resolve();
        },
      );
    });
  const lane = async (i: number): Promise<void> => {
    while (performance.now() < end && !failed) await one(i);
  };
  await Promise.all(clients.map((_, i) => lane(i)));
  if (failed) throw new Error(`a ${target.path} call failed: ${Status[(failed as { code?: number }).code ?? 2]} ${failed.message}`);
  return lat;
}

/** Runs the read phase and prints its figures. */
export async function readPhase(s: LoadFederation, o: ReadPhaseOptions): Promise<void> {
  const t0 = performance.now();
  const sliceOf = await createSlices(s, o.slices);
  console.log(`  ${o.slices} READY slices (one node each) created in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const clients = s.providers.map((p) => loadClient(SliceAuthorityService, s.sa.address, SA_URN, s.caPem, p));
  const urnOf = (i: number): string => sliceOf[i % o.slices] as string;
  const listBody = SliceAuthorityService.listSlices.requestSerialize({ pageSize: 20, pageToken: '', state: 0 });
  const getBodies = sliceOf.map((sliceUrn) => SliceAuthorityService.getSlice.requestSerialize({ sliceUrn }));
  const targets: Record<Workload, Target> = {
    health: { path: HEALTH_CHECK, body: () => Buffer.alloc(0) },
    ListSlices: { path: SliceAuthorityService.listSlices.path, body: () => listBody },
    GetSlice: { path: SliceAuthorityService.getSlice.path, body: (i) => getBodies[i % o.slices] as Buffer },
  };
  try {
    // Every connection opened, and each answer checked once, decoded, before anything is timed.
    await pool(
      clients.map((c, i) => ({ c, i })),
      50,
      async ({ c, i }) => {
        const list = await c.listSlices({ pageSize: 20, pageToken: '', state: 0 });
        if (list.slices.length !== 1 || list.slices[0]?.urn !== urnOf(i))
          throw new Error(`client ${i} listed ${list.slices.map((x) => x.urn).join(', ') || 'nothing'}, expected ${urnOf(i)}`);
        const got = await c.getSlice({ sliceUrn: urnOf(i) });
        if (got.slice?.urn !== urnOf(i) || got.slice.slivers.length !== 1) throw new Error(`client ${i}: GetSlice answered ${got.slice?.urn}`);
      },
    );
    const pid = s.sa.child.pid as number;
    const results = Object.fromEntries(WORKLOADS.map((w) => [w, { rate: [] as number[], cpuUs: [] as number[], lat: [] as number[] }])) as Record<
      Workload,
      { rate: number[]; cpuUs: number[]; lat: number[] }
    >;
    await drive(clients, targets.health, 1000);
    console.log(
      `  ${clients.length} clients (each its own certificate and connection, ${o.slices} provider accounts), closed loop, ${o.rounds} rounds of ${o.roundS} s; load ${loadAverage()}`,
    );
    for (let r = 0; r < o.rounds; r++) {
      for (const w of WORKLOADS.map((_, i) => WORKLOADS[(i + r) % WORKLOADS.length] as Workload)) {
        const c0 = cpuSeconds(pid);
        const started = performance.now();
        const lat = await drive(clients, targets[w], o.roundS * 1000);
        const took = (performance.now() - started) / 1000;
        results[w].rate.push(lat.length / took);
        results[w].cpuUs.push(((cpuSeconds(pid) - c0) / lat.length) * 1e6);
        results[w].lat.push(...lat);
      }
    }
    for (const w of WORKLOADS) {
      const f = results[w];
      const sorted = f.lat.sort((a, b) => a - b);
      const ratio = median(f.rate.map((x, i) => x / (results.health.rate[i] as number)));
      const p99 = quantile(sorted, 0.99);
      const tail = w === 'health' ? '' : `; ${ratio.toFixed(2)}x health; target p99 < 100 ms: ${p99 < 100 ? 'met' : 'NOT met'}`;
      console.log(
        `  ${w.padEnd(10)} ${median(f.rate).toFixed(0).padStart(6)} calls/s, p50 ${quantile(sorted, 0.5).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ` +
          `SA CPU ${median(f.cpuUs).toFixed(0)} µs per call${tail}`,
      );
    }
    console.log(`  load ${loadAverage()}`);
  } finally {
    for (const c of clients) c.close();
  }
}
