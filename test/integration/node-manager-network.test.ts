// The sliver network for real (root, container driver): a node manager runs inside a host of a netns test bed
// (test/helpers/netns-hosts.ts) with the network section on. A sliver reaches the "Internet" (a namespace
// with no route back to the sliver subnet, so an answer proves NAT); a server in the sliver answers on the
// node address at a port of the sliver's block; slivers of two slices cannot reach each other on the bridge
// while two of one slice can; a sliver reaches neither the node manager's gRPC nor its SSH port, nor another
// host's underlay address. Deletes, and a kill -9 with a restart, leave no namespace, veth or nftables element
// of a sliver (listed with ip and nft -j, never asked of the node manager). Bad network config stops start-up.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { instanceId } from '../../services/node-manager/index.js';
import { exited } from '../helpers/cli.js';
import {
  canContain,
  cannotContainReason,
  collectExec,
  createRequest,
  NODE_URN,
  parties,
  purgeInstance,
  tempDir,
  tlsOf,
  withSaJwk,
  writeNmConfig,
} from '../helpers/node-manager.js';
import { makeTestBed, netnsSupport, type TestBed } from '../helpers/netns-hosts.js';

const bed = netnsSupport();
const skipReason = !canContain ? cannotContainReason : !bed.ok ? bed.reason : '';
if (skipReason) console.log(`skipping sliver network tests: ${skipReason}`);

const SLICE_A = 'urn:fedlab:plc.test:slice:net-a';
const SLICE_B = 'urn:fedlab:plc.test:slice:net-b';

describe.skipIf(skipReason !== '')('the sliver network (container driver, node manager in its own host namespace)', () => {
  let tb: TestBed;
  let root: string;
  let dataDir: string;
  let configFile: string;
  let nm: ChildProcess | undefined;
  let client: PromiseClient<typeof NodeManagerService> | undefined;
  let grpcPort = 0;
  let sshPort = 0;
  let instance = '';
  const chain = async () => ({ chain: (await parties()).ownerChain });

  const h1 = () => tb.hosts[0]!;
  const h2 = () => tb.hosts[1]!;
  /** `nft -j list ruleset` elements of the node's tables, as the host (h1) has them. */
  const nftJson = () => JSON.parse(h1().exec(['nft', '-j', 'list', 'ruleset'])) as { nftables: Record<string, unknown>[] };
  const elements = () => {
    const out: string[] = [];
    for (const o of nftJson().nftables) {
      const set = (o.set ?? o.map) as { table?: string; name?: string; elem?: unknown[] } | undefined;
      if (set?.table === `fedlab-${instance}`) for (const e of set.elem ?? []) out.push(`${set.name}:${JSON.stringify(e)}`);
    }
    return out;
  };
  const sliverNetns = () => readdirSync('/run/netns').filter((n) => n.startsWith(`fl-${instance.replace(/^nm-/, '')}-`));
  const veths = () =>
    (JSON.parse(h1().exec(['ip', '-j', 'link', 'show', 'type', 'veth'])) as { ifname: string; ifalias?: string }[])
      .filter((l) => l.ifalias?.startsWith(`fedlab ${instance} `))
      .map((l) => l.ifalias!.split(' ')[2]);
  const eth0Address = (name: string) => {
    const ns = `fl-${instance.replace(/^nm-/, '')}-${name}`;
    const links = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' })) as {
      addr_info: { family: string; local: string }[];
    }[];
    return links[0]!.addr_info.find((a) => a.family === 'inet')!.local;
  };
  const run = async (urn: string, script: string) =>
    collectExec(client!.exec({ sliverUrn: urn, argv: ['sh', '-c', script], env: {}, timeoutMs: 20_000 }, await chain()));
  const create = async (name: string, sliceUrn: string) =>
    (await client!.createSliver(await withSaJwk(createRequest(name, { sliceUrn })), await chain())).sliver!;
  /** A TCP server in a sliver that answers `text` to every connection. */
  const serveIn = (urn: string, port: number, text: string) =>
    run(
      urn,
      `printf '#!/bin/sh\\necho ${text}\\n' > /root/answer-${port}; chmod +x /root/answer-${port}; setsid busybox nc -ll -p ${port} -e /root/answer-${port} </dev/null >/dev/null 2>&1 & sleep 0.3; echo up`,
    );
  const connectFrom = (urn: string, host: string, port: number) => run(urn, `busybox nc -w 2 ${host} ${port} </dev/null; echo rc=$?`);

  async function startNm(): Promise<void> {
    const started = await tb.startNodeManager(h1(), configFile);
    nm = started.child;
    const line = started
      .output()
      .split('\n')
      .find((l) => l.includes('"msg":"listening"'))!;
    grpcPort = Number((JSON.parse(line) as { address: string }).address.split(':').pop());
    client = createClient(NodeManagerService, {
      address: `${h1().address}:${grpcPort}`,
      tls: tlsOf(await parties(), (await parties()).ma),
      serverUrn: NODE_URN,
      deadlineMs: 60_000,
    });
    const info = await client.getNodeInfo({}, await chain());
    sshPort = Number(info.node?.ssh?.address.split(':').pop());
  }

  beforeAll(async () => {
    tb = await makeTestBed({ hosts: 2 });
    root = tempDir('fedlab-nm-net-');
    dataDir = join(root, 'data');
    configFile = await writeNmConfig(dataDir, {
      driver: 'container',
      config: {
        log_level: 'info',
        listen: { host: '0.0.0.0', port: 0 },
        ssh: { listen: '0.0.0.0:0' },
        container: { uid_base: 1_600_000_000 + Math.floor(Math.random() * 1000) * 65_536, id_ranges: 8 },
        network: { sliver_subnet: '10.88.0.0/16', port_range: '20000-20079', ports_per_sliver: 10, underlay_address: tb.hosts[0]!.address },
      },
    });
    instance = instanceId(dataDir);
    await startNm();
  }, 180_000);

  afterAll(async () => {
    client?.close();
    if (nm && nm.exitCode === null && nm.signalCode === null) {
      nm.kill('SIGTERM');
      await exited(nm);
    }
    // The purge removes the slivers' namespace names too (the machine's, in /run/netns); h1's devices go with it.
    if (dataDir) await purgeInstance(dataDir, 'container');
    await tb?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it('a sliver reaches the outside through NAT, and its server answers on the node address at a port of its block', async () => {
    const a1 = await create('net-a1', SLICE_A);
    expect(sliverNetns()).toContain(`fl-${instance.replace(/^nm-/, '')}-net-a1`);
    expect(eth0Address('net-a1')).toBe('10.88.0.2');
    const script = join(root, 'outside-answer');
    writeFileSync(script, '#!/bin/sh\necho from-outside\n');
    chmodSync(script, 0o755);
    tb.outside.spawn(['busybox', 'nc', '-ll', '-p', '8080', '-e', script]);
    await new Promise((r) => setTimeout(r, 300));
    // The outside has no route to 10.88.0.0/16: the answer comes back only to the masqueraded address.
    const out = await connectFrom(a1.urn, tb.outside.publicAddress, 8080);
    expect(out.stdout).toContain('from-outside');

    // Slot 0: ports 20000-20009 on the node address; port 80 binds too (the namespace allows low ports).
    expect((await serveIn(a1.urn, 20005, 'from-sliver')).stdout).toContain('up');
    expect((await serveIn(a1.urn, 80, 'low-port')).stdout).toContain('up');
    const inbound = tb.outside.exec(['busybox', 'nc', '-w', '3', h1().address, '20005']);
    expect(inbound).toContain('from-sliver');
    // A port outside its block is not forwarded.
    expect(() => tb.outside.exec(['busybox', 'nc', '-w', '2', h1().address, '20015'])).toThrow();
  }, 120_000);

  it('slivers of different slices cannot reach each other on the bridge; two of one slice can', async () => {
    const a1 = 'urn:fedlab:plc.test:sliver:net-a1';
    const a2 = await create('net-a2', SLICE_A);
    const b1 = await create('net-b1', SLICE_B);
    await serveIn(a2.urn, 7000, 'same-slice');
    await serveIn(b1.urn, 7000, 'other-slice');
    const a2Addr = eth0Address('net-a2');
    const b1Addr = eth0Address('net-b1');
    expect(a2Addr).not.toBe(b1Addr);
    expect((await connectFrom(a1, a2Addr, 7000)).stdout).toContain('same-slice');
    const cross = await connectFrom(a1, b1Addr, 7000);
    expect(cross.stdout).not.toContain('other-slice');
    expect(cross.stdout).toMatch(/rc=[1-9]/);
    const back = await connectFrom(b1.urn, a2Addr, 7000);
    expect(back.stdout).not.toContain('same-slice');
    // Its root cannot change its interfaces (no CAP_NET_ADMIN), and its port passes only its own address anyway.
    const change = await run(b1.urn, 'ip addr add 10.88.0.77/16 dev eth0 2>&1; ip link set eth0 down 2>&1; echo rc=$?');
    expect(change.stdout).toMatch(/not permitted/i);
    expect(eth0Address('net-b1')).toBe(b1Addr);
    const ports = h1().exec(['nft', 'list', 'set', 'bridge', `fedlab-${instance}`, 'port_addr']);
    expect(ports).toContain(b1Addr);
  }, 120_000);

  it("a sliver reaches neither the node manager's gRPC or SSH port nor another host's underlay address", async () => {
    const a1 = 'urn:fedlab:plc.test:sliver:net-a1';
    const script = join(root, 'h2-answer');
    writeFileSync(script, '#!/bin/sh\necho from-h2\n');
    chmodSync(script, 0o755);
    h2().spawn(['busybox', 'nc', '-ll', '-p', '9000', '-e', script]);
    await new Promise((r) => setTimeout(r, 300));
    // Controls: from the outside both are reachable.
    expect(tb.outside.exec(['busybox', 'nc', '-w', '3', h2().address, '9000'])).toContain('from-h2');
    for (const [host, port] of [
      [h1().address, grpcPort],
      ['10.88.0.1', grpcPort],
      [h1().address, sshPort],
      ['10.88.0.1', sshPort],
      [h2().address, 9000],
    ] as const) {
      const out = await connectFrom(a1, host, port);
      expect(out.stdout, `${host}:${port}`).toMatch(/rc=[1-9]/);
      expect(out.stdout).not.toContain('SSH-');
      expect(out.stdout).not.toContain('from-h2');
    }
  }, 120_000);

  it('a delete, and a kill -9 with a restart and deletes, leave no namespace, veth or nftables element', async () => {
    await client!.deleteSliver({ sliverUrn: 'urn:fedlab:plc.test:sliver:net-a2' }, await chain());
    expect(sliverNetns().map((n) => n.split('-').pop())).not.toContain('a2');
    expect(veths()).not.toContain('net-a2');
    expect(elements().some((e) => e.includes('10.88.0.3'))).toBe(false);
    expect(veths().sort()).toEqual(['net-a1', 'net-b1']);

    nm!.kill('SIGKILL');
    expect(await exited(nm!)).toBe('SIGKILL');
    client!.close();
    // While it is down: a namespace no record explains.
    const ghost = `fl-${instance.replace(/^nm-/, '')}-ghost`;
    execFileSync('ip', ['netns', 'add', ghost]);
    await startNm();
    expect(sliverNetns()).not.toContain(ghost);
    // The survivors' networks are whole: NAT still works.
    expect((await connectFrom('urn:fedlab:plc.test:sliver:net-a1', tb.outside.publicAddress, 8080)).stdout).toContain('from-outside');
    expect(tb.outside.exec(['busybox', 'nc', '-w', '3', h1().address, '20005'])).toContain('from-sliver');

    for (const n of ['net-a1', 'net-b1']) await client!.deleteSliver({ sliverUrn: `urn:fedlab:plc.test:sliver:${n}` }, await chain());
    expect(sliverNetns()).toEqual([]);
    expect(veths()).toEqual([]);
    expect(elements()).toEqual([]);
  }, 180_000);

  it('bad network config is a clear start-up error', async () => {
    const bad = async (network: Record<string, unknown>) => {
      const dir = join(tempDir('fedlab-nm-netbad-'), 'data');
      const file = await writeNmConfig(dir, { driver: 'container', config: { log_level: 'info', network } });
      const err = await tb.startNodeManager(h2(), file, 60_000).then(
        () => '',
        (e: Error) => e.message,
      );
      rmSync(join(dir, '..'), { recursive: true, force: true });
      return err;
    };
    // The sliver subnet holds the host's own underlay address.
    expect(await bad({ sliver_subnet: tb.underlay })).toMatch(/sliver_subnet .* clashes with the node's own address/);
    expect(await bad({ port_range: '30000-20000' })).toMatch(/network\.port_range/);
    expect(await bad({ bridge: 'a-bridge-name-too-long' })).toMatch(/network\.bridge/);
  }, 120_000);
});
