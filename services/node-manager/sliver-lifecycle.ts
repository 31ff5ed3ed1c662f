/**
 * The steps of a sliver's life through the driver — provision, start, stop,
 * remove, recover — each writing its state before the driver acts (or, for
 * teardown, marking first and forgetting after), so a restart knows what
 * should run. Callers hold the sliver's lock; totals change only under the
 * admission mutex.
 *
 * Intents (should run, being deleted) must be written, or the step does not
 * happen. What a step reached (ready, stopped, forgotten) is written when the
 * store can; when it refuses (a full disk), memory takes it alone: the intent
 * is already durable and a restart redoes the step from it, while failing
 * would answer a call as refused after its change was committed.
 */
import { UnavailableError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { KeyedMutex, Mutex } from '../core/mutex.js';
import type { DriverSliver, SliverDriver } from './drivers/driver.js';
import { addCommitted, type Operational, type SliverRecord } from './records.js';
import { COMMITTED_KEY, requestKey, type SliverStore } from './sliver-store.js';
import type { CallFence } from './sliver-tombstones.js';

/** The driver's view of a record. */
export function driverSliver(rec: SliverRecord): DriverSliver {
  return {
    name: rec.name,
    urn: rec.urn,
    sliceUrn: rec.sliceUrn,
    resources: rec.resources,
    ...(rec.ids ? { ids: rec.ids } : {}),
    image: rec.image ?? 'host',
  };
}

/** What the lifecycle steps share with the sliver manager. */
export interface LifecycleDeps {
  readonly state: SliverStore;
  readonly driver: SliverDriver;
  readonly log: Logger;
  /** Serialises admissions and every change of the committed totals. */
  readonly admission: Mutex;
  /** One lock per sliver URN. */
  readonly locks: KeyedMutex;
}

/** Lifecycle steps over one node's slivers. */
export class SliverLifecycle {
  constructor(private readonly d: LifecycleDeps) {}

  async provisionLocked(rec: SliverRecord): Promise<SliverRecord> {
    await this.d.driver.provision(driverSliver(rec));
    // A sliver about to start goes straight on to READY (written then); one that stays NOTREADY is settled now.
    if (rec.wantRunning) return this.d.state.touch(rec.urn, { operational: 'configuring', error: '' });
    return this.settled(rec.urn, { operational: 'notready', error: '' });
  }

  /** Starts a sliver; with a call's `signal`, its intent is not written (nor anything started) once that call has ended. */
  async startLocked(urn: string, signal?: AbortSignal): Promise<SliverRecord> {
    const { state, driver } = this.d;
    const cur = state.get(urn);
    // The intent to run must be durable before anything starts; when it already is, CONFIGURING is only shown.
    const rec = cur?.wantRunning
      ? state.touch(urn, { operational: 'configuring', error: '' })
      : await state.update(urn, { operational: 'configuring', wantRunning: true, error: '' }, signal);
    try {
      const runtime = await driver.start(driverSliver(rec));
      return await this.settled(urn, { operational: 'ready', runtime, error: '' });
    } catch (err) {
      await driver.stop(driverSliver(rec), undefined).catch(() => undefined);
      await this.settled(urn, { operational: 'failed', runtime: undefined, error: `start failed: ${(err as Error).message}` });
      throw err;
    }
  }

  /** Stops a sliver; with a call's `signal`, its intent is not written (nor anything stopped) once that call has ended. */
  async stopLocked(urn: string, then: Operational = 'stopped', error = '', signal?: AbortSignal): Promise<SliverRecord> {
    const rec = await this.d.state.update(urn, { operational: 'stopping', wantRunning: false }, signal);
    await this.d.driver.stop(driverSliver(rec), rec.runtime);
    return this.settled(urn, { operational: then, runtime: undefined, error });
  }

  /** Records what a step reached: written when the store can, in memory alone when it refuses (see the module's comment). */
  private async settled(urn: string, change: Partial<SliverRecord>): Promise<SliverRecord> {
    try {
      return await this.d.state.update(urn, change);
    } catch (err) {
      if (!(err instanceof UnavailableError) || !this.d.state.has(urn)) throw err;
      this.d.log.warn(
        { sliver: urn, state: change.operational, err: err.message },
        'sliver state not written (the store refuses writes); kept in memory, and redone from its intent after a restart',
      );
      return this.d.state.touch(urn, change);
    }
  }

  /**
   * Tears a sliver down and forgets it: marked first, so a crash half-way finishes the job on restart.
   * With `deleted` (a DeleteSliver) the mark is written with the call's signal — a call that has ended
   * deletes nothing — and the batch that forgets the sliver leaves its tombstone; when the sliver is
   * not here, the tombstone is written on its own (the stale create may be the next call).
   */
  async removeLocked(urn: string, deleted?: CallFence): Promise<SliverRecord | undefined> {
    const { state } = this.d;
    const rec = state.get(urn);
    if (!rec) {
      if (!deleted || (await this.leaveTombstone(urn, deleted))) return undefined;
      // A create admitted it meanwhile (its provisioning waits for this sliver's lock, which we hold): delete that.
      return this.removeLocked(urn, deleted);
    }
    const marked = rec.deleting
      ? rec
      : await state.update(urn, { operational: 'stopping', wantRunning: false, deleting: true }, deleted?.signal);
    await this.d.driver.destroy(rec.name);
    // Totals change only under the admission mutex, so no create can read them half-updated.
    await this.d.admission.run(async () => {
      const committed = addCommitted(state.committed, rec.resources, -1);
      const batch = state.store.batch().del(state.slivers, urn).put(state.meta, COMMITTED_KEY, committed);
      const key = requestKey(rec.requestCaller, rec.requestId);
      const req = await state.requests.get(key);
      if (req && req.sliverUrn === urn) batch.del(state.requests, key);
      const tombstone = deleted ? state.tombstones.stage(batch, urn, [key], state.now()) : undefined;
      try {
        await batch.write({ sync: true });
      } catch (err) {
        // The deletion is committed (marked, runtime gone): memory forgets the sliver, the store's copy is finished at the restart.
        if (!(err instanceof UnavailableError)) throw err;
        this.d.log.warn(
          { sliver: urn, err: err.message },
          'sliver deleted, but forgetting it could not be written (the store refuses writes); the restart finishes it from its deleting mark',
        );
      }
      state.drop(urn);
      state.setCommitted(committed);
      tombstone?.();
    });
    return marked;
  }

  /**
   * The tombstone of a DeleteSliver of a sliver that is not here, under the admission mutex. False,
   * writing nothing, when a create has admitted the sliver since it was looked up (its admission held
   * the mutex while its record was written).
   */
  private async leaveTombstone(urn: string, deleted: CallFence): Promise<boolean> {
    const { state } = this.d;
    return this.d.admission.run(async () => {
      if (state.has(urn)) return false;
      const batch = state.store.batch();
      const apply = state.tombstones.stage(batch, urn, [], state.now());
      await batch.write({ sync: true, signal: deleted.signal });
      apply();
      return true;
    });
  }

  /** Restarts a READY sliver whose runtime is gone, or marks it FAILED with the reason. Returns true when it restarted it. */
  async recover(urn: string): Promise<boolean> {
    return this.d.locks.run(urn, async () => {
      const cur = this.d.state.get(urn);
      if (!cur || cur.operational !== 'ready' || !cur.runtime) return false;
      if (await this.d.driver.isRunning(driverSliver(cur), cur.runtime)) return false;
      try {
        await this.startLocked(urn);
        this.d.log.warn({ sliver: urn }, 'sliver stopped running unexpectedly; restarted it');
        return true;
      } catch (err) {
        await this.settled(urn, {
          error: `the sliver stopped running unexpectedly and restarting it failed: ${(err as Error).message}`,
        });
        this.d.log.error({ sliver: urn, err: (err as Error).message }, 'sliver stopped running unexpectedly; restarting it failed');
        return false;
      }
    });
  }
}
