/**
 * The slivers of one node: admission against capacity, lifecycle through the
 * driver, and every state in LevelDB.
 *
 * Admission (idempotency, capacity, per-slice caps, exclusivity) runs through
 * one in-process mutex and ends with one atomic batch that writes the sliver,
 * its request id and the node's committed totals together; so however many
 * creates arrive at once, and wherever the process dies, the node is never
 * over-committed. Work on one sliver (provision, start, stop, delete) runs
 * through a per-sliver lock, and each state is written before the driver acts
 * (or, for teardown, marked first and forgotten after), so a restart knows
 * what should run: see {@link SliverManager.reconcile}.
 */
import { AlreadyExistsError, FailedPreconditionError, NotFoundError, PermissionDeniedError, ResourceExhaustedError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import type { SliverInterface } from '../generated/fedlab/v1/common.js';
import { describeShortfalls, shortfalls, type Capacity } from './capacity.js';
import type { Clock } from './clock.js';
import type { DriverSliver, ExecChunk, ExecSpec, SliverDriver, SliverMeasure, SliverResources } from './drivers/driver.js';
import { KeyedMutex, Mutex } from '../core/mutex.js';
import { addCommitted, ZERO_COMMITTED, type Allocation, type Committed, type Operational, type RequestRecord, type SliverRecord } from './records.js';

/** What admission needs to create a sliver (already validated and authorised). */
export interface CreateSpec {
  readonly requestId: string;
  /** Hash of the request's arguments: a retry must match it. */
  readonly fingerprint: string;
  /** URN of the caller (idempotency is per request id; the caller is kept for diagnostics). */
  readonly caller: string;
  readonly urn: string;
  readonly name: string;
  readonly sliceUrn: string;
  readonly sliceAuthorityUrn: string;
  readonly sliceAuthorityJwk: Record<string, unknown>;
  readonly providerUrn: string;
  readonly clientId: string;
  readonly resources: SliverResources;
  readonly exclusive: boolean;
  readonly interfaces: readonly SliverInterface[];
  readonly allocation: Allocation;
  readonly start: boolean;
  readonly expiresAt: number;
  /** Most the sliver's slice may hold on this node (owner policy and the chain's `lim`). */
  readonly sliceLimits: Partial<Capacity>;
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
  /** Container slivers run as uidBase + n. */
  readonly uidBase: number;
}

/** The result of a delete. */
export interface Deleted {
  readonly existed: boolean;
  /** The last record, when the sliver existed. */
  readonly record?: SliverRecord;
}

const COMMITTED_KEY = 'committed';

/** Request ids are idempotency keys per caller (a retry comes from the same caller). */
function requestKey(caller: string, requestId: string): string {
  return `${caller} ${requestId}`;
}

/** The node's slivers. */
export class SliverManager {
  private readonly slivers: Table<SliverRecord>;
  private readonly requests: Table<RequestRecord>;
  private readonly meta: Table<Committed>;
  private readonly records = new Map<string, SliverRecord>();
  /** Sliver URNs per slice, and the exclusive ones: admission checks stay O(1) in the number of slivers. */
  private readonly bySlice = new Map<string, Set<string>>();
  private readonly exclusive = new Set<string>();
  private committedTotals: Committed = ZERO_COMMITTED;
  private readonly admission = new Mutex();
  private readonly locks = new KeyedMutex();
  /** Last measured disk use per sliver name (bytes), from the quota check. */
  private readonly diskUse = new Map<string, number>();
  private loaded = false;

  constructor(private readonly o: SliverManagerOptions) {
    this.slivers = o.store.table<SliverRecord>('slivers');
    this.requests = o.store.table<RequestRecord>('requests');
    this.meta = o.store.table<Committed>('meta');
  }

  get driver(): SliverDriver {
    return this.o.driver;
  }

  get capacity(): Capacity {
    return this.o.capacity;
  }

  /** Resources committed to slivers (allocated or provisioned). */
  get committed(): Committed {
    return this.committedTotals;
  }

  /** Number of slivers (not unallocated). */
  get count(): number {
    return this.records.size;
  }

  /** The record of a sliver, or undefined. */
  get(urn: string): SliverRecord | undefined {
    return this.records.get(urn);
  }

  /** Every record, in URN order. */
  list(): SliverRecord[] {
    return [...this.records.values()].sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));
  }

  /** The driver's view of a record. */
  static driverSliver(rec: SliverRecord): DriverSliver {
    return { name: rec.name, urn: rec.urn, sliceUrn: rec.sliceUrn, resources: rec.resources, ...(rec.uid !== undefined ? { uid: rec.uid } : {}) };
  }

  /** Loads the store into memory. Called once, before {@link reconcile}. */
  async load(): Promise<void> {
    this.records.clear();
    this.bySlice.clear();
    this.exclusive.clear();
    for await (const [, rec] of this.slivers.entries()) this.put(rec);
    this.committedTotals = this.sum();
    this.loaded = true;
  }

  private sum(): Committed {
    let c = ZERO_COMMITTED;
    for (const r of this.records.values()) c = addCommitted(c, r.resources, 1);
    return c;
  }

  private sliceRecords(sliceUrn: string): SliverRecord[] {
    return [...(this.bySlice.get(sliceUrn) ?? [])].map((u) => this.records.get(u) as SliverRecord);
  }

  private sliceCommitted(sliceUrn: string): Committed {
    let c = ZERO_COMMITTED;
    for (const r of this.sliceRecords(sliceUrn)) c = addCommitted(c, r.resources, 1);
    return c;
  }

  private put(rec: SliverRecord): void {
    this.records.set(rec.urn, rec);
    let set = this.bySlice.get(rec.sliceUrn);
    if (!set) this.bySlice.set(rec.sliceUrn, (set = new Set()));
    set.add(rec.urn);
    if (rec.exclusive) this.exclusive.add(rec.urn);
  }

  private drop(urn: string): void {
    const rec = this.records.get(urn);
    if (!rec) return;
    this.records.delete(urn);
    const set = this.bySlice.get(rec.sliceUrn);
    set?.delete(urn);
    if (set?.size === 0) this.bySlice.delete(rec.sliceUrn);
    this.exclusive.delete(urn);
  }

  private assertLoaded(): void {
    if (!this.loaded) throw new FailedPreconditionError('the node manager is still starting; retry in a moment');
  }

  /**
   * Writes one record (replacing the cached one). Intents (wantRunning,
   * deleting) are flushed to disk; settled states need not be: a lost one after
   * a power cut only makes reconcile redo the step (and no keeper survives a
   * power cut to be adopted), while a kill -9 loses nothing written.
   */
  private async save(rec: SliverRecord, sync: boolean): Promise<SliverRecord> {
    await this.slivers.put(rec.urn, rec, { sync });
    this.put(rec);
    return rec;
  }

  /** Changes a record's fields, stamps updatedAt, writes it. */
  private async update(urn: string, change: Partial<SliverRecord>): Promise<SliverRecord> {
    const cur = this.records.get(urn);
    if (!cur) throw new NotFoundError(`sliver ${urn} is gone`);
    const intent = (change.wantRunning !== undefined && change.wantRunning !== cur.wantRunning) || change.deleting !== undefined;
    return this.save({ ...cur, ...change, updatedAt: this.o.clock.now() }, intent);
  }

  /**
   * Shows a passing state (configuring) to readers without writing it: what a
   * restart needs is already durable (the record's wantRunning and its last
   * settled state), and reconcile redoes the step either way.
   */
  private touch(urn: string, change: Partial<SliverRecord>): SliverRecord {
    const cur = this.records.get(urn);
    if (!cur) throw new NotFoundError(`sliver ${urn} is gone`);
    const next = { ...cur, ...change, updatedAt: this.o.clock.now() };
    this.put(next);
    return next;
  }

  // ---- create ------------------------------------------------------------------------------

  /**
   * Creates a sliver (or returns it, for a retried request id or an identical
   * request for an existing sliver URN; or promotes an ALLOCATED one). Admission
   * is serialised; provisioning and starting happen after it under the sliver's lock.
   */
  async create(spec: CreateSpec): Promise<SliverRecord> {
    this.assertLoaded();
    const admitted = await this.admission.run(() => this.admit(spec));
    if (admitted === 'existing') {
      // Another call may still be provisioning it: answer with its state once that work is done.
      await this.locks.run(spec.urn, async () => undefined);
      const now = this.records.get(spec.urn);
      if (!now) throw new FailedPreconditionError(`sliver ${spec.urn} was removed while this request was answered; retry with a new request id`);
      return now;
    }
    return this.locks.run(spec.urn, async () => {
      if (admitted === 'promote') await this.promoteLocked(spec);
      const rec = this.records.get(spec.urn);
      if (!rec) throw new FailedPreconditionError(`sliver ${spec.urn} was removed before it could be provisioned`);
      if (rec.allocation === 'allocated') return rec;
      try {
        await this.provisionLocked(rec);
        if (spec.start) await this.startLocked(rec.urn);
      } catch (err) {
        // A create that could not be made real leaves nothing behind: no record, no cgroup, no directory.
        this.o.log.warn({ sliver: rec.urn, err: (err as Error).message }, 'create failed; removing what was made');
        await this.removeLocked(rec.urn);
        throw err;
      }
      return this.records.get(spec.urn) as SliverRecord;
    });
  }

  /** Checks a create against what is committed and, for a new sliver, writes it in one batch. Runs under the admission mutex. */
  private async admit(spec: CreateSpec): Promise<'new' | 'existing' | 'promote'> {
    const seen = await this.requests.get(requestKey(spec.caller, spec.requestId));
    if (seen) {
      if (seen.fingerprint !== spec.fingerprint || seen.sliverUrn !== spec.urn) {
        throw new AlreadyExistsError(`request id ${spec.requestId} was already used for a different request; use a new request id for a new request`, {
          rule: 'request_id',
        });
      }
      if (this.records.has(spec.urn)) return 'existing';
    }
    const existing = this.records.get(spec.urn);
    if (existing) {
      if (existing.requestFingerprint === spec.fingerprint) return 'existing';
      // Promotion happens under the sliver's lock (see promoteLocked), not here.
      if (existing.allocation === 'allocated' && spec.allocation === 'provisioned') return 'promote';
      throw new AlreadyExistsError(`sliver ${spec.urn} already exists with other parameters; delete it first or choose another sliver URN`, { rule: 'sliver_urn' });
    }

    for (const r of this.sliceRecords(spec.sliceUrn)) {
      if (r.sliceAuthorityUrn !== spec.sliceAuthorityUrn || JSON.stringify(r.sliceAuthorityJwk) !== JSON.stringify(spec.sliceAuthorityJwk)) {
        throw new PermissionDeniedError(
          `slice ${spec.sliceUrn} already has slivers here under slice authority ${r.sliceAuthorityUrn} with another key; a slice has one authority`,
          { rule: 'slice_authority' },
        );
      }
      break;
    }
    const others = this.records.size - (this.bySlice.get(spec.sliceUrn)?.size ?? 0);
    if (others > 0) {
      const holder = [...this.exclusive].map((u) => this.records.get(u) as SliverRecord).find((r) => r.sliceUrn !== spec.sliceUrn);
      if (holder) throw new ResourceExhaustedError(`the node is held exclusively by slice ${holder.sliceUrn}; try another node`, { rule: 'exclusive' });
      if (spec.exclusive || this.o.exclusiveNode) {
        throw new ResourceExhaustedError(
          `the node cannot be given ${spec.exclusive ? 'exclusively' : 'whole'} to slice ${spec.sliceUrn}: ${others} sliver(s) of other slices are on it; try another node`,
          { rule: 'exclusive' },
        );
      }
    }

    const perSlice = shortfalls(spec.sliceLimits, this.sliceCommitted(spec.sliceUrn), spec.resources);
    if (perSlice.length > 0) {
      throw new PermissionDeniedError(`owner policy per_slice: slice ${spec.sliceUrn} may not hold more on this node (${describeShortfalls(perSlice)})`, {
        rule: 'policy.per_slice',
        resource: perSlice[0]?.resource ?? '',
      });
    }
    const short = shortfalls(this.o.capacity, this.committedTotals, spec.resources);
    if (short.length > 0) {
      throw new ResourceExhaustedError(`the node cannot fit this sliver: ${describeShortfalls(short)}; ask for less or try another node`, {
        resource: short[0]?.resource ?? '',
        left: short[0]?.left ?? 0,
      });
    }

    const now = this.o.clock.now();
    const rec: SliverRecord = {
      urn: spec.urn,
      name: spec.name,
      sliceUrn: spec.sliceUrn,
      sliceAuthorityUrn: spec.sliceAuthorityUrn,
      sliceAuthorityJwk: spec.sliceAuthorityJwk,
      providerUrn: spec.providerUrn,
      clientId: spec.clientId,
      resources: spec.resources,
      exclusive: spec.exclusive,
      interfaces: spec.interfaces,
      allocation: spec.allocation,
      operational: 'pending',
      wantRunning: spec.start,
      driver: this.o.driver.kind,
      ...(this.o.driver.kind === 'container' ? { uid: this.freeUid() } : {}),
      createdAt: now,
      updatedAt: now,
      expiresAt: spec.expiresAt,
      error: '',
      requestId: spec.requestId,
      requestCaller: spec.caller,
      requestFingerprint: spec.fingerprint,
    };
    const committed = addCommitted(this.committedTotals, spec.resources, 1);
    await this.o.store
      .batch()
      .put(this.slivers, rec.urn, rec)
      .put(this.requests, requestKey(spec.caller, spec.requestId), { sliverUrn: spec.urn, fingerprint: spec.fingerprint, caller: spec.caller })
      .put(this.meta, COMMITTED_KEY, committed)
      .write({ sync: true });
    this.put(rec);
    this.committedTotals = committed;
    return 'new';
  }

  private freeUid(): number {
    const used = new Set<number>();
    for (const r of this.records.values()) if (r.uid !== undefined) used.add(r.uid);
    let uid = this.o.uidBase;
    while (used.has(uid)) uid++;
    return uid;
  }

  /** ALLOCATED → PROVISIONED for the same slice and resources: the record and both request ids change in one batch. */
  private async promoteLocked(spec: CreateSpec): Promise<void> {
    const rec = this.records.get(spec.urn);
    if (!rec) throw new NotFoundError(`sliver ${spec.urn} is gone (its allocation expired or was deleted); allocate it again`);
    if (rec.allocation === 'provisioned') {
      if (rec.requestFingerprint === spec.fingerprint) return;
      throw new AlreadyExistsError(`sliver ${spec.urn} is already provisioned with other parameters`, { rule: 'sliver_urn' });
    }
    if (rec.sliceUrn !== spec.sliceUrn || JSON.stringify(rec.resources) !== JSON.stringify(spec.resources) || rec.exclusive !== spec.exclusive) {
      throw new AlreadyExistsError(
        `sliver ${spec.urn} is allocated for ${rec.sliceUrn} with other resources; provision it with the resources it was allocated with`,
        { rule: 'sliver_urn' },
      );
    }
    const promoted: SliverRecord = {
      ...rec,
      allocation: 'provisioned',
      operational: 'pending',
      wantRunning: spec.start,
      expiresAt: spec.expiresAt,
      requestId: spec.requestId,
      requestCaller: spec.caller,
      requestFingerprint: spec.fingerprint,
      updatedAt: this.o.clock.now(),
    };
    await this.admission.run(async () => {
      await this.o.store
        .batch()
        .put(this.slivers, spec.urn, promoted)
        .del(this.requests, requestKey(rec.requestCaller, rec.requestId))
        .put(this.requests, requestKey(spec.caller, spec.requestId), { sliverUrn: spec.urn, fingerprint: spec.fingerprint, caller: spec.caller })
        .write({ sync: true });
      this.put(promoted);
    });
  }

  // ---- lifecycle (callers hold the sliver's lock) ---------------------------------------------

  private async provisionLocked(rec: SliverRecord): Promise<SliverRecord> {
    await this.o.driver.provision(SliverManager.driverSliver(rec));
    // A sliver about to start goes straight on to READY (written then); one that stays NOTREADY is settled now.
    if (rec.wantRunning) return this.touch(rec.urn, { operational: 'configuring', error: '' });
    return this.update(rec.urn, { operational: 'notready', error: '' });
  }

  private async startLocked(urn: string): Promise<SliverRecord> {
    const cur = this.records.get(urn);
    // The intent to run must be durable before anything starts; when it already is, CONFIGURING is only shown.
    const rec = cur?.wantRunning ? this.touch(urn, { operational: 'configuring', error: '' }) : await this.update(urn, { operational: 'configuring', wantRunning: true, error: '' });
    try {
      const runtime = await this.o.driver.start(SliverManager.driverSliver(rec));
      return await this.update(urn, { operational: 'ready', runtime, error: '' });
    } catch (err) {
      await this.o.driver.stop(SliverManager.driverSliver(rec), undefined).catch(() => undefined);
      await this.update(urn, { operational: 'failed', runtime: undefined, error: `start failed: ${(err as Error).message}` });
      throw err;
    }
  }

  private async stopLocked(urn: string, then: Operational = 'stopped', error = ''): Promise<SliverRecord> {
    const rec = await this.update(urn, { operational: 'stopping', wantRunning: false });
    await this.o.driver.stop(SliverManager.driverSliver(rec), rec.runtime);
    return this.update(urn, { operational: then, runtime: undefined, error });
  }

  /** Tears a sliver down and forgets it: marked first, so a crash half-way finishes the job on restart. */
  private async removeLocked(urn: string): Promise<SliverRecord | undefined> {
    const rec = this.records.get(urn);
    if (!rec) return undefined;
    const marked = rec.deleting ? rec : await this.update(urn, { operational: 'stopping', wantRunning: false, deleting: true });
    await this.o.driver.destroy(rec.name);
    // Totals change only under the admission mutex, so no create can read them half-updated.
    await this.admission.run(async () => {
      const committed = addCommitted(this.committedTotals, rec.resources, -1);
      const batch = this.o.store.batch().del(this.slivers, urn).put(this.meta, COMMITTED_KEY, committed);
      const key = requestKey(rec.requestCaller, rec.requestId);
      const req = await this.requests.get(key);
      if (req && req.sliverUrn === urn) batch.del(this.requests, key);
      await batch.write({ sync: true });
      this.drop(urn);
      this.committedTotals = committed;
    });
    this.diskUse.delete(rec.name);
    return marked;
  }

  // ---- calls ---------------------------------------------------------------------------------

  /** Starts, stops or restarts a provisioned sliver. */
  async control(urn: string, action: SliverAction): Promise<SliverRecord> {
    this.assertLoaded();
    return this.locks.run(urn, async () => {
      const rec = this.records.get(urn);
      if (!rec) throw new NotFoundError(`no sliver ${urn} on this node`);
      if (rec.allocation !== 'provisioned') {
        throw new FailedPreconditionError(`sliver ${urn} is only allocated; provision it (CreateSliver with PROVISIONED) before ${action}`);
      }
      if (action === 'stop') {
        if (rec.operational === 'stopped' || rec.operational === 'notready') return rec;
        return this.stopLocked(urn);
      }
      if (action === 'start' && rec.operational === 'ready' && rec.runtime && (await this.o.driver.isRunning(SliverManager.driverSliver(rec), rec.runtime))) {
        return rec;
      }
      if (rec.operational === 'pending') await this.provisionLocked(rec);
      if (action === 'restart' || rec.runtime) await this.stopLocked(urn);
      return this.startLocked(urn);
    });
  }

  /** Moves a sliver's expiry (the caller checked it against policy and the chain). */
  async renew(urn: string, expiresAt: number): Promise<SliverRecord> {
    this.assertLoaded();
    return this.locks.run(urn, async () => {
      if (!this.records.has(urn)) throw new NotFoundError(`no sliver ${urn} on this node`);
      return this.update(urn, { expiresAt });
    });
  }

  /** Stops a sliver, frees its resources and forgets it. Deleting what is gone succeeds with existed = false. */
  async delete(urn: string): Promise<Deleted> {
    this.assertLoaded();
    return this.locks.run(urn, async () => {
      const last = await this.removeLocked(urn);
      return last ? { existed: true, record: last } : { existed: false };
    });
  }

  /** Runs a command in a READY sliver (one whose keeper died is restarted first, or the call says why it cannot be). */
  async exec(urn: string, spec: ExecSpec, signal: AbortSignal): Promise<AsyncIterable<ExecChunk>> {
    this.assertLoaded();
    let rec = this.records.get(urn);
    if (!rec) throw new NotFoundError(`no sliver ${urn} on this node`);
    if (rec.allocation !== 'provisioned' || rec.operational !== 'ready' || !rec.runtime) {
      throw new FailedPreconditionError(`sliver ${urn} is ${rec.allocation === 'provisioned' ? rec.operational : 'only allocated'}, not ready; start it first (ControlSliver START)`);
    }
    if (!(await this.o.driver.isRunning(SliverManager.driverSliver(rec), rec.runtime))) {
      await this.recover(urn);
      rec = this.records.get(urn);
      if (!rec || rec.operational !== 'ready' || !rec.runtime) {
        throw new FailedPreconditionError(`sliver ${urn} stopped running unexpectedly and could not be restarted: ${rec?.error ?? 'it is gone'}`);
      }
    }
    return this.o.driver.exec(SliverManager.driverSliver(rec), rec.runtime, spec, signal);
  }

  /** Restarts a READY sliver whose keeper is gone, or marks it FAILED with the reason. Returns true when it restarted it. */
  private async recover(urn: string): Promise<boolean> {
    return this.locks.run(urn, async () => {
      const cur = this.records.get(urn);
      if (!cur || cur.operational !== 'ready' || !cur.runtime) return false;
      if (await this.o.driver.isRunning(SliverManager.driverSliver(cur), cur.runtime)) return false;
      try {
        await this.startLocked(urn);
        this.o.log.warn({ sliver: urn }, 'sliver stopped running unexpectedly; restarted it');
        return true;
      } catch (err) {
        await this.update(urn, { error: `the sliver stopped running unexpectedly and restarting it failed: ${(err as Error).message}` });
        this.o.log.error({ sliver: urn, err: (err as Error).message }, 'sliver stopped running unexpectedly; restarting it failed');
        return false;
      }
    });
  }

  // ---- background work -----------------------------------------------------------------------

  /** Deletes every sliver whose expiry has passed; returns how many. */
  async reapExpired(): Promise<number> {
    if (!this.loaded) return 0;
    const now = this.o.clock.now();
    let n = 0;
    for (const rec of [...this.records.values()]) {
      if (rec.expiresAt > now) continue;
      try {
        const gone = await this.locks.run(rec.urn, async () => {
          const cur = this.records.get(rec.urn);
          // Renewed meanwhile: keep it.
          if (!cur || cur.expiresAt > this.o.clock.now()) return false;
          await this.removeLocked(rec.urn);
          return true;
        });
        if (gone) {
          n++;
          this.o.log.info({ sliver: rec.urn, slice: rec.sliceUrn, expiredAt: new Date(rec.expiresAt).toISOString() }, 'reaped expired sliver');
        }
      } catch (err) {
        this.o.log.error({ sliver: rec.urn, err }, 'could not reap an expired sliver; will retry');
      }
    }
    return n;
  }

  /** Restarts READY slivers whose keeper died (or fails them with the reason); returns those restarted. */
  async checkLiveness(): Promise<string[]> {
    if (!this.loaded) return [];
    const restarted: string[] = [];
    for (const rec of [...this.records.values()]) {
      if (rec.operational !== 'ready' || !rec.runtime) continue;
      if (await this.o.driver.isRunning(SliverManager.driverSliver(rec), rec.runtime)) continue;
      if (await this.recover(rec.urn)) restarted.push(rec.urn);
    }
    return restarted;
  }

  /** Measures every provisioned sliver's work directory; a sliver over its disk quota is stopped and FAILED. */
  async checkDiskQuotas(): Promise<string[]> {
    if (!this.loaded) return [];
    const over: string[] = [];
    for (const rec of [...this.records.values()]) {
      if (rec.allocation !== 'provisioned') continue;
      const bytes = await this.o.driver.diskUsageBytes(rec.name);
      this.diskUse.set(rec.name, bytes);
      const limit = rec.resources.diskMb * 1024 * 1024;
      if (bytes <= limit || rec.operational === 'failed') continue;
      over.push(rec.urn);
      const usedMb = Math.ceil(bytes / 1024 / 1024);
      await this.locks.run(rec.urn, async () => {
        if (!this.records.has(rec.urn)) return;
        await this.stopLocked(
          rec.urn,
          'failed',
          `disk quota exceeded: the work directory uses ${usedMb} MiB of its ${rec.resources.diskMb} MiB; the sliver was stopped. Start it again and delete files, or delete the sliver`,
        );
      });
      this.o.log.warn({ sliver: rec.urn, usedMb, quotaMb: rec.resources.diskMb }, 'disk quota exceeded; sliver stopped');
    }
    return over;
  }

  /** Measured use summed over slivers: memory and pids now, disk at the last quota check, CPU as cumulative ns. */
  async measure(): Promise<{ cpuUsageNs: number; memBytes: number; pids: number; diskBytes: number }> {
    let cpuUsageNs = 0;
    let memBytes = 0;
    let pids = 0;
    let diskBytes = 0;
    for (const rec of this.records.values()) {
      let m: SliverMeasure | undefined;
      try {
        m = rec.allocation === 'provisioned' ? await this.o.driver.measure(SliverManager.driverSliver(rec)) : undefined;
      } catch {
        m = undefined;
      }
      cpuUsageNs += m?.cpuUsageNs ?? 0;
      memBytes += m?.memBytes ?? 0;
      pids += m?.pids ?? 0;
      diskBytes += this.diskUse.get(rec.name) ?? 0;
    }
    return { cpuUsageNs, memBytes, pids, diskBytes };
  }

  // ---- restart -------------------------------------------------------------------------------

  /**
   * Makes what runs match the store, after a clean stop or a `kill -9`:
   * finishes interrupted deletes and reaps expired slivers; adopts slivers that
   * still run; restarts those that should run but do not (or marks them FAILED
   * with the reason); makes sure stopped ones run nothing; removes cgroups,
   * processes and directories no record explains; and rewrites the committed
   * totals from the records.
   */
  async reconcile(): Promise<ReconcileReport> {
    const report: { adopted: string[]; restarted: string[]; failed: string[]; reaped: string[]; orphans: string[] } = {
      adopted: [],
      restarted: [],
      failed: [],
      reaped: [],
      orphans: [],
    };
    if (!this.loaded) await this.load();
    const now = this.o.clock.now();
    for (const rec of [...this.records.values()]) {
      await this.locks.run(rec.urn, async () => {
        if (rec.deleting || rec.expiresAt <= now) {
          await this.removeLocked(rec.urn);
          report.reaped.push(rec.urn);
          return;
        }
        if (rec.allocation === 'allocated') return;
        const ds = SliverManager.driverSliver(rec);
        if (rec.wantRunning) {
          if (rec.runtime && (await this.o.driver.isRunning(ds, rec.runtime))) {
            if (rec.operational !== 'ready') await this.update(rec.urn, { operational: 'ready', error: '' });
            report.adopted.push(rec.urn);
            return;
          }
          try {
            await this.provisionLocked(rec);
            await this.startLocked(rec.urn);
            report.restarted.push(rec.urn);
          } catch (err) {
            await this.update(rec.urn, {
              operational: 'failed',
              runtime: undefined,
              error: `was not running when the node manager restarted, and restarting it failed: ${(err as Error).message}`,
            });
            report.failed.push(rec.urn);
          }
          return;
        }
        // Should not run: make sure nothing does, and settle half-done transitions.
        await this.o.driver.stop(ds, rec.runtime);
        if (rec.operational === 'pending') await this.provisionLocked(rec);
        else if (rec.operational !== 'notready' && rec.operational !== 'stopped' && rec.operational !== 'failed') {
          await this.update(rec.urn, { operational: 'stopped', runtime: undefined });
        } else if (rec.runtime) await this.update(rec.urn, { runtime: undefined });
      });
    }

    const known = new Set([...this.records.values()].map((r) => r.name));
    for (const name of await this.o.driver.listArtifacts()) {
      if (known.has(name)) continue;
      try {
        await this.o.driver.destroy(name);
        report.orphans.push(name);
      } catch (err) {
        this.o.log.error({ name, err }, 'could not remove an orphaned sliver runtime');
      }
    }

    // Request ids whose sliver is gone, and the committed totals, follow the records.
    const batch = this.o.store.batch();
    for await (const [id, req] of this.requests.entries()) if (!this.records.has(req.sliverUrn)) batch.del(this.requests, id);
    const totals = this.sum();
    const stored = (await this.meta.get(COMMITTED_KEY)) ?? ZERO_COMMITTED;
    if (JSON.stringify(stored) !== JSON.stringify(totals)) {
      this.o.log.warn({ stored, fromRecords: totals }, 'committed totals did not match the records; rewritten from the records');
      batch.put(this.meta, COMMITTED_KEY, totals);
    }
    await batch.write({ sync: true });
    this.committedTotals = totals;
    return report;
  }
}

/** What {@link SliverManager.reconcile} did. */
export interface ReconcileReport {
  readonly adopted: readonly string[];
  readonly restarted: readonly string[];
  readonly failed: readonly string[];
  readonly reaped: readonly string[];
  readonly orphans: readonly string[];
}
