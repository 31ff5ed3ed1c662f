/**
 * A client process of bench:load --reads (bench/load-reads.ts): it holds its share of the clients, each
 * with its own certificate and HTTP/2 connection to the SA, checks each client's answers once (decoded),
 * then on every `run` message drives one workload for the given time and sends back the latencies.
 * Several of these run at once so that the clients' own gRPC work is not one event loop's bottleneck.
 */
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { Metadata, status as Status, type Client } from '@grpc/grpc-js';
import type { TestIdentity } from '../certs/test-pki.js';
import { quietIrrelevantWarnings } from '../cli/warnings.js';
import { pool, sleep } from '../services/core/timing.js';
import { SliceAuthorityService } from '../services/generated/fedlab/v1/slice_authority.js';
import { loadClient, SA_URN } from '../test/helpers/load-federation.js';

/** The workloads: the baseline and the two reads. */
export type ReadWorkload = 'health' | 'ListSlices' | 'GetSlice';

/** What the main process sends. */
export type ToReadWorker =
  | {
      readonly type: 'setup';
      readonly address: string;
      readonly caPem: string;
      readonly clients: readonly { readonly certPem: string; readonly keyPem: string; readonly sliceUrn: string }[];
    }
  | { readonly type: 'run'; readonly workload: ReadWorkload; readonly ms: number; readonly perClientRate: number }
  | { readonly type: 'stop' };

/** What a worker answers. */
export type FromReadWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly lat: number[]; readonly failed?: string }
  | { readonly type: 'error'; readonly message: string };

const HEALTH_CHECK = '/grpc.health.v1.Health/Check';

type ReadClient = ReturnType<typeof loadClient<typeof SliceAuthorityService>>;

/**
 * Every client calls closed-loop (`perClientRate` 0) or, open-loop, about `perClientRate` times a
 * second from a random phase, for `ms`; the answers are not decoded (checked once before).
 */
async function drive(clients: readonly { c: ReadClient; sliceUrn: string }[], w: ReadWorkload, ms: number, perClientRate: number) {
  const lat: number[] = [];
  const end = performance.now() + ms;
  let failed: string | undefined;
  const listBody = SliceAuthorityService.listSlices.requestSerialize({ pageSize: 20, pageToken: '', state: 0 });
  const bodies = clients.map(({ sliceUrn }) =>
    w === 'health'
      ? Buffer.alloc(0)
      : w === 'ListSlices'
        ? listBody
        : Buffer.from(SliceAuthorityService.getSlice.requestSerialize({ sliceUrn })),
  );
  const path =
    w === 'health' ? HEALTH_CHECK : w === 'ListSlices' ? SliceAuthorityService.listSlices.path : SliceAuthorityService.getSlice.path;
  const one = (raw: Client, body: Buffer): Promise<void> =>
    new Promise((resolve) => {
      const t = performance.now();
      raw.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        body,
        new Metadata(),
        { deadline: Date.now() + 30_000 },
        (err) => {
          if (err) failed ??= `${Status[(err as { code?: number }).code ?? Status.UNKNOWN]} ${err.message}`;
          else lat.push(performance.now() - t);
          resolve();
        },
      );
    });
  const gap = perClientRate > 0 ? 1000 / perClientRate : 0;
  const lane = async (i: number): Promise<void> => {
    const { c } = clients[i] as { c: ReadClient };
    let next = performance.now() + Math.random() * gap;
    while (!failed) {
      if (gap) {
        if (next > end) return;
        await sleep(Math.max(0, next - performance.now()));
        next += gap;
      } else if (performance.now() >= end) return;
      await one(c.raw, bodies[i] as Buffer);
    }
  };
  await Promise.all(clients.map((_, i) => lane(i)));
  return { lat, failed };
}

async function worker(): Promise<void> {
  quietIrrelevantWarnings();
  let clients: { c: ReadClient; sliceUrn: string }[] = [];
  const send = (m: FromReadWorker): void => void process.send?.(m);
  process.on('message', (m: ToReadWorker) => {
    const handle = async (): Promise<void> => {
      if (m.type === 'setup') {
        clients = m.clients.map((x) => ({
          c: loadClient(SliceAuthorityService, m.address, SA_URN, m.caPem, { certPem: x.certPem, keyPem: x.keyPem } as TestIdentity),
          sliceUrn: x.sliceUrn,
        }));
        // Every connection opened, and each client's answers checked once, decoded.
        await pool(clients, 25, async ({ c, sliceUrn }) => {
          const list = await c.listSlices({ pageSize: 20, pageToken: '', state: 0 });
          if (list.slices.length !== 1 || list.slices[0]?.urn !== sliceUrn)
            throw new Error(`a client listed ${list.slices.map((x) => x.urn).join(', ') || 'nothing'}, expected ${sliceUrn}`);
          const got = await c.getSlice({ sliceUrn });
          if (got.slice?.urn !== sliceUrn || got.slice.slivers.length !== 1) throw new Error(`GetSlice answered ${got.slice?.urn}`);
        });
        send({ type: 'ready' });
      } else if (m.type === 'run') {
        send({ type: 'done', ...(await drive(clients, m.workload, m.ms, m.perClientRate)) });
      } else {
        for (const { c } of clients) c.close();
        process.exit(0);
      }
    };
    handle().catch((err: unknown) => send({ type: 'error', message: String((err as Error).stack ?? err) }));
  });
}

if (process.argv.includes('--reads-worker')) void worker();
