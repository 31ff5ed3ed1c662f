/**
 * Making what runs match the store, after a clean stop or a `kill -9`:
 * interrupted deletes are finished and expired slivers reaped; slivers that
 * still run are adopted; those that should run but do not are restarted (or
 * marked FAILED with the reason); stopped ones are made sure to run nothing;
 * runtimes no record explains are removed; request ids of vanished slivers
 * and tombstones past their retention go, and the committed totals are
 * rewritten from the records.
 */
import { ZERO_COMMITTED } from './records.js';
import { driverSliver } from './sliver-lifecycle.js';
import { COMMITTED_KEY } from './sliver-store.js';
import type { MaintenanceDeps } from './maintenance.js';

/** What {@link reconcile} did. */
export interface ReconcileReport {
  readonly adopted: readonly string[];
  readonly restarted: readonly string[];
  readonly failed: readonly string[];
  readonly reaped: readonly string[];
  readonly orphans: readonly string[];
}

/** Reconciles the store with what runs (the store must be loaded). */
export async function reconcile(d: MaintenanceDeps): Promise<ReconcileReport> {
  const { state, driver, lifecycle } = d;
  const report = {
    adopted: [] as string[],
    restarted: [] as string[],
    failed: [] as string[],
    reaped: [] as string[],
    orphans: [] as string[],
  };
  const now = d.clock.now();
  for (const rec of state.all()) {
    await d.locks.run(rec.urn, async () => {
      if (rec.deleting || rec.expiresAt <= now) {
        // A delete interrupted by the crash leaves its tombstone now (a DeleteSliver's, or the reaper's).
        await lifecycle.removeLocked(rec.urn, rec.deleting ? {} : undefined);
        report.reaped.push(rec.urn);
        return;
      }
      if (rec.allocation === 'allocated') return;
      const ds = driverSliver(rec);
      if (rec.wantRunning) {
        if (rec.runtime && (await driver.isRunning(ds, rec.runtime))) {
          if (rec.operational !== 'ready') await state.update(rec.urn, { operational: 'ready', error: '' });
          report.adopted.push(rec.urn);
          return;
        }
        try {
          await lifecycle.provisionLocked(rec);
          await lifecycle.startLocked(rec.urn);
          report.restarted.push(rec.urn);
        } catch (err) {
          await state.update(rec.urn, {
            operational: 'failed',
            runtime: undefined,
            error: `was not running when the node manager restarted, and restarting it failed: ${(err as Error).message}`,
          });
          report.failed.push(rec.urn);
        }
        return;
      }
      // Should not run: make sure nothing does, and settle half-done transitions.
      await driver.stop(ds, rec.runtime);
      if (rec.operational === 'pending') await lifecycle.provisionLocked(rec);
      else if (rec.operational !== 'notready' && rec.operational !== 'stopped' && rec.operational !== 'failed') {
        await state.update(rec.urn, { operational: 'stopped', runtime: undefined });
      } else if (rec.runtime) await state.update(rec.urn, { runtime: undefined });
    });
  }

  const known = new Set(state.all().map((r) => r.name));
  for (const name of await driver.listArtifacts()) {
    if (known.has(name)) continue;
    try {
      await driver.destroy(name);
      report.orphans.push(name);
    } catch (err) {
      d.log.error({ name, err }, 'could not remove an orphaned sliver runtime');
    }
  }

  // Request ids whose sliver is gone, and the committed totals, follow the records.
  const batch = state.store.batch();
  for await (const [id, req] of state.requests.entries()) if (!state.has(req.sliverUrn)) batch.del(state.requests, id);
  const swept = state.tombstones.stageSweepOnly(batch, now);
  const totals = state.sum();
  const stored = (await state.meta.get(COMMITTED_KEY)) ?? ZERO_COMMITTED;
  if (JSON.stringify(stored) !== JSON.stringify(totals)) {
    d.log.warn({ stored, fromRecords: totals }, 'committed totals did not match the records; rewritten from the records');
    batch.put(state.meta, COMMITTED_KEY, totals);
  }
  await batch.write({ sync: true });
  swept();
  state.setCommitted(totals);
  return report;
}
