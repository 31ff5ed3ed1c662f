/**
 * The provider's retention purges, so that its store stays bounded however many deployments come
 * and go (config `retention`):
 *
 * - a DELETED deployment leaves `deletedMs` after it was deleted (its last update), when no task of it
 *   runs; its name was free for a new deployment already;
 * - a Deploy request id stays as a small tombstone (name, fingerprint, time) for `requestIdMs` after it
 *   was first used — at least as long as the deployment record — and then only once the deployment it
 *   made is gone (purged, or its name now another request's). A retry of a request id whose deployment
 *   is gone is FAILED_PRECONDITION (deploy.ts), never a second deployment; past the tombstone's
 *   retention the id is free again. Records written before tombstones had a time get one at the first
 *   purge that reads them, and so leave `requestIdMs` later.
 *
 * Each batch (at most `batch` records, one atomic write) runs under the admission lock, so that a Deploy
 * never sees a record half-purged, and the request scan reads at most {@link SCAN_PER_BATCH} records
 * per batch, going on from where the previous batch stopped, so the lock is let go between them.
 */
import { Periodic } from '../../core/periodic.js';
import type { DeployRequestRecord } from './deployment-store.js';
import type { DeploymentContext } from './context.js';

/** How long ended records are kept, and how the purge runs. */
export interface RetentionSettings {
  /** A DELETED deployment's record is kept this long after its deletion (ms). */
  readonly deletedMs: number;
  /** A Deploy request id is kept this long after its first use (ms), at least as long as `deletedMs`. */
  readonly requestIdMs: number;
  /** How often the purge runs (ms). */
  readonly intervalMs: number;
  /** Most records one batch (one atomic write) drops. */
  readonly batch: number;
}

const DAY_MS = 86_400_000;

/** The defaults: deleted deployments for a week, request ids for 30 days, a purge every 10 minutes. */
export const DEFAULT_RETENTION: RetentionSettings = Object.freeze({
  deletedMs: 7 * DAY_MS,
  requestIdMs: 30 * DAY_MS,
  intervalMs: 600_000,
  batch: 500,
});

/** Request records one batch reads at most (under the admission lock). */
const SCAN_PER_BATCH = 5000;

/** What one purge dropped. */
export interface PurgeCounts {
  deployments: number;
  requests: number;
}

/** The retention purges of one provider's deployments. */
export class DeploymentRetention {
  private readonly periodic: Periodic;

  constructor(
    private readonly context: DeploymentContext,
    private readonly settings: RetentionSettings,
  ) {
    this.periodic = new Periodic({ name: 'deployment-retention', intervalMs: settings.intervalMs, log: context.deps.log }, async () => {
      await this.purge();
    });
  }

  /** Purges on a schedule. */
  start(): void {
    this.periodic.start();
  }

  /** Stops the schedule and waits for a purge in progress. */
  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** Drops everything due now, batch by batch; returns the counts. */
  async purge(): Promise<PurgeCounts> {
    const out: PurgeCounts = { deployments: 0, requests: 0 };
    const max = this.settings.batch;
    for (let n = max; n === max; out.deployments += n) n = await this.purgeDeployments(max);
    const cursor = { after: undefined as string | undefined };
    for (let more = true; more;) {
      const r = await this.purgeRequests(max, cursor);
      out.requests += r.dropped;
      more = r.more;
    }
    if (out.deployments || out.requests) this.context.deps.log.info(out, 'deleted deployments and old request ids purged');
    return out;
  }

  /** One batch of deleted deployments past their retention. */
  private purgeDeployments(max: number): Promise<number> {
    const { records, tasks, events } = this.context;
    return this.context.admission.run(async () => {
      const cutoff = this.context.now() - this.settings.deletedMs;
      const due: string[] = [];
      for (const r of records.all()) {
        if (r.state === 'deleted' && r.updatedAt < cutoff && !tasks.busy(r.name)) due.push(r.name);
        if (due.length >= max) break;
      }
      if (!due.length) return 0;
      await records.purge(due, [], [], this.context.now());
      for (const n of due) {
        events.forget(n);
        tasks.forget(n);
      }
      return due.length;
    });
  }

  /** One batch of request ids past their retention whose deployment is gone; stamps those without a time. */
  private purgeRequests(max: number, cursor: { after: string | undefined }): Promise<{ dropped: number; more: boolean }> {
    const { records } = this.context;
    return this.context.admission.run(async () => {
      const now = this.context.now();
      const cutoff = now - this.settings.requestIdMs;
      const due: string[] = [];
      const stamp: [string, DeployRequestRecord][] = [];
      let scanned = 0;
      let last: string | undefined;
      for await (const [rid, v] of records.requestEntries(cursor.after)) {
        last = rid;
        scanned++;
        const dep = records.get(v.name);
        const live = dep !== undefined && dep.requestId === rid;
        if (!live && v.at === undefined) stamp.push([rid, v]);
        else if (!live && (v.at as number) < cutoff) due.push(rid);
        if (due.length + stamp.length >= max || scanned >= SCAN_PER_BATCH) break;
      }
      cursor.after = last;
      const more = due.length + stamp.length >= max || scanned >= SCAN_PER_BATCH;
      await records.purge([], due, stamp, now);
      return { dropped: due.length, more };
    });
  }
}
