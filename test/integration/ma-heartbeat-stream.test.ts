// HeartbeatStream at a real management authority over mutual TLS: beats as messages on one stream, each
// answered and recorded as a unary Heartbeat is; the caller checked when the stream opens (not a node: refused
// before any message) and every message checked again (another node's URN ends the stream with
// PERMISSION_DENIED and records nothing; a node no longer enrolled is refused at its next message); a newer
// stream of a node ends the older (ABORTED); a half-close ends the stream with OK; a dropped stream does not
// mark the node DOWN, three missed intervals do.
import { Metadata, status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../services/core/clock.js';
import { createClient } from '../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../services/core/rpc/server.js';
import { SessionStream } from '../../services/core/rpc/session-client.js';
import {
  ManagementAuthorityService,
  type HeartbeatRequest,
  type HeartbeatResponse,
} from '../../services/generated/fedlab/v1/management_authority.js';
import {
  disposeParties,
  enrolFakeNode,
  heartbeatMessage,
  siteParties,
  startSite,
  tlsOf,
  type FakeNode,
  type Site,
  type SiteParties,
} from '../helpers/ma-harness.js';

const INTERVAL = 200;
let parties: SiteParties;
let site: Site;
let nodes: FakeNode[] = [];
const clock = new ManualClock(Date.now());
const opened: { close(): void }[] = [];

beforeAll(async () => {
  parties = await siteParties('hbs.test');
  site = await startSite({ parties, clock, manualTimers: true });
  nodes = [];
  for (let i = 0; i < 4; i++) nodes.push(await enrolFakeNode(site, `s${i}`));
});
afterAll(async () => {
  for (const c of opened) c.close();
  for (const n of nodes) n.close();
  await site?.destroy();
  await disposeParties();
});

function streamAs(tls: TlsMaterial): SessionStream<HeartbeatRequest, HeartbeatResponse> {
  const client = createClient(ManagementAuthorityService, { address: site.address, tls, serverUrn: parties.maUrn });
  opened.push(client);
  return new SessionStream(client.raw, ManagementAuthorityService.heartbeatStream, new Metadata());
}

const beatOf = (urn: string, sequence: number): HeartbeatRequest =>
  heartbeatMessage(urn, sequence, { usage: { cpuMillis: 5, memMb: 10, diskMb: 0, pids: 2, bandwidthKbps: 0 } });

const live = (i: number) => site.ma!.registry.get(nodes[i]!.urn)!;

describe('HeartbeatStream', () => {
  it('takes beats as messages, each answered and recorded as a Heartbeat call is; a half-close ends it with OK', async () => {
    const reg = site.ma!.registry;
    const s = streamAs(nodes[0]!.tls);
    const before = reg.heartbeats;
    expect(live(0).up).toBe(false);
    for (let k = 1; k <= 5; k++) {
      const res = await s.send(beatOf(nodes[0]!.urn, k), 5000);
      expect(res.heartbeatIntervalS).toBe(1);
      expect(res.serverTime?.getTime()).toBe(clock.now());
      expect(live(0).sequence).toBe(k);
    }
    expect(reg.heartbeats - before).toBe(5);
    expect(live(0).up).toBe(true);
    expect(live(0).usage.cpuMillis).toBe(5);
    s.end();
    expect((await s.ended).code).toBe(Status.OK);
  });

  it('refuses a caller that is not an enrolled node when the stream opens', async () => {
    const s = streamAs(tlsOf(parties, parties.admin));
    const err = await s.send(beatOf(nodes[1]!.urn, 1), 5000).then(
      () => ({ code: Status.OK, details: '' }),
      (e: unknown) => e as { code: number; details: string },
    );
    expect(err.code).toBe(Status.PERMISSION_DENIED);
    expect(err.details).toMatch(/not a node enrolled at this site/);
    expect(live(1).lastHeartbeatAt).toBeUndefined();
  });

  it('ends the stream with PERMISSION_DENIED at a message naming another node, recording nothing of it', async () => {
    const reg = site.ma!.registry;
    const s = streamAs(nodes[2]!.tls);
    await s.send(beatOf(nodes[2]!.urn, 1), 5000);
    const before = reg.heartbeats;
    const seq3 = live(3).sequence;
    const err = await s.send(beatOf(nodes[3]!.urn, 99), 5000).then(
      () => ({ code: Status.OK }),
      (e: unknown) => e as { code: number },
    );
    expect(err.code).toBe(Status.PERMISSION_DENIED);
    expect((await s.ended).code).toBe(Status.PERMISSION_DENIED);
    expect(reg.heartbeats).toBe(before);
    expect(live(3).sequence).toBe(seq3);
    expect(live(3).lastHeartbeatAt).toBeUndefined();
    expect(live(2).sequence).toBe(1);
  });

  it('ends an older stream of the node when a newer one opens (ABORTED), and the newer carries on', async () => {
    const older = streamAs(nodes[1]!.tls);
    await older.send(beatOf(nodes[1]!.urn, 1), 5000);
    const newer = streamAs(nodes[1]!.tls);
    await newer.send(beatOf(nodes[1]!.urn, 2), 5000);
    const end = await older.ended;
    expect(end.code).toBe(Status.ABORTED);
    expect(end.details).toMatch(/newer heartbeat stream/);
    await newer.send(beatOf(nodes[1]!.urn, 3), 5000);
    expect(live(1).sequence).toBe(3);
    newer.end();
    expect((await newer.ended).code).toBe(Status.OK);
  });

  it("leaves the older stream be when a newer one's first message is refused (it ends alone)", async () => {
    const older = streamAs(nodes[0]!.tls);
    await older.send(beatOf(nodes[0]!.urn, 10), 5000);
    const newer = streamAs(nodes[0]!.tls);
    const refused = await newer.send(beatOf(nodes[3]!.urn, 11), 5000).then(
      () => Status.OK,
      (e: unknown) => (e as { code: number }).code,
    );
    expect(refused).toBe(Status.PERMISSION_DENIED);
    expect((await newer.ended).code).toBe(Status.PERMISSION_DENIED);
    await older.send(beatOf(nodes[0]!.urn, 12), 5000);
    expect(live(0).sequence).toBe(12);
    older.end();
    expect((await older.ended).code).toBe(Status.OK);
  });

  it('does not mark a node DOWN when its stream drops; three missed intervals do', async () => {
    const reg = site.ma!.registry;
    const s = streamAs(nodes[0]!.tls);
    await s.send(beatOf(nodes[0]!.urn, 10), 5000);
    s.cancel();
    await s.ended;
    await new Promise((r) => setTimeout(r, 50));
    expect(live(0).up).toBe(true);
    clock.advance(3 * INTERVAL - 1);
    expect(reg.check().map((c) => c.nodeUrn)).not.toContain(nodes[0]!.urn);
    clock.advance(1);
    expect(reg.check().map((c) => c.nodeUrn)).toContain(nodes[0]!.urn);
    expect(live(0).up).toBe(false);
  });

  it('refuses the next message of a node no longer enrolled, recording nothing', async () => {
    const reg = site.ma!.registry;
    const s = streamAs(nodes[3]!.tls);
    await s.send(beatOf(nodes[3]!.urn, 1), 5000);
    // No API removes a node today; the registry's map losing it stands for one that would.
    const map = (reg as unknown as { nodes: Map<string, unknown> }).nodes;
    const kept = map.get(nodes[3]!.urn);
    map.delete(nodes[3]!.urn);
    try {
      const before = reg.heartbeats;
      const err = await s.send(beatOf(nodes[3]!.urn, 2), 5000).then(
        () => ({ code: Status.OK }),
        (e: unknown) => e as { code: number },
      );
      expect(err.code).toBe(Status.NOT_FOUND);
      expect(reg.heartbeats).toBe(before);
    } finally {
      map.set(nodes[3]!.urn, kept);
    }
  });
});
