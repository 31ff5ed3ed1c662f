/**
 * The slivers of one node: the calls that change them (create, control,
 * renew, delete, exec) and the background work, over the store
 * ({@link SliverStore}), admission ({@link admit}), the lifecycle steps
 * ({@link SliverLifecycle}), the maintenance checks and {@link reconcile}.
 *
 * Admission runs through one in-process mutex and ends with one atomic batch,
 * so however many creates arrive at once, and wherever the process dies, the
 * node is never over-committed. Work on one sliver (provision, start, stop,
 * delete) runs through a per-sliver lock.
 */
import { DeadlineExceededError, FailedPreconditionError, NotFoundError } from '../core/errors.js';
import type { SliceUserRecord } from '../core/identity/ssh-keys.js';
import type { Logger } from '../core/log.js';
import { KeyedMutex, Mutex } from '../core/mutex.js';
import type { Store } from '../core/store/store.js';
import { admit, promotion, writePromotion, type CreateSpec } from './admission.js';
import type { Capacity } from './capacity.js';
import type { Clock } from '../core/clock.js';
import type { AttachedCommand, AttachSpec, DriverSliver, ExecChunk, ExecSpec, SliverDriver } from './drivers/driver.js';
import { checkDiskQuotas, checkLiveness, measureUse, reapExpired, type MaintenanceDeps, type MeasuredUse } from './maintenance.js';
import type { Committed, SliverRecord } from './records.js';
import { reconcile, type ReconcileReport } from './reconcile.js';
import { driverSliver, SliverLifecycle } from './sliver-lifecycle.js';
import { NetworkedDriver } from './network/networked-driver.js';
import type { IdRangeSettings } from './runtime/id-ranges.js';
import { SliverStore } from './sliver-store.js';
import type { CallFence } from './sliver-tombstones.js';
import { pickLogin } from './ssh/login-names.js';

export type { CreateSpec } from './admission.js';
export type { ReconcileReport } from './reconcile.js';

/** What a call that ended before its change was committed is told (as the store says it for a fenced write). */
function callEnded(): DeadlineExceededError {
  return new DeadlineExceededError(
    'the call ended (its deadline passed or it was cancelled) before its change was committed; nothing was changed — try again with a longer deadline',
  );
}

/** Control actions. */
export type SliverAction = 'start' | 'stop' | 'restart';

/** Options of {@link SliverManager}. */
export interface SliverManagerOptions {
  readonly store: Store;
  readonly driver: SliverDriver;
  readonly clock: Clock;
  readonly log: Logger;
  readonly capacity: Capacity;
  /** The node is given to one slice at a time. */
  readonly exclusiveNode: boolean;
  /** Container slivers' user namespace id ranges. */
  readonly idRanges: IdRangeSettings;
}

/** The result of a delete. */
export interface Deleted {
  readonly existed: boolean;
  /** The last record, when the sliver existed. */
  readonly record?: SliverRecord;
}

/** The node's slivers. */
export class SliverManager {
  private readonly state: SliverStore;
  private readonly admission = new Mutex();
  private readonly locks = new KeyedMutex();
  private readonly lifecycle: SliverLifecycle;
  private readonly deps: MaintenanceDeps;

  constructor(private readonly o: SliverManagerOptions) {
    this.state = new SliverStore(o.store, o.clock);
    this.lifecycle = new SliverLifecycle({ state: this.state, driver: o.driver, log: o.log, admission: this.admission, locks: this.locks });
    this.deps = { state: this.state, driver: o.driver, lifecycle: this.lifecycle, locks: this.locks, clock: o.clock, log: o.log };
  }

  get driver(): SliverDriver {
    return this.o.driver;
  }

  get capacity(): Capacity {
    return this.o.capacity;
  }

  /** Resources committed to slivers (allocated or provisioned). */
  get committed(): Committed {
    return this.state.committed;
  }

  /** Number of slivers (not unallocated). */
  get count(): number {
    return this.state.count;
  }

  /** The record of a sliver, or undefined. */
  get(urn: string): SliverRecord | undefined {
    return this.state.get(urn);
  }

  /** Every record, in URN order. */
  list(): SliverRecord[] {
    return this.state.list();
  }

  /** Id range slots held by slivers now. */
  idSlotsInUse(): number[] {
    return [...this.state.usedIdSlots()].sort((a, b) => a - b);
  }

  /** The driver's view of a record. */
  static driverSliver(rec: SliverRecord): DriverSliver {
    return driverSliver(rec);
  }

  /** Numbers a call that creates or deletes a sliver as it arrives (take it before the handler's first await), with its signal. */
  arrive(signal?: AbortSignal): CallFence {
    return { signal, arrival: this.state.tombstones.arrive() };
  }

  /** Loads the store into memory. Called once, before {@link reconcile}. Records made before SSH get their login name now. */
  async load(): Promise<void> {
    await this.state.load();
    for (const rec of this.state.list()) if (!rec.login) await this.state.update(rec.urn, { login: this.freeLogin(rec) });
  }

  /** The login name a sliver gets: its slice's name unless another live sliver holds it (see pickLogin). */
  private freeLogin(rec: Pick<SliverRecord, 'urn' | 'sliceUrn'>): string {
    const taken = new Set<string>();
    for (const r of this.state.all()) if (r.urn !== rec.urn && r.login) taken.add(r.login);
    return pickLogin(rec.sliceUrn, taken);
  }

  /** The sliver whose login name this is, if any. */
  byLogin(login: string): SliverRecord | undefined {
    return this.state.all().find((r) => r.login === login);
  }

  /**
   * Replaces a sliver's SSH users (written durably: a removed key must stay removed after a crash). With
   * a call's `signal`, nothing is written once that call has ended: a stale update (its caller already
   * retried or moved on) must not replace a newer list.
   */
  async updateUsers(urn: string, users: readonly SliceUserRecord[], signal?: AbortSignal): Promise<SliverRecord> {
    this.state.assertLoaded();
    return this.locks.run(urn, async () => {
      const cur = this.state.get(urn);
      if (!cur) throw new NotFoundError(`no sliver ${urn} on this node`);
      return this.state.save({ ...cur, users: [...users], updatedAt: this.o.clock.now() }, true, signal);
    });
  }

  /**
   * Creates a sliver (or returns it, for a retried request id or an identical
   * request for an existing sliver URN; or promotes an ALLOCATED one). Admission
   * is serialised; provisioning and starting happen after it under the sliver's lock.
   * The slice's users come in `spec.users` (none when absent); a new sliver is written with them and
   * its login name in its admission batch.
   */
  async create(spec: CreateSpec): Promise<SliverRecord> {
    this.state.assertLoaded();
    const settings = {
      capacity: this.o.capacity,
      exclusiveNode: this.o.exclusiveNode,
      driverKind: this.o.driver.kind,
      idRanges: this.o.idRanges,
      // A container sliver's network lease is written with its record (Sliver.network).
      ...(this.o.driver instanceof NetworkedDriver ? { network: this.o.driver.network.plan } : {}),
    };
    // Absent users are none: a promotion takes the provision's users, even an empty list.
    const asked: CreateSpec = { ...spec, users: spec.users ?? [] };
    // Under the admission mutex: two creates never pick the same login name.
    const admitted = await this.admission.run(() =>
      admit(this.state, { ...asked, login: this.freeLogin(spec) }, { ...settings, now: this.o.clock.now() }),
    );
    if (admitted === 'existing') {
      // Another call may still be provisioning it: answer with its state once that work is done.
      await this.locks.run(spec.urn, async () => undefined);
      const now = this.state.get(spec.urn);
      if (!now)
        throw new FailedPreconditionError(`sliver ${spec.urn} was removed while this request was answered; retry with a new request id`);
      return now;
    }
    return this.locks.run(spec.urn, async () => {
      if (admitted === 'promote') {
        const before = this.state.get(spec.urn);
        const promoted = promotion(before, asked, this.o.clock.now());
        if (promoted && before) await this.admission.run(() => writePromotion(this.state, before, promoted, spec.call?.signal));
      }
      const rec = this.state.get(spec.urn);
      if (!rec) throw new FailedPreconditionError(`sliver ${spec.urn} was removed before it could be provisioned`);
      if (rec.allocation === 'allocated') return rec;
      try {
        await this.lifecycle.provisionLocked(rec);
        if (spec.start) await this.lifecycle.startLocked(rec.urn);
      } catch (err) {
        // A create that could not be made real leaves nothing behind: no record, no runtime, no directory.
        this.o.log.warn({ sliver: rec.urn, err: (err as Error).message }, 'create failed; removing what was made');
        await this.lifecycle.removeLocked(rec.urn);
        throw err;
      }
      return this.state.get(spec.urn) as SliverRecord;
    });
  }

  /**
   * Starts, stops or restarts a provisioned sliver. With the call's signal, a call that has ended
   * changes nothing: its first write (the intent) is fenced by it, and what follows that write completes.
   */
  async control(urn: string, action: SliverAction, signal?: AbortSignal): Promise<SliverRecord> {
    this.state.assertLoaded();
    return this.locks.run(urn, async () => {
      const rec = this.state.get(urn);
      if (!rec) throw new NotFoundError(`no sliver ${urn} on this node`);
      if (rec.allocation !== 'provisioned') {
        throw new FailedPreconditionError(`sliver ${urn} is only allocated; provision it (CreateSliver with PROVISIONED) before ${action}`);
      }
      // A start of a sliver whose intent to run is already written acts without writing first: check here.
      if (signal?.aborted) throw callEnded();
      if (action === 'stop') {
        if (rec.operational === 'stopped' || rec.operational === 'notready') return rec;
        return this.lifecycle.stopLocked(urn, 'stopped', '', signal);
      }
      if (
        action === 'start' &&
        rec.operational === 'ready' &&
        rec.runtime &&
        (await this.o.driver.isRunning(driverSliver(rec), rec.runtime))
      ) {
        return rec;
      }
      if (rec.operational === 'pending') await this.lifecycle.provisionLocked(rec);
      if (action === 'restart' || rec.runtime) {
        await this.lifecycle.stopLocked(urn, 'stopped', '', signal);
        // The stop is committed: the start that completes the call is not fenced (a half-done restart helps no one).
        return this.lifecycle.startLocked(urn);
      }
      return this.lifecycle.startLocked(urn, signal);
    });
  }

  /**
   * Moves a sliver's expiry (the caller checked it against policy and the chain). With the call's
   * signal, a call that has ended writes nothing.
   */
  async renew(urn: string, expiresAt: number, signal?: AbortSignal): Promise<SliverRecord> {
    this.state.assertLoaded();
    return this.locks.run(urn, async () => {
      if (!this.state.has(urn)) throw new NotFoundError(`no sliver ${urn} on this node`);
      return this.state.update(urn, { expiresAt }, signal);
    });
  }

  /**
   * Stops a sliver, frees its resources and forgets it, leaving a tombstone (sliver-tombstones.ts).
   * Deleting what is gone succeeds with existed = false. With the call's signal, a call that has ended deletes nothing.
   */
  async delete(urn: string, call: CallFence = {}): Promise<Deleted> {
    this.state.assertLoaded();
    return this.locks.run(urn, async () => {
      const last = await this.lifecycle.removeLocked(urn, call);
      return last ? { existed: true, record: last } : { existed: false };
    });
  }

  /** Runs a command in a READY sliver (one whose runtime died is restarted first, or the call says why it cannot be). */
  async exec(urn: string, spec: ExecSpec, signal: AbortSignal): Promise<AsyncIterable<ExecChunk>> {
    const rec = await this.readyRecord(urn);
    return this.o.driver.exec(driverSliver(rec), rec.runtime!, spec, signal);
  }

  /** Runs a command in a READY sliver with its streams handed to the caller (SSH exec, sftp). */
  async attach(urn: string, spec: AttachSpec): Promise<AttachedCommand> {
    const rec = await this.readyRecord(urn);
    if (!this.o.driver.attach) throw new FailedPreconditionError(`the ${this.o.driver.kind} driver cannot run interactive commands`);
    return this.o.driver.attach(driverSliver(rec), rec.runtime!, spec);
  }

  /** A relay to host:port from inside a READY sliver's own network namespace (SSH direct-tcpip). */
  async connect(urn: string, host: string, port: number): Promise<AttachedCommand> {
    const rec = await this.readyRecord(urn);
    if (!this.o.driver.connect) {
      throw new FailedPreconditionError(`the ${this.o.driver.kind} driver gives slivers no network namespace of their own to forward into`);
    }
    return this.o.driver.connect(driverSliver(rec), rec.runtime!, host, port);
  }

  /** The record of a READY sliver whose runtime runs (restarting it first when it died). */
  async readyRecord(urn: string): Promise<SliverRecord> {
    this.state.assertLoaded();
    let rec = this.state.get(urn);
    if (!rec) throw new NotFoundError(`no sliver ${urn} on this node`);
    if (rec.allocation !== 'provisioned' || rec.operational !== 'ready' || !rec.runtime) {
      throw new FailedPreconditionError(
        `sliver ${urn} is ${rec.allocation === 'provisioned' ? rec.operational : 'only allocated'}, not ready; start it first (ControlSliver START)`,
      );
    }
    if (!(await this.o.driver.isRunning(driverSliver(rec), rec.runtime))) {
      await this.lifecycle.recover(urn);
      rec = this.state.get(urn);
      if (!rec || rec.operational !== 'ready' || !rec.runtime) {
        throw new FailedPreconditionError(
          `sliver ${urn} stopped running unexpectedly and could not be restarted: ${rec?.error ?? 'it is gone'}`,
        );
      }
    }
    return rec;
  }

  /** Deletes every sliver whose expiry has passed; returns how many. */
  reapExpired(): Promise<number> {
    return reapExpired(this.deps);
  }

  /** Restarts READY slivers whose runtime died (or fails them with the reason); returns those restarted. */
  checkLiveness(): Promise<string[]> {
    return checkLiveness(this.deps);
  }

  /** Measures every provisioned sliver's storage; a sliver over its disk quota is stopped and FAILED. */
  checkDiskQuotas(): Promise<string[]> {
    return checkDiskQuotas(this.deps);
  }

  /** Measured use summed over slivers: memory and pids now, disk at the last quota check, CPU as cumulative ns. */
  measure(): Promise<MeasuredUse> {
    return measureUse(this.deps);
  }

  /** Stops a sliver that must not run and marks it FAILED with the reason (it stays until deleted). */
  async refuseToRun(urn: string, reason: string): Promise<void> {
    this.state.assertLoaded();
    await this.locks.run(urn, async () => {
      if (this.state.get(urn)) await this.lifecycle.stopLocked(urn, 'failed', reason);
    });
  }

  /** Makes what runs match the store (see {@link reconcile}). */
  async reconcile(): Promise<ReconcileReport> {
    if (!this.state.loaded) await this.state.load();
    return reconcile(this.deps);
  }
}
