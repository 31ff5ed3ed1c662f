/**
 * bench:load — does a management authority and a slice authority hold under load (issue 15 item 8)?
 *
 * The MA and the SA run as `fedlab serve` processes; simulated node managers and the clients run here.
 * Phase 1: `--clients` (500) providers, each its own certificate, SA account and connections, call the
 * SA and the MA for `--seconds` (60): reads (ListSlices, GetSlice, GetVersion, ListResources, GetNode,
 * ListRevocations) and creates (CreateSlice — deleting the oldest at the quota —, IssueSliceCredential,
 * RegisterServiceProvider). Printed: throughput, p50/p99 latency, answers by code (RESOURCE_EXHAUSTED is
 * the documented quota), the servers' memory before and after. Phase 2: `--idle` (1,000) HTTP/2-over-TLS
 * connections held open without a call, then a flood of `--half-open` (2,000) TCP connections on the
 * enrolment port that start a TLS handshake and never finish it; probes show whether the servers still
 * answer. Figures only; nothing is asserted.
 *
 * `--reads`: instead, the read phase of bench/load-reads.ts (issue 19 target 5): `--clients` (1000)
 * clients, `--slices` (100) provider accounts with one READY slice each, ListSlices and GetSlice against
 * the SA with Health/Check on the same SA as the baseline; `--round-s` (5), `--rounds` (2), `--workers`
 * (2) client processes, `--rate R` (open loop at R calls/s in all; 0, closed loop), `--settle-s S` (1: each
 * round's first S seconds, untimed, printed apart); `--profile DIR` writes the SA's CPU profile there.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as tcpConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { status as Status } from '@grpc/grpc-js';
import type { TestIdentity } from '../certs/test-pki.js';
import { quietIrrelevantWarnings } from '../cli/warnings.js';
import { pool, sleep } from '../services/core/timing.js';
import { AggregateService } from '../services/generated/fedlab/v1/aggregate.js';
import { ManagementAuthorityService } from '../services/generated/fedlab/v1/management_authority.js';
import { SliceAuthorityService } from '../services/generated/fedlab/v1/slice_authority.js';
import { enrollNode } from '../services/management-authority/enrolment-client.js';
import {
  fds,
  loadClient,
  MA_URN,
  rss,
  SA_URN,
  SLICE_QUOTA,
  DOMAIN,
  startLoadFederation,
  stopLoadFederation,
  type LoadFederation,
} from '../test/helpers/load-federation.js';
import { readPhase } from './load-reads.js';
import { flagNumber, flagText, loadAverage, quantile } from './support.js';

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Latencies (ms) and codes of one kind of call. */
class Tally {
  readonly ms: number[] = [];
  readonly codes: Record<string, number> = {};
  /** The first message of each code other than OK (printed, to tell a cap from a fault). */
  readonly first: Record<string, string> = {};
  async time<T>(call: () => Promise<T>): Promise<T | undefined> {
    const t = performance.now();
    let code = 'OK';
    try {
      return await call();
    } catch (err) {
      code = Status[(err as { code?: number }).code ?? Status.UNKNOWN] ?? 'UNKNOWN';
      this.first[code] ??= String((err as { details?: string }).details ?? err).slice(0, 160);
      return undefined;
    } finally {
      this.ms.push(performance.now() - t);
      this.codes[code] = (this.codes[code] ?? 0) + 1;
    }
  }
}

const figures = (t: Tally): string => {
  const s = [...t.ms].sort((a, b) => a - b);
  return `${String(s.length).padStart(7)} calls  p50 ${quantile(s, 0.5).toFixed(1).padStart(7)} ms  p99 ${quantile(s, 0.99).toFixed(1).padStart(8)} ms  ${JSON.stringify(t.codes)}`;
};

/** Phase 1: every client calls in a loop for `seconds`; returns a tally per call. */
async function load(s: LoadFederation, seconds: number): Promise<Map<string, Tally>> {
  const tallies = new Map<string, Tally>();
  const tally = (name: string): Tally => tallies.get(name) ?? (tallies.set(name, new Tally()).get(name) as Tally);
  const clients = s.providers.map((p) => ({
    p,
    sa: loadClient(SliceAuthorityService, s.sa.address, SA_URN, s.caPem, p),
    ma: loadClient(ManagementAuthorityService, s.ma.address, MA_URN, s.caPem, p),
    agg: loadClient(AggregateService, s.ma.address, MA_URN, s.caPem, p),
    slices: [] as string[],
  }));
  const site = {
    site: DOMAIN,
    request: {
      nodes: { nodeUrns: [], count: 1, clientIds: [] },
      resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
      links: [],
      exclusive: false,
      requestDocument: '',
      requestDocumentFormat: '',
    },
  };
  const end = performance.now() + seconds * 1000;
  const run = async (c: (typeof clients)[number]): Promise<void> => {
    while (performance.now() < end) {
      const r = Math.random();
      const own = c.slices[Math.floor(Math.random() * c.slices.length)];
      if (r < 0.25) await tally('SA ListSlices').time(() => c.sa.listSlices({ pageSize: 20, pageToken: '', state: 0 }));
      else if (r < 0.4 && own) await tally('SA GetSlice').time(() => c.sa.getSlice({ sliceUrn: own }));
      else if (r < 0.5) {
        if (c.slices.length >= SLICE_QUOTA) {
          const oldest = c.slices.shift() as string;
          await tally('SA DeleteSlice (create)').time(() => c.sa.deleteSlice({ sliceUrn: oldest }));
        } else {
          const name = `s-${randomUUID().slice(0, 12)}`;
          const res = await tally('SA CreateSlice (create)').time(() =>
            c.sa.createSlice({ users: [], requestId: name, name, description: '', mode: 0, sites: [site], start: false, wait: false }),
          );
          if (res?.slice) c.slices.push(res.slice.urn);
        }
      } else if (r < 0.55 && own)
        await tally('SA IssueSliceCredential (create)').time(() =>
          c.sa.issueSliceCredential({
            requestId: randomUUID(),
            sliceUrn: own,
            holderCertificatePem: c.p.certPem,
            privileges: [],
            targets: [],
            ttlS: 600,
            maxDelegations: 0,
          }),
        );
      else if (r < 0.65) await tally('MA Aggregate.GetVersion').time(() => c.agg.getVersion({}));
      else if (r < 0.75)
        await tally('MA Aggregate.ListResources').time(() =>
          c.agg.listResources({ pageSize: 10, pageToken: '', availableOnly: false, documentFormat: '' }),
        );
      else if (r < 0.85)
        await tally('MA GetNode').time(() =>
          c.ma.getNode({ nodeUrn: s.nodeUrns[Math.floor(Math.random() * s.nodeUrns.length)] as string }),
        );
      else if (r < 0.93)
        await tally('MA ListRevocations').time(() => c.ma.listRevocations({ pageSize: 20, pageToken: '', sinceVersion: 0 }));
      else
        await tally('MA RegisterServiceProvider (create)').time(() =>
          c.ma.registerServiceProvider({
            requestId: 'reg',
            providerUrn: c.p.urn,
            certificatePem: c.p.certPem,
            contact: 'ops@load.test',
            acceptedTermsDigest: s.termsDigest,
          }),
        );
    }
  };
  await Promise.all(clients.map(run));
  for (const c of clients) [c.sa, c.ma, c.agg].forEach((x) => x.close());
  return tallies;
}

/** A few calls, one after another, to show how the servers answer now. */
async function probe(s: LoadFederation, label: string): Promise<void> {
  const who = s.providers[0] as TestIdentity;
  const sa = loadClient(SliceAuthorityService, s.sa.address, SA_URN, s.caPem, who);
  const agg = loadClient(AggregateService, s.ma.address, MA_URN, s.caPem, who);
  const tSa = new Tally();
  const tMa = new Tally();
  const tEnrol = new Tally();
  for (let i = 0; i < 30; i++) {
    await tSa.time(() => sa.listSlices({ pageSize: 5, pageToken: '', state: 0 }, { deadlineMs: 10_000 }));
    await tMa.time(() => agg.getVersion({}, { deadlineMs: 10_000 }));
    // A bogus token on the enrolment port: UNAUTHENTICATED is the answer that shows it still works.
    await tEnrol.time(() =>
      enrollNode(
        { address: `127.0.0.1:${s.ma.enrolPort}`, caPem: s.caPem, maUrn: MA_URN, deadlineMs: 10_000 },
        {
          token: 'bogus',
          publicKeyPem: '',
          csrPem: '',
          ownerCredentialChain: [],
          endpoint: '',
          isolation: 0,
          version: '',
          netemAvailable: false,
        },
      ),
    );
  }
  sa.close();
  agg.close();
  console.log(`  ${label}`);
  console.log(`    SA ListSlices            ${figures(tSa)}`);
  console.log(`    MA Aggregate.GetVersion  ${figures(tMa)}`);
  console.log(`    MA enrolment (bad token) ${figures(tEnrol)}`);
}

/** Phase 2: `n` idle HTTP/2 connections over TLS, half to each server; resolves with the sessions that connected. */
async function idleConnections(s: LoadFederation, n: number): Promise<ClientHttp2Session[]> {
  const sessions: ClientHttp2Session[] = [];
  await pool(
    Array.from({ length: n }, (_, i) => i),
    50,
    (i) =>
      new Promise<void>((resolve) => {
        const who = s.providers[i % s.providers.length] as TestIdentity;
        const address = i % 2 ? s.sa.address : s.ma.address;
        const session = h2connect(`https://${address}`, {
          ca: s.caPem,
          cert: who.certPem,
          key: who.keyPem,
          checkServerIdentity: () => undefined,
        });
        session.on('error', () => resolve());
        session.once('connect', () => {
          sessions.push(session);
          resolve();
        });
      }),
  );
  return sessions;
}

/** Phase 3: `n` TCP connections to `port` that send the start of a TLS ClientHello and then nothing. */
async function halfOpen(port: number, n: number): Promise<{ sockets: Socket[]; closed: () => number }> {
  const sockets: Socket[] = [];
  let closed = 0;
  // A handshake record announcing 512 bytes of ClientHello, of which only the first few ever come.
  const start = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
  await pool(
    Array.from({ length: n }, (_, i) => i),
    100,
    () =>
      new Promise<void>((resolve) => {
        const sock = tcpConnect({ host: '127.0.0.1', port }, () => {
          sock.write(start);
          resolve();
        });
        sock.on('error', () => resolve());
        sock.on('close', () => closed++);
        sockets.push(sock);
      }),
  );
  return { sockets, closed: () => closed };
}

/** `--reads`: the read phase alone. */
async function reads(): Promise<void> {
  const clients = flagNumber('clients', 1000);
  const slices = Math.min(clients, flagNumber('slices', 100));
  const profile = flagText('profile', '');
  console.log(`bench:load --reads — ${clients} clients, ${slices} slices, against an SA (fedlab serve); load ${loadAverage()}`);
  const t0 = performance.now();
  const s = await startLoadFederation(clients, flagNumber('nodes', 8), {
    accounts: slices,
    saNodeArgs: profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [],
  });
  console.log(`set up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    await readPhase(s, {
      roundS: flagNumber('round-s', 5),
      rounds: flagNumber('rounds', 2),
      slices,
      workers: flagNumber('workers', 2),
      rate: flagNumber('rate', 0),
      settleS: flagNumber('settle-s', 1),
    });
  } finally {
    await stopLoadFederation(s);
  }
}

async function main(): Promise<void> {
  quietIrrelevantWarnings();
  if (process.argv.includes('--reads')) return reads();
  const clients = flagNumber('clients', 500);
  const seconds = flagNumber('seconds', 60);
  const nodeCount = flagNumber('nodes', 8);
  const idle = flagNumber('idle', 1000);
  const flood = flagNumber('half-open', 2000);
  console.log(
    `bench:load — ${clients} clients for ${seconds} s against an MA and an SA (fedlab serve), ${nodeCount} simulated nodes in this process; load ${loadAverage()}`,
  );
  const t0 = performance.now();
  const s = await startLoadFederation(clients, nodeCount);
  console.log(`set up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const pids = { ma: s.ma.child.pid, sa: s.sa.child.pid };
  const memory = (when: string): void =>
    console.log(`  memory ${when}: MA ${mb(rss(pids.ma))}, SA ${mb(rss(pids.sa))}; open fds MA ${fds(pids.ma)}, SA ${fds(pids.sa)}`);
  try {
    console.log('\nphase 1: mixed reads and creates');
    memory('at start');
    const started = performance.now();
    const tallies = await load(s, seconds);
    const took = (performance.now() - started) / 1000;
    memory('at end');
    const all = new Tally();
    for (const [name, t] of [...tallies].sort()) {
      console.log(`  ${name.padEnd(36)} ${figures(t)}`);
      for (const [code, why] of Object.entries(t.first)) console.log(`  ${''.padEnd(36)}   ${code}: ${why}`);
      all.ms.push(...t.ms);
      for (const [code, count] of Object.entries(t.codes)) all.codes[code] = (all.codes[code] ?? 0) + count;
    }
    console.log(`  ${'all'.padEnd(36)} ${figures(all)}`);
    console.log(`  throughput ${(all.ms.length / took).toFixed(0)} calls/s over ${took.toFixed(1)} s; load ${loadAverage()}`);
    await sleep(5000);
    memory('5 s after');

    console.log(`\nphase 2: ${idle} idle TLS (HTTP/2) connections held open`);
    const sessions = await idleConnections(s, idle);
    console.log(`  connected ${sessions.length} of ${idle}`);
    memory('while held');
    await probe(s, 'probes while they are held:');
    console.log(`  still open after the probes: ${sessions.filter((x) => !x.closed && !x.destroyed).length}`);

    console.log(`\nphase 3: ${flood} half-open TLS handshakes on the enrolment port (idle connections still held)`);
    const f = await halfOpen(s.ma.enrolPort, flood);
    await sleep(2000);
    console.log(`  opened ${f.sockets.length}; closed by the server within 2 s: ${f.closed()}`);
    memory('while flooded');
    await probe(s, 'probes during the flood:');
    for (const sock of f.sockets) sock.destroy();
    for (const x of sessions) x.destroy();
    await sleep(1000);
    memory('after both are gone');
  } finally {
    await stopLoadFederation(s);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
