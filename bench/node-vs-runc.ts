// The runc comparison of `npm run bench:node`: N slivers, each created (to READY), given one exec round trip and
// deleted, K in parallel, through the node manager's full API (mTLS gRPC, credential chain, LevelDB, bundle
// writing, runc) — against raw runc doing create + start, exec and delete of equivalent bundles (the same
// config.json, written beforehand and not timed). Prints both throughputs and their ratio.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../services/core/log.js';
import { createDriver } from '../services/node-manager/drivers/select.js';
import type { SliverDriver } from '../services/node-manager/drivers/driver.js';
import { instanceId } from '../services/node-manager/index.js';
import { HOST_TOOL_ENV } from '../services/node-manager/runtime/runc.js';
import { pool } from '../services/core/timing.js';

/** One create → exec → delete of a sliver through the node manager. */
export type SliverCycle = (i: number) => Promise<void>;

const resources = { cpuMillis: 250, memMb: 64, diskMb: 8, pids: 64, bandwidthKbps: 0 };

/** Runs runc with its stdio on /dev/null (a container's init inherits it and must hold no pipe of ours). */
function runc(binary: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { env: HOST_TOOL_ENV, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`runc ${args.join(' ')}: exit ${code}`))));
  });
}

/** Times `count` cycles, `parallel` at a time; returns cycles per second. */
async function rate(count: number, parallel: number, cycle: (i: number) => Promise<void>): Promise<number> {
  const t = performance.now();
  await pool(
    Array.from({ length: count }, (_, i) => i),
    parallel,
    async (i) => cycle(i),
  );
  return count / ((performance.now() - t) / 1000);
}

/** Runs both sides and prints them. */
export async function compareWithRunc(runcPath: string, count: number, parallel: number, viaNodeManager: SliverCycle): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'fedlab-bench-runc-'));
  chmodSync(root, 0o711);
  const dataDir = join(root, 'data');
  const driver: SliverDriver = createDriver({
    kind: 'container',
    workRoot: join(dataDir, 'slivers'),
    instance: instanceId(dataDir),
    log: silentLogger(),
  });
  try {
    await driver.init();
    const names = Array.from({ length: count }, (_, i) => `raw${i}`);
    // The bundles the node manager would write, made beforehand: raw runc is timed alone.
    for (const [i, name] of names.entries()) {
      await driver.provision({
        name,
        urn: `urn:fedlab:bench.test:sliver:${name}`,
        sliceUrn: 'urn:fedlab:bench.test:slice:raw',
        resources,
        ids: { slot: i, hostId: 200_000 + i * 65_536, size: 65_536 },
      });
    }
    const state = ['--root', join(dataDir, 'runc')];
    const raw = await rate(count, parallel, async (i) => {
      const name = names[i] as string;
      await runc(runcPath, [...state, 'create', '--bundle', join(dataDir, 'slivers', name), name]);
      await runc(runcPath, [...state, 'start', name]);
      await runc(runcPath, [...state, 'exec', name, '/usr/bin/true']);
      await runc(runcPath, [...state, 'delete', '--force', name]);
    });
    await viaNodeManager(-1);
    const nm = await rate(count, parallel, viaNodeManager);
    console.log(
      `container vs raw runc  ${count} slivers, ${parallel} in parallel, each create → READY, one exec, delete:\n` +
        `  node manager ${nm.toFixed(2)} slivers/s   raw runc ${raw.toFixed(2)} slivers/s   ratio ${(nm / raw).toFixed(2)} (target ≥ 0.80)`,
    );
  } finally {
    await driver.purge().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}
