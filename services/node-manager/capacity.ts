/**
 * The node's capacity and the arithmetic of admission. Capacity comes from
 * config, each absent amount measured from the machine; a request fits only if
 * every amount fits in what is left, and a refusal lists what is left of each
 * amount that does not fit.
 */
import { readFileSync, statfsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import type { Committed } from './records.js';
import type { SliverResources } from './drivers/driver.js';

/** What the node offers to slices. */
export interface Capacity {
  readonly cpuMillis: number;
  readonly memMb: number;
  readonly diskMb: number;
  readonly pids: number;
  readonly slivers: number;
}

/** Memory kept back for the node itself (the node manager, the kernel's own needs). */
const RESERVED_MEM_MB = 256;
const DEFAULT_SLIVERS = 1000;

/** Reads a number from a file, or undefined. */
function readNumber(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** What the machine has: cores, memory less a reserve, free disk under `dataDir`, half the pid space. */
export function measureMachine(dataDir: string): Capacity {
  const memMb = Math.max(1, Math.floor(totalmem() / 1024 / 1024) - RESERVED_MEM_MB);
  let diskMb = 1;
  try {
    const st = statfsSync(dataDir);
    diskMb = Math.max(1, Math.floor((st.bavail * st.bsize) / 1024 / 1024));
  } catch {
    // The data dir is made before this runs; if statfs still fails, the operator sets capacity.disk_mb.
  }
  const pidMax = readNumber('/proc/sys/kernel/pid_max') ?? 32_768;
  return { cpuMillis: availableParallelism() * 1000, memMb, diskMb, pids: Math.floor(pidMax / 2), slivers: DEFAULT_SLIVERS };
}

/** Config values override measured ones, one by one. */
export function resolveCapacity(
  configured: Partial<Record<'cpu_millis' | 'mem_mb' | 'disk_mb' | 'pids' | 'slivers', number>>,
  measured: Capacity,
): Capacity {
  return {
    cpuMillis: configured.cpu_millis ?? measured.cpuMillis,
    memMb: configured.mem_mb ?? measured.memMb,
    diskMb: configured.disk_mb ?? measured.diskMb,
    pids: configured.pids ?? measured.pids,
    slivers: configured.slivers ?? measured.slivers,
  };
}

/** One amount that does not fit: how much is asked, how much is left, of how much. */
export interface Shortfall {
  readonly resource: 'cpu_millis' | 'mem_mb' | 'disk_mb' | 'pids' | 'slivers';
  readonly asked: number;
  readonly left: number;
  readonly total: number;
}

/** The amounts of `want` (plus one sliver) that do not fit in `limit - used`; empty when it fits. */
export function shortfalls(limit: Partial<Capacity>, used: Committed, want: SliverResources): Shortfall[] {
  const out: Shortfall[] = [];
  const check = (resource: Shortfall['resource'], total: number | undefined, usedAmount: number, asked: number): void => {
    if (total === undefined) return;
    const left = Math.max(0, total - usedAmount);
    if (asked > left) out.push({ resource, asked, left, total });
  };
  check('slivers', limit.slivers, used.slivers, 1);
  check('cpu_millis', limit.cpuMillis, used.cpuMillis, want.cpuMillis);
  check('mem_mb', limit.memMb, used.memMb, want.memMb);
  check('disk_mb', limit.diskMb, used.diskMb, want.diskMb);
  check('pids', limit.pids, used.pids, want.pids);
  return out;
}

/** "mem_mb: asked 512, 300 of 4096 left; slivers: ..." */
export function describeShortfalls(list: readonly Shortfall[]): string {
  return list.map((s) => `${s.resource}: asked ${s.asked}, ${s.left} of ${s.total} left`).join('; ');
}
