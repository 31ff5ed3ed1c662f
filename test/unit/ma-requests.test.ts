// Reading aggregate requests per style (pure), and the emulab link lab's commands with a recording runner:
// what it asks of `ip` and `tc`, that it never touches another MA's namespaces, and that a failed wiring
// removes what it made.
import { describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError } from '../../services/core/errors.js';
import { silentLogger } from '../../services/core/log.js';
import type { ResourceRequest } from '../../services/generated/fedlab/v1/common.js';
import { NetLab, type CommandRunner } from '../../services/management-authority/netlab.js';
import { normalizeRequest, styleRules, type RequestContext } from '../../services/management-authority/requests.js';

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

/** A runner that records commands and fails those matching `failOn`. */
function recorder(o: { failOn?: RegExp; netem?: boolean } = {}): CommandRunner & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    run: async (argv) => {
      const line = argv.join(' ');
      calls.push(line);
      if (o.failOn?.test(line)) return { code: 2, stdout: '', stderr: 'RTNETLINK answers: Operation not permitted' };
      if (/ netem /.test(line) && !o.netem) return { code: 2, stdout: '', stderr: 'Error: Specified qdisc kind is unknown.' };
      if (line === 'ip netns list')
        return { code: 0, stdout: 'fedlab-abcd-00000001 (id: 3)\nfedlab-ffff-00000002\nsomeone-else\n', stderr: '' };
      return { code: 0, stdout: '', stderr: '' };
    },
  };
}

// NetLab checks for root before anything (even with a fake runner).
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

describe.skipIf(!isRoot)('the link lab', () => {
  const wiring = (endpoints: number, o: { delayMs?: number } = {}) => ({
    name: 'l0',
    index: 0,
    bandwidthKbps: 8000,
    delayMs: o.delayMs ?? 0,
    lossPercent: 0,
    endpoints: Array.from({ length: endpoints }, (_, j) => ({
      netns: `fedlab-abcd-0000000${j + 1}`,
      ifname: 'eth1',
      address: `10.200.0.${j + 1}/24`,
    })),
  });

  it('makes a veth pair inside the two namespaces and shapes both ends with tbf', async () => {
    const r = recorder();
    const lab = new NetLab({ instance: 'abcd', log: silentLogger(), runner: r });
    await lab.createLink(wiring(2));
    expect(r.calls[0]).toBe('ip link add eth1 netns fedlab-abcd-00000001 type veth peer name eth1 netns fedlab-abcd-00000002');
    expect(r.calls.filter((c) => c.includes(' tbf rate 8000kbit '))).toHaveLength(2);
    expect(r.calls.some((c) => c.startsWith('ip link') && !c.includes('netns'))).toBe(false);
  });

  it('wires a LAN through a bridge in the first namespace', async () => {
    const r = recorder();
    const lab = new NetLab({ instance: 'abcd', log: silentLogger(), runner: r });
    await lab.createLink(wiring(3));
    expect(r.calls).toContain('ip -n fedlab-abcd-00000001 link add eth1 type bridge');
    expect(r.calls).toContain('ip link add lan0p2 netns fedlab-abcd-00000001 type veth peer name eth1 netns fedlab-abcd-00000003');
    expect(r.calls).toContain('ip -n fedlab-abcd-00000001 link set lan0p1 master eth1 up');
  });

  it('probes netem instead of assuming it, and refuses delay without it', async () => {
    const r = recorder();
    const lab = new NetLab({ instance: 'abcd', log: silentLogger(), runner: r });
    expect(await lab.netemAvailable()).toBe(false);
    expect(r.calls.some((c) => /^ip netns del fedlab-abcd-probe/.test(c))).toBe(true);
    await expect(lab.createLink(wiring(2, { delayMs: 10 }))).rejects.toThrow(FailedPreconditionError);
    const withNetem = recorder({ netem: true });
    const lab2 = new NetLab({ instance: 'abcd', log: silentLogger(), runner: withNetem });
    await lab2.createLink(wiring(2, { delayMs: 10 }));
    expect(withNetem.calls.some((c) => c.includes('htb rate 8000kbit'))).toBe(true);
    expect(withNetem.calls.some((c) => c.includes('netem delay 10ms'))).toBe(true);
  });

  it('removes what it made when wiring fails, and touches only its own namespaces', async () => {
    const r = recorder({ failOn: /addr add 10\.200\.0\.2/ });
    const lab = new NetLab({ instance: 'abcd', log: silentLogger(), runner: r });
    await expect(lab.createLink(wiring(2))).rejects.toThrow(/Operation not permitted/);
    expect(r.calls.at(-1)).toBe('ip -n fedlab-abcd-00000001 link del eth1');
    await expect(lab.deleteNamespace('someone-else')).rejects.toThrow(/not this MA's/);
    expect(await lab.list()).toEqual(['fedlab-abcd-00000001']);
    expect(await lab.removeOrphans(new Set())).toEqual(['fedlab-abcd-00000001']);
    expect(r.calls).not.toContain('ip netns del fedlab-ffff-00000002');
  });
});
