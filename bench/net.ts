// `npm run bench:net` (root, container driver): emulab links on node managers that run on two hosts of a netns test
// bed (test/helpers/emulab-bed.ts), printed with ratios, nothing asserted:
//  1. TCP throughput across a 100 Mbit/s link between slivers on two hosts, against the requested rate (target ≥ 0.95);
//  2. an unshaped link (VXLAN between the hosts) against a raw VXLAN pair set up by hand in the same two namespaces
//     (target ≥ 0.9×);
//  3. the time to wire a LAN of --nodes N (20) nodes: a slice of N nodes with the LAN against the same slice without
//     links, Allocate to every sliver READY, medians of --rounds (3) alternating rounds (target: < 2 s more);
//  4. ping RTT across a link between two slivers of one node (a veth pair, made through CreateSliver on that node
//     directly, since an emulab site puts one sliver of a slice on a node) against a raw veth pair by hand between
//     the same namespaces.
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { quietIrrelevantWarnings } from '../cli/warnings.js';
import { createClient } from '../services/core/rpc/client.js';
import { AllocationState, OperationalState, type Link, type SliverInterface } from '../services/generated/fedlab/v1/common.js';
import { NodeManagerService } from '../services/generated/fedlab/v1/node_manager.js';
import { inNetns, makeEmulabBed, measureKbps, pingMs, type EmulabBed } from '../test/helpers/emulab-bed.js';
import { disposeParties, tlsOf, until } from '../test/helpers/ma-harness.js';
import { canContain, cannotContainReason } from '../test/helpers/node-manager.js';
import { netnsSupport } from '../test/helpers/netns-hosts.js';
import { flagNumber, loadAverage, median } from './support.js';

quietIrrelevantWarnings();

const NODES = flagNumber('nodes', 20);
const SECONDS = flagNumber('seconds', 3);
const ROUNDS = flagNumber('rounds', 3);
const SP = 'urn:fedlab:emu.test:sp:acme';
let requests = 0;

const ratio = (a: number, b: number): string => (a / b).toFixed(3);
const ip = (args: readonly string[]): string => execFileSync('ip', [...args], { encoding: 'utf8', timeout: 10_000 });

/** Allocates and provisions (started) a slice of nodes `idx`; resolves once every sliver is READY, with the ms it took. */
async function makeSlice(bed: EmulabBed, slice: string, idx: readonly number[], links: Link[]): Promise<number> {
  const agg = bed.site.aggClient();
  const { chain } = bed;
  const clientIds = idx.map((i) => `n${i}`);
  const t = performance.now();
  await agg.allocate(
    {
      users: [],
      requestId: `net-${++requests}`,
      sliceUrn: slice,
      providerUrn: SP,
      request: {
        nodes: { nodeUrns: idx.map((i) => bed.nodes[i]!.urn), count: 0, clientIds },
        links,
        exclusive: false,
        requestDocument: '',
        requestDocumentFormat: '',
      },
    },
    { chain },
  );
  const prov = await agg.provision({ urns: [slice], bestEffort: false, start: true }, { chain, deadlineMs: 120_000 });
  const bad = prov.results.find((r) => r.status?.code !== 0);
  if (bad) throw new Error(`provision of ${slice} failed: ${bad.status?.reason}`);
  await until(
    async () =>
      (await agg.status({ urns: [slice] }, { chain })).slivers.every(
        (s) => s.operationalState === OperationalState.OPERATIONAL_STATE_READY,
      ),
    120_000,
    `${slice} READY`,
  );
  return performance.now() - t;
}

async function sliversOf(bed: EmulabBed, slice: string) {
  return (await bed.site.aggClient().describe({ urns: [slice] }, { chain: bed.chain })).slivers;
}

async function deleteSlice(bed: EmulabBed, slice: string): Promise<void> {
  await bed.site.aggClient().delete({ urns: [slice], bestEffort: false }, { chain: bed.chain, deadlineMs: 120_000 });
  // A node that was slow to answer is retried by the site's intents: wait until the slice is gone everywhere.
  await until(async () => (bed.site.ma?.aggregate.stats().slivers ?? 0) === 0, 120_000, `${slice} deleted`);
}

/** A throughput run, tried once more (on another port) when one stalls on this shared machine. */
async function kbps(fromNs: string, toNs: string, to: string, port: number): Promise<number> {
  try {
    return await measureKbps(fromNs, toNs, to, SECONDS, port);
  } catch (err) {
    console.log(`   (a run to ${to} stalled: ${(err as Error).message.split('\n')[0]!.slice(0, 80)}; once more)`);
    return measureKbps(fromNs, toNs, to, SECONDS, port + 50);
  }
}

const link = (name: string, endpoints: string[], bandwidthKbps: number): Link => ({
  name,
  endpoints,
  bandwidthKbps,
  delayMs: 0,
  lossPercent: 0,
});

async function main(): Promise<void> {
  const bedOk = netnsSupport();
  if (!canContain || !bedOk.ok) {
    console.log(`bench:net needs root and the container driver: ${!canContain ? cannotContainReason : bedOk.ok ? '' : bedOk.reason}`);
    return;
  }
  console.log(`bench:net — ${NODES} nodes on 2 hosts, ${SECONDS} s per throughput run, load ${loadAverage()}`);
  // Heartbeats every second and a minute for node calls: on a busy shared machine 200 ms heartbeats are missed
  // and 8 s calls time out.
  const bed = await makeEmulabBed({
    hosts: 2,
    placement: Array.from({ length: Math.max(NODES, 2) }, (_, k) => k % 2),
    heartbeatMs: 1000,
    nodeCallMs: 60_000,
  });
  try {
    // 1. A 100 Mbit/s link between e1 (h1) and e2 (h2).
    const shaped = 'urn:fedlab:emu.test:slice:net-shaped';
    await makeSlice(bed, shaped, [0, 1], [link('l100', ['n0', 'n1'], 100_000)]);
    const [s0, s1] = await sliversOf(bed, shaped);
    const ns = (s: typeof s0) => bed.nodes.find((n) => n.urn === s!.nodeUrn)!.netnsOf(s!.urn);
    const eth1 = (s: typeof s0) => s!.interfaces[0]!.address;
    const shapedKbps = await kbps(ns(s0), ns(s1), eth1(s1), 5201);
    console.log(
      `1. TCP across a 100 Mbit/s link, h1 -> h2: ${(shapedKbps / 1000).toFixed(1)} Mbit/s = ${ratio(shapedKbps, 100_000)} of the requested rate`,
    );
    await deleteSlice(bed, shaped);

    // 2. Unshaped: the link against a raw VXLAN pair by hand in the same two namespaces.
    const open = 'urn:fedlab:emu.test:slice:net-open';
    await makeSlice(bed, open, [0, 1], [link('l0', ['n0', 'n1'], 0)]);
    const [u0, u1] = await sliversOf(bed, open);
    const [h1, h2] = [bed.tb.hosts[0]!, bed.tb.hosts[1]!];
    for (const [host, peer, sliverNs, addr] of [
      [h1, h2, ns(u0), '10.251.0.1/24'],
      [h2, h1, ns(u1), '10.251.0.2/24'],
    ] as const) {
      host.exec([
        'ip',
        'link',
        'add',
        'rawvx',
        'type',
        'vxlan',
        'id',
        '16000001',
        'local',
        host.address,
        'remote',
        peer.address,
        'dstport',
        '4790',
      ]);
      host.exec(['ip', 'link', 'set', 'rawvx', 'netns', sliverNs]);
      ip(['-n', sliverNs, 'addr', 'add', addr, 'dev', 'rawvx']);
      ip(['-n', sliverNs, 'link', 'set', 'rawvx', 'up']);
    }
    const ours: number[] = [];
    const raw: number[] = [];
    for (let round = 0; round < 3; round++) {
      ours.push(await kbps(ns(u0), ns(u1), eth1(u1), 5301 + round));
      raw.push(await kbps(ns(u0), ns(u1), '10.251.0.2/24', 5401 + round));
    }
    const best = (xs: number[]) => Math.max(...xs);
    console.log(
      `2. unshaped link (each end the VXLAN device itself) ${(best(ours) / 1000).toFixed(0)} Mbit/s vs raw VXLAN pair ${(best(raw) / 1000).toFixed(0)} Mbit/s: ratio ${ratio(best(ours), best(raw))} (best of 3 each)`,
    );
    for (const s of [u0, u1]) ip(['-n', ns(s), 'link', 'del', 'rawvx']);
    await deleteSlice(bed, open);

    // 3. Time to wire a LAN of N nodes: the same slice with and without it, in alternating rounds (medians).
    const idx = Array.from({ length: NODES }, (_, k) => k);
    const plainMs: number[] = [];
    const lanMs: number[] = [];
    let reach = '';
    for (let round = 0; round < ROUNDS; round++) {
      const plainSlice = `urn:fedlab:emu.test:slice:net-plain-${round}`;
      plainMs.push(await makeSlice(bed, plainSlice, idx, []));
      await deleteSlice(bed, plainSlice);
      const lanSlice = `urn:fedlab:emu.test:slice:net-lan-${round}`;
      lanMs.push(
        await makeSlice(bed, lanSlice, idx, [
          link(
            'lan',
            idx.map((i) => `n${i}`),
            0,
          ),
        ]),
      );
      const lanSlivers = await sliversOf(bed, lanSlice);
      const first = lanSlivers[0]!;
      const last = lanSlivers[lanSlivers.length - 1]!;
      reach = await inNetns(ns(first), ['busybox', 'ping', '-c', '1', '-W', '3', last.interfaces[0]!.address.split('/')[0]!]).then(
        () => 'reachable',
        () => 'NOT reachable',
      );
      await deleteSlice(bed, lanSlice);
    }
    const [plain, lan] = [median(plainMs), median(lanMs)];
    const secs = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(2)).join(', ');
    console.log(
      `3. ${NODES}-node slice to READY (medians of ${ROUNDS} alternating rounds): ${(plain / 1000).toFixed(2)} s without links [${secs(plainMs)}], ${(lan / 1000).toFixed(2)} s with a ${NODES}-node LAN [${secs(lanMs)}]: wiring ${((lan - plain) / 1000).toFixed(2)} s on top (ratio ${ratio(lan, plain)}; first to last sliver ${reach})`,
    );

    // 4. Two slivers of one node joined by a veth pair (CreateSliver on e1 directly) against a raw veth pair.
    const node = bed.nodes[0]!;
    const p = bed.site.parties;
    const nm = createClient(NodeManagerService, {
      address: `${node.host.address}:${node.enrolled.endpoint.split(':').pop()}`,
      tls: tlsOf(p, p.ma),
      serverUrn: node.urn,
      deadlineMs: 60_000,
    });
    const made: string[] = [];
    const ends: { ns: string; address: string }[] = [];
    for (const [k, mac] of ['02:00:00:00:aa:01', '02:00:00:00:aa:02'].entries()) {
      const name = `vethbench-${k}`;
      const iface: SliverInterface = {
        link: 'pair',
        name: 'eth1',
        address: `10.252.0.${k + 1}/24`,
        bandwidthKbps: 0,
        delayMs: 0,
        lossPercent: 0,
        wiring: { mac, vni: 16000002, remoteUnderlays: [], applied: [] },
      };
      const res = await nm.createSliver(
        {
          requestId: `bench-${name}`,
          sliverUrn: `urn:fedlab:emu.test:sliver:${name}`,
          sliceUrn: 'urn:fedlab:emu.test:slice:net-veth',
          sliceAuthorityUrn: p.sa.urn,
          sliceAuthorityJwk: JSON.stringify(p.sa.jwk),
          providerUrn: SP,
          resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
          exclusive: false,
          interfaces: [iface],
          users: [],
          allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
          clientId: name,
          start: true,
        },
        { chain: node.enrolled.ownerChain },
      );
      made.push(res.sliver!.urn);
      ends.push({ ns: node.netnsOf(res.sliver!.urn), address: iface.address });
    }
    await until(
      async () => (await inNetns(ends[0]!.ns, ['ip', '-j', 'link', 'show', 'dev', 'eth1']).catch(() => '')).includes('UP'),
      30_000,
      'the veth pair',
    );
    ip(['link', 'add', 'rawva', 'netns', ends[0]!.ns, 'type', 'veth', 'peer', 'name', 'rawvb', 'netns', ends[1]!.ns]);
    ip(['-n', ends[0]!.ns, 'addr', 'add', '10.253.0.1/24', 'dev', 'rawva']);
    ip(['-n', ends[1]!.ns, 'addr', 'add', '10.253.0.2/24', 'dev', 'rawvb']);
    ip(['-n', ends[0]!.ns, 'link', 'set', 'rawva', 'up']);
    ip(['-n', ends[1]!.ns, 'link', 'set', 'rawvb', 'up']);
    const kind = JSON.parse(ip(['-n', ends[0]!.ns, '-j', '-d', 'link', 'show', 'dev', 'eth1'])) as { linkinfo?: { info_kind?: string } }[];
    const oursRtt = await pingMs(ends[0]!.ns, ends[1]!.address, 50);
    const rawRtt = await pingMs(ends[0]!.ns, '10.253.0.2', 50);
    console.log(
      `4. ping RTT between two slivers of one node: link (${kind[0]?.linkinfo?.info_kind ?? '?'} pair) ${(oursRtt * 1000).toFixed(0)} µs vs raw veth ${(rawRtt * 1000).toFixed(0)} µs: ratio ${ratio(oursRtt, rawRtt)} (medians of 50)`,
    );
    for (const urn of made) await nm.deleteSliver({ sliverUrn: urn }, { chain: node.enrolled.ownerChain });
    nm.close();
  } finally {
    await bed.destroy();
    await disposeParties();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
