// kill -9 of a real `fedlab serve nm` process with 5 running slivers, then a restart on the same data
// directory: no sliver is lost (live ones are adopted with their processes and files, one whose container or
// keeper died meanwhile is restarted), a stopped one stays stopped, one that expired while the node manager was
// down is reaped, and a sliver runtime nobody has a record of (runc container, bundle, cgroup) is removed; with
// runc, exactly one container per running sliver afterwards and no mount left. Runs with the container driver
// where root and runc allow, and always with the process driver.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { silentLogger } from '../../services/core/log.js';
import { OperationalState } from '../../services/generated/fedlab/v1/common.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { createDriver } from '../../services/node-manager/drivers/select.js';
import { findMarkedProcesses, isSameProcessAlive, readStat, signalQuietly } from '../../services/node-manager/drivers/procfs.js';
import { instanceId } from '../../services/node-manager/index.js';
import { exited, startCli } from '../helpers/cli.js';
import {
  canContain,
  cannotContainReason,
  collectExec,
  createRequest,
  mountsUnder,
  NODE_URN,
  parties,
  purgeInstance,
  runcList,
  tempDir,
  tlsOf,
  withSaJwk,
  writeNmConfig,
} from '../helpers/node-manager.js';

if (!canContain) console.log(`fault test runs with the process driver only: ${cannotContainReason}`);

const drivers = (canContain ? ['container', 'process'] : ['process']) as ('container' | 'process')[];

describe.each(drivers)('kill -9 of the node manager (%s driver)', (driver) => {
  let root: string | undefined;
  let child: ChildProcess | undefined;
  let client: PromiseClient<typeof NodeManagerService> | undefined;

  afterEach(async () => {
    client?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited(child);
    }
    if (root) {
      await purgeInstance(join(root, 'data'), driver);
      rmSync(root, { recursive: true, force: true });
    }
  });

  async function serve(file: string): Promise<string> {
    const started = await startCli(['serve', 'nm', '--config', file], (l) => l.msg === 'listening', { timeoutMs: 60_000 });
    child = started.child;
    return started.line.address as string;
  }

  it('loses no sliver, adopts the live ones, restarts the dead one, reaps the expired one and removes orphans', async () => {
    const p = await parties();
    root = tempDir('fedlab-nm-fault-');
    const dataDir = join(root, 'data');
    const file = await writeNmConfig(dataDir, { driver, config: { log_level: 'info', reaper_interval_ms: 60_000 } });
    const address = await serve(file);
    client = createClient(NodeManagerService, { address, tls: tlsOf(p, p.ma), serverUrn: NODE_URN, deadlineMs: 30_000 });
    const chain = { chain: p.ownerChain };
    const run = async (urn: string, script: string) =>
      collectExec(client!.exec({ sliverUrn: urn, argv: ['sh', '-c', script], env: {}, timeoutMs: 0 }, chain));

    const names = ['k1', 'k2', 'k3', 'k4', 'k5'];
    const urns = names.map((n) => `urn:fedlab:plc.test:sliver:${n}`);
    for (const n of names)
      await client.createSliver(await withSaJwk(createRequest(n, { sliceUrn: `urn:fedlab:plc.test:slice:${n}` })), chain);
    await client.createSliver(await withSaJwk(createRequest('idle', { start: false })), chain);
    const expiring = await client.createSliver(await withSaJwk(createRequest('brief', { expiresAt: new Date(Date.now() + 2500) })), chain);
    for (const u of urns) await run(u, 'echo kept > state.txt; sleep 300 >/dev/null 2>&1 & echo started');

    const instance = instanceId(dataDir);
    const keeperOf = async (name: string) => {
      if (driver === 'container') {
        // The container's init, as runc knows it.
        const pid = runcList(dataDir).find((c) => c.id === name && c.status === 'running')?.pid;
        return pid ? readStat(pid) : undefined;
      }
      // The keeper is the oldest marked process of the sliver (the one the node manager started first).
      const procs = (await findMarkedProcesses(instance)).filter((m) => m.sliver === name);
      const stats = (await Promise.all(procs.map((m) => readStat(m.pid)))).filter((s) => s !== undefined);
      return stats.sort((a, b) => a.startTicks - b.startTicks)[0];
    };
    const keepers = new Map<string, { pid: number; startTicks: number }>();
    for (const n of names) keepers.set(n, (await keeperOf(n))!);
    for (const n of names) expect(keepers.get(n), n).toBeDefined();
    if (driver === 'container')
      expect(
        runcList(dataDir)
          .map((c) => c.id)
          .sort(),
      ).toEqual(['brief', ...names]);

    // The crash.
    client.close();
    child!.kill('SIGKILL');
    expect(await exited(child!)).toBe('SIGKILL');

    // While it is down: one sliver's keeper dies, and a runtime appears that no record explains.
    signalQuietly(keepers.get('k3')!.pid, 'SIGKILL');
    const stray = createDriver({ kind: driver, workRoot: join(dataDir, 'slivers'), instance, log: silentLogger() });
    await stray.init();
    const orphan = {
      name: 'orphan1',
      urn: 'urn:fedlab:plc.test:sliver:orphan1',
      sliceUrn: 'urn:fedlab:plc.test:slice:x',
      resources: { cpuMillis: 100, memMb: 32, diskMb: 10, pids: 16, bandwidthKbps: 0 },
      ids: { slot: 99, hostId: 200_000 + 99 * 65_536, size: 65_536 },
    };
    const orphanRef = await stray.start(orphan);
    expect(await stray.listArtifacts()).toContain('orphan1');
    // Let the brief sliver expire while nobody watches.
    const wait = expiring.sliver!.expiresAt!.getTime() - Date.now() + 100;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));

    const address2 = await serve(file);
    client = createClient(NodeManagerService, { address: address2, tls: tlsOf(p, p.ma), serverUrn: NODE_URN, deadlineMs: 30_000 });

    const list = await client.listSlivers({ pageSize: 0, pageToken: '', sliceUrn: '' }, chain);
    const byName = new Map(list.slivers.map((s) => [s.urn.split(':').pop()!, s]));
    expect([...byName.keys()].sort()).toEqual([...names, 'idle'].sort());
    for (const n of names) expect(byName.get(n)?.operationalState, n).toBe(OperationalState.OPERATIONAL_STATE_READY);
    expect(byName.get('idle')?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_NOTREADY);

    // Adopted: the same keeper processes, with what ran in them and their files.
    for (const n of names.filter((x) => x !== 'k3')) {
      const k = keepers.get(n)!;
      expect(await isSameProcessAlive(k.pid, k.startTicks), `keeper of ${n}`).toBe(true);
    }
    for (const [i, u] of urns.entries()) {
      const out = await run(
        u,
        'cat state.txt; for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr "\\0" " "; echo; done | grep -c "^sleep 300" || true',
      );
      expect(out.stdout.split('\n')[0], names[i]).toBe('kept');
      if (names[i] !== 'k3' && driver === 'container') expect(Number(out.stdout.split('\n')[1]), names[i]).toBe(1);
    }
    // Restarted: k3 has a new keeper.
    const k3 = await keeperOf('k3');
    expect(k3?.pid).not.toBe(keepers.get('k3')!.pid);

    // No orphan: nothing of orphan1 or brief is left; every marked process belongs to a sliver on record.
    expect(await isSameProcessAlive(orphanRef.pid, orphanRef.startTicks)).toBe(false);
    const artifacts = (await stray.listArtifacts()).sort();
    expect(artifacts).toEqual([...names, 'idle'].sort());
    for (const m of await findMarkedProcesses(instance)) expect([...names, 'idle']).toContain(m.sliver);
    if (driver === 'container') {
      // One container per running sliver: adopted or restarted, never a duplicate; the orphan's is gone.
      expect(
        runcList(dataDir)
          .map((c) => c.id)
          .sort(),
      ).toEqual(names);
      expect(runcList(dataDir).every((c) => c.status === 'running')).toBe(true);
    }
    const { node } = await client.getNodeInfo({}, chain);
    expect(node?.sliverCount).toBe(6);
    expect(node?.allocated?.cpuMillis).toBe(600);

    // And the node manager still manages them.
    for (const u of urns) await client.deleteSliver({ sliverUrn: u }, chain);
    await client.deleteSliver({ sliverUrn: 'urn:fedlab:plc.test:sliver:idle' }, chain);
    expect(await stray.listArtifacts()).toEqual([]);
    if (driver === 'container') expect(mountsUnder(dataDir)).toEqual([]);
  });
});
