/**
 * The deployments as records: all of them in memory, each change applied
 * there at once and written to LevelDB in order (one write queue, so a later
 * state never lands before an earlier one), and announced as an event
 * unless it is quiet.
 */
import type { Logger } from '../../core/log.js';
import type { Store, Table } from '../../core/store/store.js';
import type { ResultStatus } from '../../generated/fedlab/v1/common.js';
import type { Clock } from '../../core/clock.js';
import { STABLE_STATES, TABLES, type DeploymentRecord, type TargetRecord } from '../records.js';
import type { DeploymentEvents } from './events.js';

/** A deploy request id's first use: the deployment it made and what it asked. */
export interface DeployRequestRecord {
  readonly name: string;
  readonly fingerprint: string;
  /** When the request id was first used (ms); unset in records written before retention existed. */
  readonly at?: number;
}

/** What a change says as an event (none when `quiet`), and whether its write is synced. */
export interface ChangeEvent {
  readonly message?: string;
  readonly sliverUrn?: string;
  readonly step?: string;
  readonly status?: ResultStatus;
  /** Carry the whole deployment; default: when the change reaches a stable state. */
  readonly snapshot?: boolean;
  readonly sync?: boolean;
  readonly quiet?: boolean;
}

/** The deployments' records. */
export class DeploymentStore {
  private readonly table: Table<DeploymentRecord>;
  private readonly requests: Table<DeployRequestRecord>;
  private readonly recs = new Map<string, DeploymentRecord>();
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: { readonly store: Store; readonly clock: Clock; readonly log: Logger; readonly events: DeploymentEvents },
  ) {
    this.table = deps.store.table<DeploymentRecord>(TABLES.deployments);
    this.requests = deps.store.table<DeployRequestRecord>(TABLES.deployRequests);
  }

  /** Loads every deployment from the store. */
  async load(): Promise<void> {
    for await (const [name, rec] of this.table.entries()) this.recs.set(name, rec);
  }

  /** A deployment's record. */
  get(name: string): DeploymentRecord | undefined {
    return this.recs.get(name);
  }

  /** Every deployment's record. */
  all(): IterableIterator<DeploymentRecord> {
    return this.recs.values();
  }

  /** Every deployment's name. */
  names(): string[] {
    return [...this.recs.keys()];
  }

  /** The first use of a deploy request id, if it was used. */
  request(requestId: string): Promise<DeployRequestRecord | undefined> {
    return this.requests.get(requestId);
  }

  /** Records a new deployment and its request id in one atomic write: a crash leaves both or neither. */
  async insert(rec: DeploymentRecord): Promise<void> {
    await this.deps.store
      .batch()
      .put(this.table, rec.name, rec)
      .put(this.requests, rec.requestId, { name: rec.name, fingerprint: rec.fingerprint, at: rec.createdAt })
      .write({ sync: true });
    this.recs.set(rec.name, rec);
  }

  /** Request ids in key order after `after` (the retention purge's scan). */
  requestEntries(after: string | undefined): AsyncGenerator<[string, DeployRequestRecord]> {
    return this.requests.entries(after !== undefined ? { gt: after } : {});
  }

  /**
   * Drops deployment records and request ids in one atomic write, and stamps `stamp` request ids (records
   * without a time) with `now`; the records leave memory once written.
   */
  async purge(
    names: readonly string[],
    requestIds: readonly string[],
    stamp: readonly [string, DeployRequestRecord][],
    now: number,
  ): Promise<void> {
    if (!names.length && !requestIds.length && !stamp.length) return;
    await this.writes;
    const batch = this.deps.store.batch();
    for (const n of names) batch.del(this.table, n);
    for (const r of requestIds) batch.del(this.requests, r);
    for (const [r, v] of stamp) batch.put(this.requests, r, { ...v, at: now });
    await batch.write({ sync: true });
    for (const n of names) this.recs.delete(n);
  }

  /** Applies a change to a deployment: memory at once, then the store in order; emits an event unless quiet. */
  async update(name: string, change: (r: DeploymentRecord) => DeploymentRecord, ev: ChangeEvent): Promise<void> {
    const cur = this.recs.get(name);
    if (!cur) return;
    // A store that has failed refuses without trying: this put rejects with its UNAVAILABLE before memory
    // changes, so a refused call changes nothing (had the store just recovered, it rewrites `cur`).
    if (this.deps.store.failure) await this.table.put(name, cur);
    const next = { ...change(cur), updatedAt: this.deps.clock.now() };
    this.recs.set(name, next);
    const write = this.writes.then(() => this.table.put(name, next, { sync: ev.sync ?? false }));
    this.writes = write.catch((err: unknown) => this.deps.log.error({ err, deployment: name }, 'deployment record not written'));
    if (!ev.quiet) {
      const snapshot = ev.snapshot ?? (STABLE_STATES.has(next.state) && next.state !== cur.state);
      const e = this.deps.events.make(next, {
        message: ev.message ?? '',
        sliverUrn: ev.sliverUrn ?? '',
        step: ev.step ?? '',
        status: ev.status,
        snapshot,
      });
      this.deps.events.emit(name, e);
    }
    await write;
  }

  /** Changes one sliver of a deployment; an event says `message` unless it is undefined. */
  async patchTarget(
    name: string,
    sliverUrn: string,
    patch: Partial<TargetRecord>,
    message: string | undefined,
    step = '',
    status?: ResultStatus,
  ): Promise<void> {
    await this.update(
      name,
      (r) => ({ ...r, targets: r.targets.map((t) => (t.sliverUrn === sliverUrn ? { ...t, ...patch } : t)) }),
      message === undefined ? { quiet: true } : { message, sliverUrn, step, ...(status ? { status } : {}) },
    );
  }

  /** Resolves once every write queued so far is done. */
  flushed(): Promise<void> {
    return this.writes;
  }
}
