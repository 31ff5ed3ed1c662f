// A link's hub on a host — the bridge two node managers' slivers on one host share, with a VXLAN device towards the
// other host — tried from a sliver on it. The hub bridge holds no address and answers no ARP (NOARP), but a sliver
// with CAP_NET_RAW (here: root in the sliver's namespace, adding a neighbour entry with the hub's MAC and routes by
// its link interface) can still put IP packets addressed to the host's MAC on the hub. Counters on the host, in chains
// after the node manager's, show nothing of them reaches the host's own addresses (its node manager, SSH, anything)
// nor is routed by it towards the "Internet"; a counter before them shows the packets did arrive (the control);
// and the link itself still carries TCP between the slivers (bridged frames pass). Needs root and the container
// driver; skipped with the reason otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationalState, type ResourceRequest } from '../../services/generated/fedlab/v1/common.js';
import { inNetns, makeEmulabBed, measureKbps, type EmulabBed } from '../helpers/emulab-bed.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { canContain, cannotContainReason } from '../helpers/node-manager.js';
import { netnsSupport } from '../helpers/netns-hosts.js';

const bedSupport = netnsSupport();
const skipReason = !canContain ? cannotContainReason : !bedSupport.ok ? bedSupport.reason : '';
if (skipReason) console.log(`link-hub-boundary: skipped — ${skipReason}`);

const sp = 'urn:fedlab:hub.test:sp:acme';
const slice = 'urn:fedlab:hub.test:slice:lan';
const PORT = 9999;
let bed: EmulabBed;
let nsA: string;
let nsC: string;
let cAddr: string;

// Sends `count` UDP datagrams to host:port.
const SENDER = `
const s = require('node:dgram').createSocket('udp4');
const [host, port, count] = process.argv.slice(1);
let left = Number(count);
const next = () => { if (left-- <= 0) return s.close(); s.send(Buffer.from('x'), Number(port), host, () => setTimeout(next, 5)); };
next();
`;

const PROBE = `add table ip hubprobe
add chain ip hubprobe p_pre { type filter hook prerouting priority -300; policy accept; }
add chain ip hubprobe p_in { type filter hook input priority 10; policy accept; }
add chain ip hubprobe p_fwd { type filter hook forward priority 10; policy accept; }
add rule ip hubprobe p_pre iifname "flk*" udp dport ${PORT} counter
add rule ip hubprobe p_in iifname "flk*" udp dport ${PORT} counter
add rule ip hubprobe p_fwd iifname "flk*" udp dport ${PORT} counter
`;

/** The probe's counters on a host: packets from a hub seen before the node's rules, and passed by them to input and forward. */
function probe(exec: (argv: string[]) => string): { pre: number; input: number; forward: number } {
  const out = JSON.parse(exec(['nft', '-j', 'list', 'table', 'ip', 'hubprobe'])) as { nftables: Record<string, unknown>[] };
  const n: Record<string, number> = {};
  for (const o of out.nftables) {
    const r = o.rule as { chain: string; expr: Record<string, unknown>[] } | undefined;
    const c = r?.expr.map((e) => e.counter as { packets: number } | undefined).find(Boolean);
    if (r && c) n[r.chain] = c.packets;
  }
  return { pre: n.p_pre ?? 0, input: n.p_in ?? 0, forward: n.p_fwd ?? 0 };
}

describe.skipIf(skipReason !== '')("a link's hub on a host", () => {
  beforeAll(async () => {
    bed = await makeEmulabBed({ hosts: 2, placement: [0, 0, 1], domain: 'hub.test' });
    const agg = bed.site.aggClient();
    const request: ResourceRequest = {
      nodes: { nodeUrns: bed.nodes.map((n) => n.urn), count: 0, clientIds: ['a', 'c', 'b'] },
      links: [{ name: 'lan0', endpoints: ['a', 'c', 'b'], bandwidthKbps: 0, delayMs: 0, lossPercent: 0 }],
      exclusive: false,
      requestDocument: '',
      requestDocumentFormat: '',
    };
    await agg.allocate({ users: [], requestId: 'hub-1', sliceUrn: slice, providerUrn: sp, request }, { chain: bed.chain });
    await agg.provision({ urns: [slice], bestEffort: false, start: true }, { chain: bed.chain });
    await until(
      async () =>
        (await agg.status({ urns: [slice] }, { chain: bed.chain })).slivers.every(
          (s) => s.operationalState === OperationalState.OPERATIONAL_STATE_READY,
        ),
      60_000,
      'READY',
    );
    const d = await agg.describe({ urns: [slice] }, { chain: bed.chain });
    const a = d.slivers.find((s) => s.clientId === 'a')!;
    const c = d.slivers.find((s) => s.clientId === 'c')!;
    nsA = bed.nodes[0]!.netnsOf(a.urn);
    nsC = bed.nodes[1]!.netnsOf(c.urn);
    cAddr = c.interfaces[0]!.address;
  }, 300_000);

  afterAll(async () => {
    await bed?.destroy();
    await disposeParties();
  }, 120_000);

  it('lets nothing a sliver sends into the hub reach the host or be routed by it', async () => {
    const h1 = bed.nodes[0]!.host;
    const out = bed.tb.outside;
    const hubs = JSON.parse(h1.exec(['ip', '-j', 'link', 'show', 'type', 'bridge'])) as { ifname: string }[];
    expect(hubs.some((h) => h.ifname.startsWith('flk'))).toBe(true);
    h1.exec(['sh', '-c', `printf '${PROBE.replace(/\n/g, '\\n')}' | nft -f -`]);
    try {
      // What a sliver's raw socket could do: address the host (and, through it, the outside) on its link interface.
      // The hub answers no ARP: its MAC as a raw socket would use it, found from the bridge's own frames.
      const hub = hubs.find((h) => h.ifname.startsWith('flk'))!;
      const flags = (JSON.parse(h1.exec(['ip', '-j', 'link', 'show', 'dev', hub.ifname])) as { flags: string[]; address: string }[])[0]!;
      expect(flags.flags).toContain('NOARP');
      await inNetns(nsA, ['ip', 'neigh', 'replace', h1.address, 'lladdr', flags.address, 'dev', 'eth1', 'nud', 'permanent']);
      await inNetns(nsA, ['ip', 'route', 'add', `${h1.address}/32`, 'dev', 'eth1']);
      await inNetns(nsA, ['ip', 'route', 'add', `${out.publicAddress}/32`, 'dev', 'eth1', 'onlink', 'via', h1.address]);
      await inNetns(nsA, [process.execPath, '-e', SENDER, h1.address, String(PORT), '10']);
      await inNetns(nsA, [process.execPath, '-e', SENDER, out.publicAddress, String(PORT), '10']);
      await until(async () => probe(h1.exec).pre >= 16, 5000, 'the packets arrived on the hub');
      expect(probe(h1.exec)).toMatchObject({ input: 0, forward: 0 });
    } finally {
      h1.exec(['nft', 'delete', 'table', 'ip', 'hubprobe']);
    }
  }, 60_000);

  it('still carries TCP between the two slivers on the hub', async () => {
    const kbps = await measureKbps(nsA, nsC, cAddr, 1);
    expect(kbps).toBeGreaterThan(0);
  }, 60_000);
});
