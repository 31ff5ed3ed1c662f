// A node abusing its heartbeats, at a real management authority over mutual TLS (the review of HeartbeatStream):
// a connection outliving its certificate is refused at its next message or call (UNAUTHENTICATED); reopening
// streams or going unary buys no fresh rate (one bucket per node: RESOURCE_EXHAUSTED, rule heartbeat_rate, not
// recorded); a refused heartbeat changes nothing GetNode shows; bad reports alternating on every beat give at
// most one warning a minute per node, with the count held back; a 100 KiB heartbeat is refused on either path;
// and stopping the MA ends open streams with UNAVAILABLE at once instead of waiting out the grace period.
import { createPrivateKey } from 'node:crypto';
import { Writable } from 'node:stream';
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import pino from 'pino';
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
import { makeTestPki } from '../helpers/pki.js';
import {
  disposeParties,
  enrolFakeNode,
  heartbeatMessage,
  startSite,
  type FakeNode,
  type Site,
  type SiteParties,
} from '../helpers/ma-harness.js';

let parties: SiteParties;
let site: Site;
const nodes: FakeNode[] = [];
const clock = new ManualClock(Date.now());
const opened: { close(): void }[] = [];
const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  },
});

beforeAll(async () => {
  // A CA made two days ago, so that a node certificate expiring in seconds can be issued.
  const domain = 'hbabuse.test';
  const pki = await makeTestPki(domain, { now: new Date(Date.now() - 2 * 86_400_000) });
  const maUrn = `urn:fedlab:${domain}:authority:ma`;
  parties = {
    domain,
    pki,
    maUrn,
    ma: await pki.issueServer(maUrn),
    admin: await pki.issue(`urn:fedlab:${domain}:user:admin`),
    sa: await pki.issue(`urn:fedlab:${domain}:authority:sa`),
    sp: await pki.issue(`urn:fedlab:${domain}:sp:acme`),
    owner: await pki.issue(`urn:fedlab:${domain}:owner:alice`),
    bundleFile: (await pki.bundle()).file,
  };
  site = await startSite({ parties, clock, manualTimers: true, log: pino({ level: 'info' }, sink) });
  for (let i = 0; i < 7; i++) nodes.push(await enrolFakeNode(site, `x${i}`));
}, 60_000);
afterAll(async () => {
  for (const c of opened) c.close();
  for (const n of nodes) n.close();
  await site?.destroy();
  await disposeParties();
  await parties?.pki.cleanup();
});

function clientAs(tls: TlsMaterial, definition = ManagementAuthorityService) {
  const client = createClient(definition, { address: site.address, tls, serverUrn: parties.maUrn, deadlineMs: 5000 });
  opened.push(client);
  return client;
}
function streamOn(client: ReturnType<typeof clientAs>, def = ManagementAuthorityService.heartbeatStream) {
  return new SessionStream<HeartbeatRequest, HeartbeatResponse>(client.raw, def, new Metadata());
}
const beatOf = heartbeatMessage;
/** The status of a call or send: OK, or the error's code and rule. */
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => ({ code: Status.OK as Status, rule: undefined as string | undefined, details: '' }),
    (e: ServiceError) => ({ code: e.code, rule: e.metadata?.get('fedlab-rule')[0]?.toString(), details: e.details }),
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const live = (i: number) => site.ma!.registry.get(nodes[i]!.urn)!;

/** A heartbeat serializer that pads each message with an unknown field of `bytes` bytes. */
function padded<D extends { requestSerialize(v: HeartbeatRequest): Buffer }>(def: D, bytes: number): D {
  const pad = Buffer.alloc(bytes, 0x41);
  const tag = Buffer.from([0xc2, 0x3e]); // field 1000, wire type 2
  const len: number[] = [];
  for (let n = bytes; ; n >>>= 7) {
    if (n < 128) {
      len.push(n);
      break;
    }
    len.push((n & 127) | 128);
  }
  return { ...def, requestSerialize: (v: HeartbeatRequest) => Buffer.concat([def.requestSerialize(v), tag, Buffer.from(len), pad]) };
}

describe('heartbeat abuse', () => {
  it('refuses the next message and the next call of a connection whose certificate has expired since (UNAUTHENTICATED)', async () => {
    const n = nodes[0]!;
    // Same node URN and key, certified by the site CA, expiring about 3 s from now.
    const short = await parties.pki.issue(n.urn, {
      privateKey: createPrivateKey(n.tls.key),
      days: 1,
      now: new Date(Date.now() - 86_400_000 + 3000),
    });
    const tls = { caCerts: parties.pki.caPem, cert: short.certPem, key: short.keyPem };
    const s = streamOn(clientAs(tls));
    await s.send(beatOf(n.urn, 1), 5000);
    const unary = clientAs(tls);
    await unary.heartbeat(beatOf(n.urn, 2));
    await sleep(Math.max(0, short.notAfter.getTime() - Date.now()) + 1200);
    const onStream = await outcome(s.send(beatOf(n.urn, 3), 5000));
    expect(onStream.code).toBe(Status.UNAUTHENTICATED);
    expect(onStream.rule).toBe('certificate_validity');
    expect(onStream.details).toMatch(/expired.*reconnect with a renewed certificate/);
    const onCall = await outcome(unary.heartbeat(beatOf(n.urn, 4)));
    expect(onCall.code).toBe(Status.UNAUTHENTICATED);
    expect(live(0).sequence).toBe(2);
  }, 20_000);

  it('keeps one rate per node over reopened streams and unary calls (RESOURCE_EXHAUSTED, rule heartbeat_rate, not recorded)', async () => {
    const n = nodes[1]!;
    const reg = site.ma!.registry;
    const client = clientAs(n.tls);
    const before = reg.heartbeats;
    const rules = new Set<string | undefined>();
    let seq = 0;
    const t0 = performance.now();
    // The attack: open a stream, 20 beats, half-close, again (each new stream had a fresh per-stream bucket).
    while (performance.now() - t0 < 1500) {
      const s = streamOn(client);
      const outs = await Promise.all(Array.from({ length: 20 }, () => outcome(s.send(beatOf(n.urn, ++seq), 5000))));
      for (const o of outs) if (o.code !== Status.OK) rules.add(`${Status[o.code]} ${o.rule}`);
      s.end();
      await s.ended;
    }
    const unary = await Promise.all(Array.from({ length: 20 }, () => outcome(client.heartbeat(beatOf(n.urn, ++seq)))));
    const secs = (performance.now() - t0) / 1000;
    const taken = reg.heartbeats - before;
    console.log(
      `one node, streams reopened then unary: ${taken} beats taken in ${secs.toFixed(2)} s; refused with ${[...rules].join(', ')}`,
    );
    // Burst 20 plus the sustained rate (5 a second, or three beats an interval: 15 at this site's 200 ms), and
    // slack for the loaded machine; it was thousands a second.
    expect(taken).toBeLessThanOrEqual(20 + Math.ceil(15 * secs) + 5);
    expect(rules).toContain('RESOURCE_EXHAUSTED heartbeat_rate');
    expect(unary.filter((o) => o.code === Status.RESOURCE_EXHAUSTED && o.rule === 'heartbeat_rate').length).toBeGreaterThan(10);
    // A refused beat is not recorded: the last sequence taken is an accepted one, never the last sent.
    expect(live(1).sequence).toBeLessThan(seq);
  });

  it('changes nothing GetNode shows when a heartbeat is refused', async () => {
    const n = nodes[2]!;
    const s = streamOn(clientAs(n.tls));
    await s.send(beatOf(n.urn, 1), 5000);
    const admin = site.maClient();
    const before = (await admin.getNode({ nodeUrn: n.urn })).node;
    const listed = (await admin.listNodes({ pageSize: 0, pageToken: '', health: 0 })).nodes.find((x) => x.urn === n.urn);
    const refused = await outcome(
      s.send(
        beatOf(n.urn, 2, {
          endpoint: '10.9.9.9:1234',
          capacity: { cpuMillis: 999_999, memMb: 1, diskMb: 1, pids: 1, bandwidthKbps: 0 },
          version: 'x'.repeat(65),
        }),
        5000,
      ),
    );
    expect(refused.code).toBe(Status.INVALID_ARGUMENT);
    expect((await admin.getNode({ nodeUrn: n.urn })).node).toEqual(before);
    expect((await admin.listNodes({ pageSize: 0, pageToken: '', health: 0 })).nodes.find((x) => x.urn === n.urn)).toEqual(listed);
    expect(live(2).endpoint).toBe('127.0.0.1:9');
    expect(live(2).capacity.cpuMillis).toBe(1000);
  });

  it('logs at most one warning a minute per node for bad reports alternating on every beat, with the count held back', async () => {
    const count = (msg: RegExp) => lines.filter((l) => msg.test(String(l.msg)));
    const underlay = /underlay address ignored/;
    const ssh = /SSH endpoint ignored/;
    const n = nodes[3]!;
    const s = streamOn(clientAs(n.tls));
    const u0 = count(underlay).length;
    const s0 = count(ssh).length;
    const badSsh = (k: number) => ({ address: `bad host ${k % 2}`, hostKey: 'not a key', hostKeyFingerprint: 'SHA256:x' });
    for (let k = 0; k < 16; k++)
      await s.send(beatOf(n.urn, 10 + k, { underlayAddress: k % 2 ? '127.0.0.1' : '127.0.0.2', ssh: badSsh(k) }), 5000);
    await sleep(50);
    console.log(`warn lines for 16 beats: underlay ${count(underlay).length - u0}, ssh ${count(ssh).length - s0}`);
    expect(count(underlay).length - u0).toBe(1);
    expect(count(ssh).length - s0).toBe(1);
    clock.advance(60_000);
    await s.send(beatOf(n.urn, 30, { underlayAddress: '127.0.0.3', ssh: badSsh(2) }), 5000);
    await sleep(50);
    expect(count(underlay).length - u0).toBe(2);
    expect(count(underlay).at(-1)?.held).toBe(15);
    expect(count(ssh).at(-1)?.held).toBe(15);
    s.end();
    await s.ended;
  });

  it('refuses a heartbeat over 64 KiB on a stream and as a unary call (RESOURCE_EXHAUSTED), and takes one under it', async () => {
    const n = nodes[4]!;
    const fatStream = padded(ManagementAuthorityService.heartbeatStream, 100 * 1024);
    const onStream = await outcome(streamOn(clientAs(n.tls), fatStream).send(beatOf(n.urn, 1), 5000));
    expect(onStream.code).toBe(Status.RESOURCE_EXHAUSTED);
    const fatUnary = clientAs(n.tls, {
      ...ManagementAuthorityService,
      heartbeat: padded(ManagementAuthorityService.heartbeat, 100 * 1024),
    });
    const onCall = await outcome(fatUnary.heartbeat(beatOf(n.urn, 2)));
    expect(onCall.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(live(4).sequence).toBe(0);
    const fine = clientAs(n.tls, { ...ManagementAuthorityService, heartbeat: padded(ManagementAuthorityService.heartbeat, 32 * 1024) });
    expect((await outcome(fine.heartbeat(beatOf(n.urn, 3)))).code).toBe(Status.OK);
    expect(live(4).sequence).toBe(3);
  });

  // Last: it stops the site.
  it('stops at once with a node stream open, ending it with UNAVAILABLE (a node reconnects after its backoff)', async () => {
    const n = nodes[5]!;
    const s = streamOn(clientAs(n.tls));
    await s.send(beatOf(n.urn, 1), 5000);
    const grace = site.config.shutdown_grace_ms;
    const t0 = performance.now();
    await site.stop();
    const took = performance.now() - t0;
    const end = await s.ended;
    console.log(
      `stop with a stream open took ${took.toFixed(0)} ms (grace ${grace} ms); the stream ended ${Status[end.code]}: ${end.details}`,
    );
    expect(took).toBeLessThan(grace / 2);
    expect(end.code).toBe(Status.UNAVAILABLE);
  }, 20_000);
});
