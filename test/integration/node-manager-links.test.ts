// A node manager's checks of CreateSliver's link interfaces, before anything is written (no root needed): fields
// (INVALID_ARGUMENT naming the interface, field and link), what the node cannot wire (FAILED_PRECONDITION: far
// endpoints without an underlay address, an address clashing with the sliver subnet or the underlay network, delay
// or loss without netem, a node manager without the sliver network), and what will be applied (tbf, htb + netem).
import { status as Status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import type { FedlabError } from '../../services/core/errors.js';
import { codeForKind } from '../../services/core/rpc/status.js';
import type { SliverInterface } from '../../services/generated/fedlab/v1/common.js';
import { LinkWirer, checkInterfaces } from '../../services/node-manager/network/links.js';
import { NetCommands } from '../../services/node-manager/network/net-command.js';
import { parseCidr } from '../../services/node-manager/network/ipv4.js';
import { TcCommands } from '../../services/node-manager/network/link-shaping.js';
import type { NetworkPlan } from '../../services/node-manager/network/network-plan.js';
import { createDriver } from '../../services/node-manager/drivers/select.js';
import { silentLogger } from '../../services/core/log.js';
import { tempDir } from '../helpers/node-manager.js';
import { rmSync } from 'node:fs';

const plan = (underlay: boolean): NetworkPlan => ({
  subnet: parseCidr('10.88.0.0/16'),
  gateway: '10.88.0.1',
  bridge: 'flbr0',
  uplink: 'eth0',
  nodeAddress: '192.0.2.10',
  firstPort: 20000,
  lastPort: 20999,
  portsPerSliver: 10,
  capacity: 100,
  ...(underlay ? { underlayAddress: '10.0.0.2', underlayNetwork: parseCidr('10.0.0.0/24') } : {}),
});
const none = { get: () => undefined, list: () => [] };
const wirer = (o: { underlay?: boolean; netem?: boolean } = {}) =>
  new LinkWirer('nm-test', 'site-test', plan(o.underlay ?? true), none, o.netem ?? false, new TcCommands(), new NetCommands());
const iface = (o: Partial<SliverInterface> = {}, w: Partial<NonNullable<SliverInterface['wiring']>> = {}): SliverInterface => ({
  link: 'lan0',
  name: 'eth1',
  address: '10.200.0.1/24',
  bandwidthKbps: 50_000,
  delayMs: 0,
  lossPercent: 0,
  wiring: { mac: '02:11:22:33:44:55', vni: 4711, remoteUnderlays: ['10.0.0.3'], applied: [], ...w },
  ...o,
});
const refusal = (f: () => unknown): { code: number; message: string } => {
  try {
    f();
  } catch (err) {
    return { code: codeForKind((err as FedlabError).kind), message: (err as Error).message };
  }
  throw new Error('not refused');
};

describe('a node manager checks link interfaces before anything is written', () => {
  const dir = tempDir('fedlab-nm-links-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('says what it will apply: tbf at the bandwidth, nothing unshaped, htb with netem where netem is', () => {
    expect(wirer().check([iface()])[0]!.wiring!.applied).toEqual(['tbf rate 50000kbit burst 62500 latency 50ms']);
    expect(wirer().check([iface({ bandwidthKbps: 0 })])[0]!.wiring!.applied).toEqual([]);
    expect(wirer({ netem: true }).check([iface({ delayMs: 10, lossPercent: 1 })])[0]!.wiring!.applied).toEqual([
      'htb rate 50000kbit',
      'netem delay 10ms loss 1%',
    ]);
    // Whatever a request says it applied is replaced by what this node will apply.
    expect(wirer().check([iface({}, { applied: ['made up'] })])[0]!.wiring!.applied).toEqual([
      'tbf rate 50000kbit burst 62500 latency 50ms',
    ]);
  });

  it('refuses malformed interfaces with INVALID_ARGUMENT naming the interface, field and link', () => {
    const cases: [string, SliverInterface[], RegExp][] = [
      ['eth0', [iface({ name: 'eth0' })], /interfaces\[0\]\.name \(link lan0\): must be eth1 to eth99/],
      ['a name twice', [iface(), iface({ link: 'l2' }, { vni: 4712 })], /interfaces\[1\]\.name \(link l2\): eth1 is named twice/],
      ['a bad address', [iface({ address: '10.200.0.1' })], /interfaces\[0\]\.address .*prefix length/],
      ['a negative bandwidth', [iface({ bandwidthKbps: -1 })], /bandwidth_kbps/],
      ['loss over 100', [iface({ lossPercent: 101 })], /loss_percent/],
      ['no wiring', [{ ...iface(), wiring: undefined }], /interfaces\[0\]\.wiring \(link lan0\)/],
      ['a global MAC', [iface({}, { mac: '00:11:22:33:44:55' })], /wiring\.mac .*locally administered/],
      ['a multicast MAC', [iface({}, { mac: '03:11:22:33:44:55' })], /wiring\.mac/],
      ['VNI 0', [iface({}, { vni: 0 })], /wiring\.vni .*1 to 16777215/],
      ['one VNI twice', [iface(), iface({ name: 'eth2' })], /wiring\.vni .*4711 is used by two interfaces/],
      ['a far underlay that is no address', [iface({}, { remoteUnderlays: ['h2.example'] })], /wiring\.remote_underlays/],
      ['a far underlay twice', [iface({}, { remoteUnderlays: ['10.0.0.3', '10.0.0.3'] })], /names an address twice/],
    ];
    for (const [what, ifaces, msg] of cases) {
      const r = refusal(() => wirer().check(ifaces));
      expect(r.code, what).toBe(Status.INVALID_ARGUMENT);
      expect(r.message, what).toMatch(msg);
    }
  });

  it('refuses what this node cannot wire with FAILED_PRECONDITION naming the link', () => {
    const cases: [string, () => unknown, RegExp][] = [
      [
        'far endpoints without an underlay address',
        () => wirer({ underlay: false }).check([iface()]),
        /link lan0\): this node has no underlay address/,
      ],
      [
        'a clash with the sliver subnet',
        () => wirer().check([iface({ address: '10.88.5.1/24' })]),
        /clashes with this node's sliver subnet/,
      ],
      [
        'a clash with the underlay network',
        () => wirer().check([iface({ address: '10.0.0.9/24' })]),
        /clashes with this node's underlay network/,
      ],
      [
        'delay without netem',
        () => wirer().check([iface({ delayMs: 5 })]),
        /link lan0 asks for delay or loss, but this node's kernel has no netem/,
      ],
    ];
    for (const [what, f, msg] of cases) {
      const r = refusal(f);
      expect(r.code, what).toBe(Status.FAILED_PRECONDITION);
      expect(r.message, what).toMatch(msg);
    }
    // A same-node link needs no underlay address.
    expect(wirer({ underlay: false }).check([iface({}, { remoteUnderlays: [] })])).toHaveLength(1);
  });

  it('a node manager without the sliver network takes no interfaces, and any without them', () => {
    const driver = createDriver({ kind: 'process', workRoot: dir, instance: 'nm-test', netNamespace: false, log: silentLogger() });
    const r = refusal(() => checkInterfaces([iface()], driver));
    expect(r.code).toBe(Status.FAILED_PRECONDITION);
    expect(r.message).toMatch(/does not wire link interfaces \(driver process, no network section\)/);
    expect(checkInterfaces([], driver)).toEqual([]);
  });
});
