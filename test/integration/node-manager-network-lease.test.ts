// A container sliver's network lease in the node manager's answers (root, container driver, network section
// on; a node manager in a host of a netns test bed, test/helpers/netns-hosts.ts): CreateSliver's answer,
// GetSliver and ListSlivers carry Sliver.network, and it is what the kernel has — eth0's address inside the
// sliver's namespace (`ip -n <netns> -j addr`), the port block the node DNATs to that address (the
// `port_fwd` map of `nft -j list ruleset`), and a server in the sliver answers at the block's last port on
// the node address. An ALLOCATED sliver's answer names its lease already; its promotion keeps it. The
// lease is written in the admission batch: a restart (kill -9) answers the same. Skipped, saying why, where
// the container driver or `ip netns` cannot run.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { AllocationState, type SliverNetwork } from '../../services/generated/fedlab/v1/common.js';
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
if (skipReason) console.log(`skipping sliver network lease tests: ${skipReason}`);

const SLICE = 'urn:fedlab:plc.test:slice:lease';

describe.skipIf(skipReason !== '')('Sliver.network: the lease in the answers is what the kernel has', () => {
  let tb: TestBed;
  let root: string;
  let dataDir: string;
  let configFile: string;
  let nm: ChildProcess | undefined;
  let client: PromiseClient<typeof NodeManagerService> | undefined;
  let instance = '';
  const chain = async () => ({ chain: (await parties()).ownerChain });
  const h1 = () => tb.hosts[0]!;

  /** eth0's IPv4 address/prefix inside the sliver's namespace. */
  const eth0 = (name: string): string => {
    const ns = `fl-${instance.replace(/^nm-/, '')}-${name}`;
    const links = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' })) as {
      addr_info: { family: string; local: string; prefixlen: number }[];
    }[];
    const a = links[0]!.addr_info.find((x) => x.family === 'inet')!;
    return `${a.local}/${a.prefixlen}`;
  };
  /** The node's forwarded blocks (`first-last` → address), as nft -j lists its port_fwd map in h1. */
  const forwards = (): Map<string, string> => {
    const out = new Map<string, string>();
    const all = JSON.parse(h1().exec(['nft', '-j', 'list', 'ruleset'])) as { nftables: Record<string, unknown>[] };
    for (const o of all.nftables) {
      const map = o.map as { family?: string; table?: string; name?: string; elem?: [unknown, string][] } | undefined;
      if (map?.family !== 'inet' || map.table !== `fedlab-${instance}` || map.name !== 'port_fwd') continue;
      for (const [key, addr] of map.elem ?? []) {
        const range = (key as { range?: [number, number] }).range;
        out.set(range ? `${range[0]}-${range[1]}` : `${String(key)}-${String(key)}`, addr);
      }
    }
    return out;
  };
  /** What the kernel says of a sliver's network, in Sliver.network's terms. */
  const kernelView = (name: string, n: SliverNetwork): { address: string; forwardedTo: string | undefined } => ({
    address: eth0(name),
    forwardedTo: forwards().get(`${n.firstPort}-${n.lastPort}`),
  });

  async function startNm(): Promise<void> {
    const started = await tb.startNodeManager(h1(), configFile);
    nm = started.child;
    const line = started
      .output()
      .split('\n')
      .find((l) => l.includes('"msg":"listening"'))!;
    const port = Number((JSON.parse(line) as { address: string }).address.split(':').pop());
    client = createClient(NodeManagerService, {
      address: `${h1().address}:${port}`,
      tls: tlsOf(await parties(), (await parties()).ma),
      serverUrn: NODE_URN,
      deadlineMs: 60_000,
    });
  }

  beforeAll(async () => {
    tb = await makeTestBed({ hosts: 1 });
    root = tempDir('fedlab-nm-lease-');
    dataDir = join(root, 'data');
    configFile = await writeNmConfig(dataDir, {
      driver: 'container',
      config: {
        log_level: 'info',
        listen: { host: '0.0.0.0', port: 0 },
        container: { uid_base: 1_700_000_000 + Math.floor(Math.random() * 1000) * 65_536, id_ranges: 8 },
        network: { sliver_subnet: '10.89.0.0/24', port_range: '21000-21039', ports_per_sliver: 10, underlay_address: tb.hosts[0]!.address },
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
    // The purge removes the slivers' namespaces too (their names are the machine's, in /run/netns).
    if (dataDir) await purgeInstance(dataDir, 'container');
    await tb?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it('CreateSliver, GetSliver and ListSlivers carry eth0’s address and the DNATed port block', async () => {
    const made = (await client!.createSliver(await withSaJwk(createRequest('lease-a', { sliceUrn: SLICE })), await chain())).sliver!;
    const n = made.network!;
    expect(n).toBeDefined();
    // What the config implies for the first slot: .2 of the subnet, the first block of ports, the bridge's .1.
    expect(n).toEqual({ address: '10.89.0.2/24', gateway: '10.89.0.1', nodeAddress: h1().address, firstPort: 21000, lastPort: 21009 });
    expect(kernelView('lease-a', n)).toEqual({ address: n.address, forwardedTo: n.address.split('/')[0] });

    const got = (await client!.getSliver({ sliverUrn: made.urn }, await chain())).sliver!;
    expect(got.network).toEqual(n);
    const listed = (await client!.listSlivers({ pageSize: 0, pageToken: '', sliceUrn: '' }, await chain())).slivers;
    expect(listed.find((s) => s.urn === made.urn)?.network).toEqual(n);

    // Really forwarded: a server in the sliver at the block's last port answers on the node address.
    const serve = await collectExec(
      client!.exec(
        {
          sliverUrn: made.urn,
          argv: [
            'sh',
            '-c',
            `printf '#!/bin/sh\\necho leased\\n' > /root/a; chmod +x /root/a; setsid busybox nc -ll -p ${n.lastPort} -e /root/a </dev/null >/dev/null 2>&1 & sleep 0.3; echo up`,
          ],
          env: {},
          timeoutMs: 20_000,
        },
        await chain(),
      ),
    );
    expect(serve.stdout).toContain('up');
    expect(tb.outside.exec(['busybox', 'nc', '-w', '3', n.nodeAddress, String(n.lastPort)])).toContain('leased');
  }, 120_000);

  it('an ALLOCATED sliver’s answer names its lease; provisioning keeps it and the kernel has it; a restart answers the same', async () => {
    const urn = 'urn:fedlab:plc.test:sliver:lease-b';
    const held = (
      await client!.createSliver(
        await withSaJwk(
          createRequest('lease-b', {
            sliceUrn: SLICE,
            requestId: 'lease-b-alloc',
            allocationState: AllocationState.ALLOCATION_STATE_ALLOCATED,
            start: false,
          }),
        ),
        await chain(),
      )
    ).sliver!;
    expect(held.allocationState).toBe(AllocationState.ALLOCATION_STATE_ALLOCATED);
    const n = held.network!;
    expect(n).toEqual({ address: '10.89.0.3/24', gateway: '10.89.0.1', nodeAddress: h1().address, firstPort: 21010, lastPort: 21019 });

    const made = (
      await client!.createSliver(await withSaJwk(createRequest('lease-b', { sliceUrn: SLICE, requestId: 'lease-b-prov' })), await chain())
    ).sliver!;
    expect(made.urn).toBe(urn);
    expect(made.allocationState).toBe(AllocationState.ALLOCATION_STATE_PROVISIONED);
    expect(made.network).toEqual(n);
    expect(kernelView('lease-b', n)).toEqual({ address: n.address, forwardedTo: '10.89.0.3' });

    // Written with the record: after kill -9 and a restart the answers are the same, and so is the kernel.
    nm!.kill('SIGKILL');
    expect(await exited(nm!)).toBe('SIGKILL');
    client!.close();
    await startNm();
    for (const name of ['lease-a', 'lease-b']) {
      const got = (await client!.getSliver({ sliverUrn: `urn:fedlab:plc.test:sliver:${name}` }, await chain())).sliver!;
      expect(kernelView(name, got.network!)).toEqual({ address: got.network!.address, forwardedTo: got.network!.address.split('/')[0] });
    }
    expect((await client!.getSliver({ sliverUrn: urn }, await chain())).sliver!.network).toEqual(n);
  }, 180_000);
});
