// Reading aggregate requests per style (pure), and — the site host's link lab is gone, the node managers wire
// links now — the node manager's link devices with recording tools: what they ask of `ip`, `tc` and `bridge` for a
// veth pair, a LAN hub (bridge and VXLAN) and its ports, shaping with netem only where the kernel has it, and
// that removing a sliver's ports never touches another node manager's devices.
import { describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError } from '../../services/core/errors.js';
import type { ResourceRequest } from '../../services/generated/fedlab/v1/common.js';
import { normalizeRequest, styleRules, type RequestContext } from '../../services/management-authority/requests.js';
import { LinkDevices, type DeviceInfo, type InterfaceEnd } from '../../services/node-manager/network/link-devices.js';
import { linkAlias, linkBridgeName, linkPortName, linkVxlanName } from '../../services/node-manager/network/link-names.js';
import { shapingPlan, type ShapingPlan } from '../../services/node-manager/network/link-shaping.js';

const defaults = { cpuMillis: 250, memMb: 256, diskMb: 1024, pids: 256 };
const ctx = (style: 'planetlab' | 'emulab' | 'protogeni'): RequestContext => ({
  rules: styleRules(style),
  domain: 'x.test',
  defaults,
  maxLinkKbps: 1_000_000,
});
const n = (name: string) => `urn:fedlab:x.test:node:${name}`;
function req(o: Partial<ResourceRequest> = {}): ResourceRequest {
  return {
    nodes: { nodeUrns: [n('a'), n('b')], count: 0, clientIds: ['a', 'b'] },
    links: [],
    exclusive: false,
    requestDocument: '',
    requestDocumentFormat: '',
    ...o,
  };
}

describe('request reading', () => {
  it('fills defaults, forces whole nodes on emulab, keeps client ids', () => {
    const r = normalizeRequest(req({ resources: { cpuMillis: 500, memMb: 0, diskMb: 0, pids: 0, bandwidthKbps: 0 } }), ctx('emulab'));
    expect(r.slivers.map((s) => [s.clientId, s.nodeUrn, s.exclusive, s.resources.cpuMillis, s.resources.memMb])).toEqual([
      ['a', n('a'), true, 500, 256],
      ['b', n('b'), true, 500, 256],
    ]);
    const shared = normalizeRequest(req(), ctx('planetlab'));
    expect(shared.slivers.every((s) => !s.exclusive)).toBe(true);
    const counted = normalizeRequest(
      req({
        nodes: { nodeUrns: [], count: 3, clientIds: [], minFree: { cpuMillis: 1000, memMb: 0, diskMb: 0, pids: 0, bandwidthKbps: 0 } },
      }),
      ctx('planetlab'),
    );
    expect(counted.slivers.map((s) => s.clientId)).toEqual(['0', '1', '2']);
    expect(counted.slivers[0]?.minFree.cpuMillis).toBe(1000);
  });

  it('enforces each style and refuses bad links, naming the rule', () => {
    const link = { name: 'l0', endpoints: ['a', 'b'], bandwidthKbps: 1000, delayMs: 0, lossPercent: 0 };
    expect(normalizeRequest(req({ links: [link] }), ctx('emulab')).links).toHaveLength(1);
    expect(() => normalizeRequest(req({ links: [link] }), ctx('planetlab'))).toThrow(FailedPreconditionError);
    expect(() => normalizeRequest(req({ links: [link] }), ctx('protogeni'))).toThrow(/emulab-style/);
    expect(() => normalizeRequest(req({ exclusive: true }), ctx('planetlab'))).toThrow(/never given whole/);
    expect(() =>
      normalizeRequest(req({ requestDocument: '{}', requestDocumentFormat: 'fedlab-rspec+json', nodes: undefined }), ctx('emulab')),
    ).toThrow(/takes no request documents/);
    const bad: [Partial<typeof link>, RegExp][] = [
      [{ endpoints: ['a'] }, /at least two/],
      [{ endpoints: ['a', 'zz'] }, /not a client id/],
      [{ endpoints: ['a', 'urn:fedlab:y.test:node:q'] }, /another site \(y\.test\)/],
      [{ bandwidthKbps: 2_000_000 }, /bandwidth_kbps/],
      [{ lossPercent: 101 }, /loss_percent/],
      [{ name: 'bad name' }, /name/],
    ];
    for (const [over, msg] of bad) expect(() => normalizeRequest(req({ links: [{ ...link, ...over }] }), ctx('emulab'))).toThrow(msg);
    expect(() => normalizeRequest(req({ links: [link, link] }), ctx('emulab'))).toThrow(/named twice/);
  });

  it('refuses malformed selections', () => {
    const cases: [Partial<ResourceRequest>, RegExp][] = [
      [{ nodes: { nodeUrns: [], count: 0, clientIds: [] } }, /count/],
      [{ nodes: { nodeUrns: [n('a')], count: 2, clientIds: [] } }, /count/],
      [{ nodes: { nodeUrns: [n('a'), n('a')], count: 0, clientIds: [] } }, /twice/],
      [{ nodes: { nodeUrns: ['urn:fedlab:y.test:node:a'], count: 0, clientIds: [] } }, /not at this site/],
      [{ nodes: { nodeUrns: ['urn:fedlab:x.test:slice:a'], count: 0, clientIds: [] } }, /not a node URN/],
      [{ nodes: { nodeUrns: [n('a'), n('b')], count: 0, clientIds: ['x', 'x'] } }, /used twice/],
      [{ resources: { cpuMillis: 5_000_000, memMb: 0, diskMb: 0, pids: 0, bandwidthKbps: 0 } }, /absurd/],
      [{ nodes: undefined }, /request\.nodes/],
    ];
    for (const [over, msg] of cases) expect(() => normalizeRequest(req(over), ctx('planetlab'))).toThrow(msg);
  });

  it('reads protogeni request documents strictly', () => {
    const doc = {
      type: 'request',
      nodes: [{ client_id: 'w', component_id: n('a'), exclusive: true, resources: { mem_mb: 128 } }, { client_id: 'd' }],
    };
    const r = normalizeRequest(
      req({ nodes: undefined, requestDocument: JSON.stringify(doc), requestDocumentFormat: 'fedlab-rspec+json' }),
      ctx('protogeni'),
    );
    expect(r.documentFormat).toBe('fedlab-rspec+json');
    expect(r.slivers.map((s) => [s.clientId, s.nodeUrn, s.exclusive, s.resources.memMb])).toEqual([
      ['w', n('a'), true, 128],
      ['d', undefined, false, 256],
    ]);
    const docReq = (d: unknown, fmt = 'fedlab-rspec+json') =>
      req({ nodes: undefined, requestDocument: typeof d === 'string' ? d : JSON.stringify(d), requestDocumentFormat: fmt });
    expect(() => normalizeRequest(docReq(doc, 'rspec-v3'), ctx('protogeni'))).toThrow(/request_document_format/);
    expect(() => normalizeRequest(docReq('{nope'), ctx('protogeni'))).toThrow(/not JSON/);
    expect(() => normalizeRequest(docReq({ nodes: [] }), ctx('protogeni'))).toThrow(/at least one node/);
    expect(() => normalizeRequest(docReq({ nodes: [{ client_id: 'a', colour: 1 }] }), ctx('protogeni'))).toThrow(/unknown key "colour"/);
    expect(() => normalizeRequest(docReq({ nodes: [{ client_id: 'a', resources: { cpu_millis: -1 } }] }), ctx('protogeni'))).toThrow(
      InvalidArgumentError,
    );
    expect(() =>
      normalizeRequest(req({ requestDocument: JSON.stringify(doc), requestDocumentFormat: 'fedlab-rspec+json' }), ctx('protogeni')),
    ).toThrow(/authoritative/);
  });
});

/** Recording `ip`, `tc` and `bridge`: every call as one line; `ip -j link show` answers with `devices`. */
function recorder(devices: DeviceInfo[] = []) {
  const calls: string[] = [];
  const run = {
    ip: async (args: readonly string[], input?: string) => {
      calls.push(`ip ${args.join(' ')}${input ? ` <<${input.trim().split('\n').join('; ')}` : ''}`);
      return '';
    },
    ipJson: async (args: readonly string[]) => {
      calls.push(`ip -j ${args.join(' ')}`);
      if (args.join(' ') === 'link show') return devices;
      if (args[0] === 'addr') return [{ mtu: 1500, addr_info: [{ local: '10.9.0.1' }] }];
      return [];
    },
  };
  const tools = {
    tc: async (args: readonly string[]) => {
      calls.push(`tc ${args.join(' ')}`);
      return '';
    },
    bridge: async (args: readonly string[]) => {
      calls.push(`bridge ${args.join(' ')}`);
      return '';
    },
    apply: async (netns: string, plan: ShapingPlan) => {
      for (const c of plan.commands) calls.push(`tc -n ${netns} ${c.join(' ')}`);
    },
    clear: async (netns: string, dev: string) => void calls.push(`tc -n ${netns} qdisc del dev ${dev} root`),
  };
  const devices$ = new LinkDevices('abcd', 'site1', run as never, tools as never);
  return { calls, devices: devices$ };
}

const end = (
  netns: string,
  address: string,
  shaping: ShapingPlan = shapingPlan('eth1', { bandwidthKbps: 8000, delayMs: 0, lossPercent: 0 }, false, 'l0'),
): InterfaceEnd => ({
  netns,
  ifname: 'eth1',
  mac: '02:00:00:00:00:01',
  address,
  shaping,
});

describe('link devices on a node', () => {
  it('makes a veth pair inside the two namespaces and shapes both ends with tbf', async () => {
    const r = recorder();
    await r.devices.pair(end('fl-abcd-s1', '10.200.0.1/24'), end('fl-abcd-s2', '10.200.0.2/24'));
    expect(r.calls).toContain('ip link add eth1 netns fl-abcd-s1 type veth peer name eth1 netns fl-abcd-s2');
    expect(r.calls.filter((c) => c.includes(' tbf rate 8000kbit '))).toHaveLength(2);
    expect(r.calls.some((c) => c.startsWith('ip link') && !c.includes('netns'))).toBe(false);
  });

  it('wires a LAN through a bridge and a VXLAN device on the host, each sliver on a port', async () => {
    const r = recorder();
    const mtu = await r.devices.ensureHub(5000, '10.9.0.1', ['10.9.0.2', '10.9.0.1'], []);
    expect(mtu).toBe(1450);
    const bridge = linkBridgeName('site1', 5000);
    const vxlan = linkVxlanName('site1', 5000);
    expect(r.calls).toContain(`ip link add ${bridge} type bridge`);
    expect(r.calls).toContain(`ip link add ${vxlan} mtu 1450 type vxlan id 5000 local 10.9.0.1 dstport 4789`);
    // A flood entry towards the other host only, never towards this one.
    expect(r.calls.filter((c) => c.startsWith(`bridge fdb append 00:00:00:00:00:00 dev ${vxlan}`))).toEqual([
      `bridge fdb append 00:00:00:00:00:00 dev ${vxlan} dst 10.9.0.2`,
    ]);
    await r.devices.attach(5000, 's1', end('fl-abcd-s1', '10.200.0.1/24'), mtu, []);
    const port = linkPortName('abcd', 's1', 'eth1');
    expect(r.calls.find((c) => c.startsWith('ip -batch -'))).toMatch(
      new RegExp(`link add ${port} type veth peer name eth1 netns fl-abcd-s1;.* master ${bridge} up`),
    );
  });

  it('shapes with netem only where the kernel has it, and refuses delay without it naming the link', () => {
    expect(() => shapingPlan('eth1', { bandwidthKbps: 8000, delayMs: 10, lossPercent: 0 }, false, 'l0')).toThrow(FailedPreconditionError);
    expect(() => shapingPlan('eth1', { bandwidthKbps: 8000, delayMs: 10, lossPercent: 0 }, false, 'l0')).toThrow(/link l0 asks for delay/);
    const plan = shapingPlan('eth1', { bandwidthKbps: 8000, delayMs: 10, lossPercent: 0 }, true, 'l0');
    expect(plan.applied).toEqual(['htb rate 8000kbit', 'netem delay 10ms']);
    expect(plan.commands.some((c) => c.includes('netem') && c.includes('10ms'))).toBe(true);
  });

  it("removes a sliver's ports and touches no other node manager's devices", async () => {
    const mine = linkPortName('abcd', 's1', 'eth1');
    const theirs = linkPortName('ffff', 's1', 'eth1');
    const r = recorder([
      { ifname: mine, ifalias: linkAlias('abcd', { kind: 'port', vni: 5000, sliver: 's1', ifname: 'eth1' }) },
      { ifname: theirs, ifalias: linkAlias('ffff', { kind: 'port', vni: 5000, sliver: 's1', ifname: 'eth1' }) },
      { ifname: 'eth0' },
    ]);
    await r.devices.detach('s1');
    expect(r.calls.filter((c) => c.startsWith('ip link del'))).toEqual([`ip link del ${mine}`]);
  });
});
