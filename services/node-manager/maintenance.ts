/**
 * The node's background checks over its slivers: the reaper (expired slivers
 * are deleted, ALLOCATED holds included), liveness (a READY sliver whose
 * runtime died is restarted, or FAILED with the reason), the disk quota
 * (a sliver over its quota is stopped and FAILED), and the measured usage
 * heartbeats report.
 */
import type { Logger } from '../core/log.js';
import type { KeyedMutex } from '../core/mutex.js';
import type { Clock } from '../core/clock.js';
import type { SliverDriver, SliverMeasure } from './drivers/driver.js';
import { driverSliver, type SliverLifecycle } from './sliver-lifecycle.js';
import type { SliverStore } from './sliver-store.js';

/** What the checks work with. */
export interface MaintenanceDeps {
  readonly state: SliverStore;
  readonly driver: SliverDriver;
  readonly lifecycle: SliverLifecycle;
  readonly locks: KeyedMutex;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Measured use summed over slivers. */
export interface MeasuredUse {
  /** Cumulative CPU time (ns). */
  readonly cpuUsageNs: number;
  readonly memBytes: number;
  readonly pids: number;
  /** Disk at the last quota check. */
  readonly diskBytes: number;
}

/** Deletes every sliver whose expiry has passed; returns how many. */
export async function reapExpired(d: MaintenanceDeps): Promise<number> {
  if (!d.state.loaded) return 0;
  const now = d.clock.now();
  let n = 0;
  for (const rec of d.state.all()) {
    if (rec.expiresAt > now) continue;
    try {
      const gone = await d.locks.run(rec.urn, async () => {
        const cur = d.state.get(rec.urn);
        // Renewed meanwhile: keep it.
        if (!cur || cur.expiresAt > d.clock.now()) return false;
        await d.lifecycle.removeLocked(rec.urn);
        return true;
      });
      if (gone) {
        n++;
        d.log.info({ sliver: rec.urn, slice: rec.sliceUrn, expiredAt: new Date(rec.expiresAt).toISOString() }, 'reaped expired sliver');
      }
    } catch (err) {
      d.log.error({ sliver: rec.urn, err }, 'could not reap an expired sliver; will retry');
    }
  }
  return n;
}

/** Restarts READY slivers whose runtime died (or fails them with the reason); returns those restarted. */
export async function checkLiveness(d: MaintenanceDeps): Promise<string[]> {
  if (!d.state.loaded) return [];
  const restarted: string[] = [];
  for (const rec of d.state.all()) {
    if (rec.operational !== 'ready' || !rec.runtime) continue;
    if (await d.driver.isRunning(driverSliver(rec), rec.runtime)) continue;
    if (await d.lifecycle.recover(rec.urn)) restarted.push(rec.urn);
  }
  return restarted;
}

/** Measures every provisioned sliver's writable storage; a sliver over its disk quota is stopped and FAILED. */
export async function checkDiskQuotas(d: MaintenanceDeps): Promise<string[]> {
  if (!d.state.loaded) return [];
  const over: string[] = [];
  for (const rec of d.state.all()) {
    if (rec.allocation !== 'provisioned') continue;
    const bytes = await d.driver.diskUsageBytes(rec.name);
    d.state.diskUse.set(rec.name, bytes);
    const limit = rec.resources.diskMb * 1024 * 1024;
    if (bytes <= limit || rec.operational === 'failed') continue;
    over.push(rec.urn);
    const usedMb = Math.ceil(bytes / 1024 / 1024);
    await d.locks.run(rec.urn, async () => {
      if (!d.state.has(rec.urn)) return;
      await d.lifecycle.stopLocked(
        rec.urn,
        'failed',
        `disk quota exceeded: the work directory uses ${usedMb} MiB of its ${rec.resources.diskMb} MiB; the sliver was stopped. Start it again and delete files, or delete the sliver`,
      );
    });
    d.log.warn({ sliver: rec.urn, usedMb, quotaMb: rec.resources.diskMb }, 'disk quota exceeded; sliver stopped');
  }
  return over;
}

/** Measured use summed over slivers: memory and pids now, disk at the last quota check, CPU as cumulative ns. */
export async function measureUse(d: Pick<MaintenanceDeps, 'state' | 'driver'>): Promise<MeasuredUse> {
  let cpuUsageNs = 0;
  let memBytes = 0;
  let pids = 0;
  let diskBytes = 0;
  for (const rec of d.state.all()) {
    let m: SliverMeasure | undefined;
    try {
      m = rec.allocation === 'provisioned' ? await d.driver.measure(driverSliver(rec)) : undefined;
    } catch {
      m = undefined;
    }
    cpuUsageNs += m?.cpuUsageNs ?? 0;
    memBytes += m?.memBytes ?? 0;
    pids += m?.pids ?? 0;
    diskBytes += d.state.diskUse.get(rec.name) ?? 0;
  }
  return { cpuUsageNs, memBytes, pids, diskBytes };
}
