// The container driver for real (root, namespaces, cgroups v1 or v2), through the node manager's gRPC API
// over mTLS: slivers of different slices cannot see each other's processes or files; a memory hog in a
// 64 MB sliver is killed by the kernel while its neighbour keeps running; CPU limits hold within 20%
// (measured from the cgroup's CPU accounting over a window); the disk quota check fails a sliver clearly;
// 50 concurrent creates never over-commit; and refusals and deletes leave no cgroup, process or directory.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationalState, SliverIsolation } from '../../services/generated/fedlab/v1/common.js';
import type { CreateSliverResponse } from '../../services/generated/fedlab/v1/node_manager.js';
import { Cgroups } from '../../services/node-manager/drivers/cgroups.js';
import { instanceId } from '../../services/node-manager/index.js';
import {
  canContain,
  cannotContainReason,
  collectExec,
  containerCheck,
  createRequest,
  createSliver,
  runcList,
  startNodeManager,
  withSaJwk,
  type NmHarness,
} from '../helpers/node-manager.js';
import { waitFor } from '../helpers/servers.js';

if (!canContain) console.log(`skipping container driver tests: ${cannotContainReason}`);

const res = (o: { cpuMillis?: number; memMb?: number; diskMb?: number; pids?: number }) => ({
  cpuMillis: 100,
  memMb: 64,
  diskMb: 64,
  pids: 64,
  bandwidthKbps: 0,
  ...o,
});

describe.skipIf(!canContain)('container driver through the node manager', () => {
  let h: NmHarness;
  let cgroups: Cgroups;
  const run = async (urn: string, script: string, timeoutMs = 0, deadlineMs?: number) =>
    collectExec(
      h
        .client()
        .exec(
          { sliverUrn: urn, argv: ['sh', '-c', script], env: {}, timeoutMs },
          { chain: h.parties.ownerChain, ...(deadlineMs ? { deadlineMs } : {}) },
        ),
    );
  const cgroupNames = async () => (await cgroups.list()).sort();
  const runcNames = () =>
    runcList(h.dataDir)
      .map((c) => c.id)
      .sort();
  const dirNames = () => (existsSync(join(h.dataDir, 'slivers')) ? readdirSync(join(h.dataDir, 'slivers')).sort() : []);

  beforeAll(async () => {
    h = await startNodeManager({
      driver: 'container',
      config: { capacity: { cpu_millis: 1500, mem_mb: 4096, disk_mb: 8192, pids: 4096, slivers: 100 }, disk_check_interval_ms: 200 },
    });
    if (!containerCheck.ok) throw new Error('unreachable');
    cgroups = new Cgroups(containerCheck.layout, instanceId(h.dataDir));
  });
  afterAll(async () => {
    await h?.destroy();
  });

  it("two slivers of different slices see neither each other's processes nor files, and each runs as root of its own user namespace", async () => {
    const a = await createSliver(h, 'iso-a', { sliceUrn: 'urn:fedlab:plc.test:slice:alpha' });
    const b = await createSliver(h, 'iso-b', { sliceUrn: 'urn:fedlab:plc.test:slice:beta' });
    expect(a.isolation).toBe(SliverIsolation.SLIVER_ISOLATION_CONTAINER);
    expect(a.workDir).toBe('/root');

    await run(a.urn, 'sleep 300 >/dev/null 2>&1 & echo secret > mine.txt; echo private > /tmp/a-tmp; echo started');
    const cmdlines = 'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline; echo; done 2>/dev/null';
    const inA = await run(a.urn, cmdlines);
    const inB = await run(b.urn, cmdlines);
    expect(inA.stdout).toMatch(/^sleep 300/m);
    // B's PID namespace holds its keeper and this command, nothing of A's and nothing of the host's.
    expect(inB.stdout).not.toMatch(/^sleep 300|node|vitest/m);
    expect(Number((await run(b.urn, 'ls -d /proc/[0-9]* | wc -l')).stdout.trim())).toBeLessThan(10);

    const peek = await run(
      b.urn,
      `cat /root/mine.txt; ls ${h.dataDir}; cat /tmp/a-tmp; echo "uid=$(id -u) host=$(hostname)"; grep NoNewPrivs /proc/self/status`,
    );
    expect(peek.stdout).not.toMatch(/secret|private/);
    expect(peek.stdout).toMatch(/uid=0 host=iso-b/);
    expect(peek.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(peek.stderr).toMatch(/No such file/);
    expect((await run(a.urn, 'cat mine.txt /tmp/a-tmp')).stdout).toBe('secret\nprivate\n');
    // Outside, each sliver's root is the first id of its own range: never the host's root, never shared.
    const [ua, ub] = [h.nm.slivers.get(a.urn)?.ids?.hostId, h.nm.slivers.get(b.urn)?.ids?.hostId];
    expect(ua).toBeGreaterThanOrEqual(200_000);
    expect(ub).not.toBe(ua);
    const keeperUid = (urn: string) => {
      const pid = h.nm.slivers.get(urn)?.runtime?.pid;
      return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    };
    expect(keeperUid(a.urn)).toBe(ua);
    expect(keeperUid(b.urn)).toBe(ub);

    for (const s of [a, b]) await h.client().deleteSliver({ sliverUrn: s.urn }, { chain: h.parties.ownerChain });
    expect(await cgroupNames()).not.toEqual(expect.arrayContaining(['iso-a']));
    expect(runcNames()).toEqual([]);
    expect(dirNames()).toEqual([]);
  });

  it('a memory hog in a 64 MB sliver is killed by the kernel while its neighbour keeps running', async () => {
    const hog = await createSliver(h, 'hog', { sliceUrn: 'urn:fedlab:plc.test:slice:hog', resources: res({ memMb: 64 }) });
    const calm = await createSliver(h, 'calm', { sliceUrn: 'urn:fedlab:plc.test:slice:calm', resources: res({ memMb: 64 }) });
    try {
      await run(calm.urn, 'sleep 300 >/dev/null 2>&1 & echo ok');
      // tail keeps a line without newline in memory: 300 MB of zeros is far past 64 MB. Under a loaded
      // machine the kernel reclaims for a while before it kills, hence the longer deadline.
      const out = await run(hog.urn, 'head -c 300000000 /dev/zero | tail; echo "tail exit $?"', 50_000, 60_000);
      expect(out.stdout).toMatch(/tail exit 137/);
      const stats = await cgroups.stats('hog');
      expect(stats.oomKills).toBeGreaterThanOrEqual(1);
      // The neighbour and its process are untouched; the hog's sliver itself still runs.
      const after = await run(calm.urn, 'pgrep -c -x sleep || ls /proc');
      expect(after.exit?.status).toEqual({ $case: 'code', code: 0 });
      expect((await cgroups.stats('calm')).oomKills).toBe(0);
      expect((await h.client().getSliver({ sliverUrn: hog.urn }, { chain: h.parties.ownerChain })).sliver?.operationalState).toBe(
        OperationalState.OPERATIONAL_STATE_READY,
      );
      expect((await run(hog.urn, 'echo alive')).stdout).toBe('alive\n');
    } finally {
      // Also after a failure, so that the tests after this one start from an empty node.
      for (const s of [hog, calm]) await h.client().deleteSliver({ sliverUrn: s.urn }, { chain: h.parties.ownerChain });
    }
  }, 90_000);

  it('holds the CPU limit within 20% (cgroup CPU accounting over a 2 s window, demand above the limit)', async () => {
    const s = await createSliver(h, 'cpu', { sliceUrn: 'urn:fedlab:plc.test:slice:cpu', resources: res({ cpuMillis: 300 }) });
    await run(s.urn, 'for i in 1 2; do (while :; do :; done) >/dev/null 2>&1 & done; echo burning');
    await new Promise((r) => setTimeout(r, 300));
    const t0 = { at: process.hrtime.bigint(), ns: (await cgroups.stats('cpu')).cpuUsageNs };
    await new Promise((r) => setTimeout(r, 2000));
    const t1 = { at: process.hrtime.bigint(), ns: (await cgroups.stats('cpu')).cpuUsageNs };
    const cores = (t1.ns - t0.ns) / Number(t1.at - t0.at);
    console.log(`CPU limit 0.300 cores; measured ${cores.toFixed(3)} cores over ${(Number(t1.at - t0.at) / 1e9).toFixed(2)} s`);
    expect(cores).toBeGreaterThan(0.3 * 0.8);
    expect(cores).toBeLessThan(0.3 * 1.2);
    await h.client().deleteSliver({ sliverUrn: s.urn }, { chain: h.parties.ownerChain });
    expect(await cgroupNames()).not.toContain('cpu');
  });

  it('a sliver over its disk quota is stopped and FAILED with a clear reason', async () => {
    const s = await createSliver(h, 'disk', { sliceUrn: 'urn:fedlab:plc.test:slice:disk', resources: res({ diskMb: 2 }) });
    await run(s.urn, 'head -c 5000000 /dev/urandom > big.bin; echo written');
    await waitFor(() => h.nm.slivers.get(s.urn)?.operational === 'failed', 10_000, 'the disk quota check');
    const got = (await h.client().getSliver({ sliverUrn: s.urn }, { chain: h.parties.ownerChain })).sliver;
    expect(got?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_FAILED);
    expect(got?.error).toMatch(/disk quota exceeded: the work directory uses \d+ MiB of its 2 MiB; the sliver was stopped/);
    expect(await cgroups.pids('disk')).toEqual([]);
    await h.client().deleteSliver({ sliverUrn: s.urn }, { chain: h.parties.ownerChain });
  });

  it('50 concurrent creates never over-commit the node; refusals and deletes leave no cgroup, process or directory', async () => {
    const reqs = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        withSaJwk(
          createRequest(`many${i}`, {
            sliceUrn: `urn:fedlab:plc.test:slice:m${i}`,
            resources: res({ cpuMillis: 100, memMb: 32, pids: 32 }),
          }),
        ),
      ),
    );
    const fits = (1500 - h.nm.slivers.committed.cpuMillis) / 100;
    const results = await Promise.allSettled(reqs.map((r) => h.client().createSliver(r, { chain: h.parties.ownerChain })));
    const ok = results.filter((r): r is PromiseFulfilledResult<CreateSliverResponse> => r.status === 'fulfilled');
    const no = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    // 1500 cpu_millis of capacity, 100 each (15 when the node is empty).
    expect(ok).toHaveLength(fits);
    expect(no.every((r) => (r.reason as ServiceError).code === Status.RESOURCE_EXHAUSTED)).toBe(true);
    expect(ok.every((r) => r.value.sliver?.operationalState === OperationalState.OPERATIONAL_STATE_READY)).toBe(true);
    expect(h.nm.slivers.committed.cpuMillis).toBe(1500);
    const admitted = ok.map((r) => r.value.sliver!.urn.split(':').pop()!).sort();
    expect(await cgroupNames()).toEqual(expect.arrayContaining(admitted));
    expect((await cgroupNames()).filter((n) => n.startsWith('many'))).toEqual(admitted);
    expect(dirNames().filter((n) => n.startsWith('many'))).toEqual(admitted);

    // Bad input on a busy node: nothing new anywhere.
    const bad = await h
      .client()
      .createSliver(await withSaJwk(createRequest('x', { sliverUrn: 'urn:fedlab:plc.test:sliver:a|b' })), { chain: h.parties.ownerChain })
      .catch((e: ServiceError) => e);
    expect((bad as ServiceError).code).toBe(Status.INVALID_ARGUMENT);
    expect((await cgroupNames()).filter((n) => n.startsWith('many'))).toEqual(admitted);

    await Promise.all(ok.map((r) => h.client().deleteSliver({ sliverUrn: r.value.sliver!.urn }, { chain: h.parties.ownerChain })));
    expect(await cgroupNames()).toEqual([]);
    expect(runcNames()).toEqual([]);
    expect(dirNames()).toEqual([]);
    expect(h.nm.slivers.committed.slivers).toBe(0);
  });
});

describe.skipIf(!canContain)('container driver with network namespaces (emulab-style nodes)', () => {
  let h: NmHarness;
  beforeAll(async () => {
    h = await startNodeManager({ driver: 'container', config: { container: { net_namespace: true }, style: 'emulab' } });
  });
  afterAll(async () => {
    await h?.destroy();
  });

  it('gives each sliver its own network stack with only loopback up', async () => {
    const s = await createSliver(h, 'net1');
    const out = await collectExec(
      h.client().exec(
        {
          sliverUrn: s.urn,
          argv: ['sh', '-c', 'ip -o link | cut -d: -f2 | tr -d " "; ip -o link show lo | grep -c UP'],
          env: {},
          timeoutMs: 0,
        },
        { chain: h.parties.ownerChain },
      ),
    );
    expect(out.stdout).toBe('lo\n1\n');
    await h.client().deleteSliver({ sliverUrn: s.urn }, { chain: h.parties.ownerChain });
  });
});
