// The node manager's heartbeats (services/node-manager/heartbeat.ts) against test authorities over mutual TLS:
// beats travel on one stream, each answered; an authority without HeartbeatStream (registering only the unary
// Heartbeat, as an older one does) gets unary calls; a beat not answered within the deadline fails, the stream is
// cancelled, beats go unary during the backoff and a new stream is opened after it; stop() half-closes the
// stream, which the authority ends with OK.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../services/core/clock.js';
import { silentLogger } from '../../services/core/log.js';
import type { ServiceMetrics } from '../../services/core/metrics/service-metrics.js';
import type { ServiceRegistration, SessionHandler } from '../../services/core/rpc/adapter.js';
import { startServer, type RunningServer, type TlsMaterial } from '../../services/core/rpc/server.js';
import { until } from '../../services/core/timing.js';
import {
  ManagementAuthorityService,
  type HeartbeatRequest,
  type HeartbeatResponse,
} from '../../services/generated/fedlab/v1/management_authority.js';
import { HeartbeatClient } from '../../services/node-manager/heartbeat.js';
import type { NodeManager } from '../../services/node-manager/node-manager.js';
import { makeTestPki } from '../helpers/pki.js';

const MA_URN = 'urn:fedlab:nmhb.test:authority:ma';
const NODE_URN = 'urn:fedlab:nmhb.test:node:n1';
let serverTls: TlsMaterial;
let nodeTls: TlsMaterial;
const running: RunningServer[] = [];
const clients: HeartbeatClient[] = [];

/** What a test authority saw. */
interface Seen {
  unary: number[];
  streamed: number[];
  opened: number;
  closed: number;
  calls: { method: string; code: string }[];
}

const answer = (): HeartbeatResponse => ({ serverTime: new Date(), heartbeatIntervalS: 5, revocationVersion: 7 });

/** An authority serving unary Heartbeat, and HeartbeatStream unless `unaryOnly`; `hold(seq)` leaves a message unanswered. */
async function authority(o: { unaryOnly?: boolean; hold?: (sequence: number) => boolean }): Promise<{ address: string; seen: Seen }> {
  const seen: Seen = { unary: [], streamed: [], opened: 0, closed: 0, calls: [] };
  const session: SessionHandler<HeartbeatRequest, HeartbeatResponse> = {
    open: () => {
      seen.opened++;
      return {
        message: (req) => {
          seen.streamed.push(req.sequence);
          if (o.hold?.(req.sequence)) return new Promise<HeartbeatResponse>(() => undefined);
          return answer();
        },
        close: () => void seen.closed++,
      };
    },
  };
  const unary = (async (req: HeartbeatRequest) => {
    seen.unary.push(req.sequence);
    return answer();
  }) as never;
  const reg: ServiceRegistration = {
    name: 'fedlab.v1.ManagementAuthority',
    definition: o.unaryOnly
      ? { heartbeat: ManagementAuthorityService.heartbeat }
      : { heartbeat: ManagementAuthorityService.heartbeat, heartbeatStream: ManagementAuthorityService.heartbeatStream },
    handlers: o.unaryOnly ? { heartbeat: unary } : { heartbeat: unary, heartbeatStream: session as never },
  };
  const metrics = { observeCall: (method: string, code: string) => seen.calls.push({ method, code }) } as unknown as ServiceMetrics;
  const server = await startServer({ port: 0, tls: serverTls, log: silentLogger(), shutdownGraceMs: 300, metrics }, [reg]);
  running.push(server);
  return { address: `127.0.0.1:${server.port}`, seen };
}

const nm = {
  sampleUsage: async () => ({ usage: { cpuMillis: 1, memMb: 1, diskMb: 0, pids: 1, bandwidthKbps: 0 } }),
  node: () => ({
    urn: NODE_URN,
    capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 1024, pids: 512, bandwidthKbps: 0 },
    allocated: { cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0, bandwidthKbps: 0 },
    sliverCount: 0,
    version: 'test',
    endpoint: '127.0.0.1:9',
  }),
} as unknown as NodeManager;

function heartbeats(address: string, clock: ManualClock, deadlineMs = 2000): HeartbeatClient {
  const c = new HeartbeatClient({
    address,
    authorityUrn: MA_URN,
    tls: nodeTls,
    intervalMs: 60_000,
    deadlineMs,
    nm,
    clock,
    log: silentLogger(),
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  const pki = await makeTestPki('nmhb.test');
  const s = await pki.issueServer(MA_URN);
  const n = await pki.issue(NODE_URN);
  serverTls = { caCerts: pki.caPem, cert: s.certPem, key: s.keyPem };
  nodeTls = { caCerts: pki.caPem, cert: n.certPem, key: n.keyPem };
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.stop();
  for (const s of running.splice(0)) await s.stop();
});

describe('node manager heartbeats', () => {
  it('go as messages on one stream, each answered; stop() half-closes it and the authority ends it with OK', async () => {
    const { address, seen } = await authority({});
    const hb = heartbeats(address, new ManualClock());
    for (let i = 0; i < 3; i++) await hb.beat();
    expect(hb.lastTransport).toBe('stream');
    expect(hb.lastResponse?.revocationVersion).toBe(7);
    expect(seen.streamed).toEqual([1, 2, 3]);
    expect(seen.unary).toEqual([]);
    expect(seen.opened).toBe(1);
    await hb.stop();
    await until(() => seen.closed === 1, 3000, 'the stream closed at the authority');
    expect(seen.calls).toEqual([{ method: ManagementAuthorityService.heartbeatStream.path, code: 'OK' }]);
  });

  it('fall back to unary Heartbeat against an authority without HeartbeatStream (UNIMPLEMENTED), and stay unary', async () => {
    const { address, seen } = await authority({ unaryOnly: true });
    const clock = new ManualClock();
    const hb = heartbeats(address, clock);
    await hb.beat();
    expect(hb.lastTransport).toBe('unary');
    expect(seen.unary).toEqual([1]);
    clock.advance(60_000);
    await hb.beat();
    expect(hb.lastTransport).toBe('unary');
    expect(seen.unary).toEqual([1, 2]);
  });

  it('fail a beat not answered within the deadline, cancel the stream, go unary during the backoff, then reopen it', async () => {
    const { address, seen } = await authority({ hold: (seq) => seq === 2 });
    const clock = new ManualClock();
    const hb = heartbeats(address, clock, 300);
    await hb.beat();
    expect(hb.lastTransport).toBe('stream');
    const answered = hb.lastResponse;
    const t0 = Date.now();
    await hb.beat();
    expect(Date.now() - t0).toBeLessThan(2000);
    // The second beat failed: no new answer.
    expect(hb.lastResponse).toBe(answered);
    await until(() => seen.closed === 1, 3000, 'the held stream cancelled');
    expect(seen.calls.at(-1)?.code).toBe('CANCELLED');
    // Within the backoff the next beat is a unary call ...
    await hb.beat();
    expect(hb.lastTransport).toBe('unary');
    expect(seen.unary).toEqual([3]);
    // ... and after it, a new stream.
    clock.advance(1000);
    await hb.beat();
    expect(hb.lastTransport).toBe('stream');
    expect(seen.opened).toBe(2);
    expect(seen.streamed).toEqual([1, 2, 4]);
  });
});
