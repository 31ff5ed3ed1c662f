/**
 * Deployments: a slice (created through the slice authority, or an existing
 * one) and a list of steps run on every sliver through NodeManager.Exec,
 * the last of which may be the deployment's *service*, which the provider
 * keeps running.
 *
 * Why the provider supervises Exec streams (rather than the node manager
 * owning the program): Exec is the node manager's only way to run a program
 * on a slice's behalf, and it is bounded by its call; keeping supervision here
 * needs no new node-side state and keeps the restart policy (back-off, cap,
 * counts, output) in one place the provider can report on. A supervised run
 * ends when the call ends: the command exits, the node kills it at its
 * timeout, or the provider goes away (the node kills it when the call is
 * cancelled). Restart safety comes from the intent in LevelDB: every
 * deployment records `desired` (run or delete) and each sliver's progress
 * (steps done, restarts, last output); a restarted provider resumes every
 * deployment from there: steps already done are not run again, and the
 * service is started again on every sliver (its run was killed with the old
 * provider's calls).
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { parseUrn } from '../core/identity/urn.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import { SiteRequest, SliceMode, type ResultStatus } from '../generated/fedlab/v1/common.js';
import { SliceState, type Slice } from '../generated/fedlab/v1/slice_authority.js';
import {
  DeploymentState,
  ServiceState,
  type DeployRequest,
  type DeployResponse,
  type Deployment,
  type DeploymentSpec,
  type DeploymentTarget,
  type DeployStep,
} from '../generated/fedlab/v1/service_provider.js';
import type { Clock } from './clock.js';
import { OutputLines } from './output.js';
import { TABLES, type DeploymentRecord, type DeploymentStateName, type ServiceStateName, type SpecRecord, type StepRecord, type TargetRecord } from './records.js';
import type { Remotes, SiteEndpoint } from './remotes.js';
import type { SliceCredentials } from './slice-credentials.js';
import { describeError, nameField } from './validate.js';
import { requestId, urnField } from '../core/validate.js';

const STATE: Record<DeploymentStateName, DeploymentState> = {
  pending: DeploymentState.DEPLOYMENT_STATE_PENDING,
  creating_slice: DeploymentState.DEPLOYMENT_STATE_CREATING_SLICE,
  running_steps: DeploymentState.DEPLOYMENT_STATE_RUNNING_STEPS,
  ready: DeploymentState.DEPLOYMENT_STATE_READY,
  partial: DeploymentState.DEPLOYMENT_STATE_PARTIAL,
  failed: DeploymentState.DEPLOYMENT_STATE_FAILED,
  deleting: DeploymentState.DEPLOYMENT_STATE_DELETING,
  deleted: DeploymentState.DEPLOYMENT_STATE_DELETED,
};
const SERVICE: Record<ServiceStateName, ServiceState> = {
  unspecified: ServiceState.SERVICE_STATE_UNSPECIFIED,
  starting: ServiceState.SERVICE_STATE_STARTING,
  running: ServiceState.SERVICE_STATE_RUNNING,
  backoff: ServiceState.SERVICE_STATE_BACKOFF,
  exited: ServiceState.SERVICE_STATE_EXITED,
  failed: ServiceState.SERVICE_STATE_FAILED,
  stopped: ServiceState.SERVICE_STATE_STOPPED,
};
const STABLE: ReadonlySet<DeploymentStateName> = new Set(['ready', 'partial', 'failed', 'deleted']);
const SETTLED: ReadonlySet<ServiceStateName> = new Set(['running', 'exited', 'failed', 'stopped', 'backoff']);
/** How often a deployment's output is written to its record, at most (ms). */
const OUTPUT_FLUSH_MS = 250;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const CODE = { notFound: 5, permissionDenied: 7, failedPrecondition: 9, unavailable: 14, unauthenticated: 16 } as const;

/** Supervision settings. */
export interface SupervisionSettings {
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly backoffResetMs: number;
  readonly outputLines: number;
  readonly execTimeoutMs: number;
  readonly retryMs: number;
}

/** Options of {@link Deployments}. */
export interface DeploymentsOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly remotes: Remotes;
  readonly credentials: SliceCredentials;
  readonly sliceAuthorityUrn: string;
  readonly sites: readonly SiteEndpoint[];
  readonly supervision: SupervisionSettings;
  readonly sliceDeadlineMs: number;
  readonly maDeadlineMs: number;
}

interface Listener {
  (event: DeployResponse): void;
}

interface Live {
  readonly abort: AbortController;
  readonly tasks: Set<Promise<void>>;
}

/** The delay before restart number `n` (1-based) of a service: doubling from `initial`, capped at `max`. */
export function backoffDelay(n: number, initialMs: number, maxMs: number): number {
  return Math.min(initialMs * 2 ** Math.min(Math.max(n - 1, 0), 40), maxMs);
}

/** How a run ended, in words. */
export function exitText(exit: { code?: number | undefined; signal?: string | undefined; timedOut?: boolean | undefined }): string {
  const base = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code ?? 0}`;
  return exit.timedOut ? `${base} (timed out)` : base;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The provider's deployments. */
export class Deployments {
  private readonly table: Table<DeploymentRecord>;
  private readonly requests: Table<{ readonly name: string; readonly fingerprint: string }>;
  private readonly recs = new Map<string, DeploymentRecord>();
  private readonly live = new Map<string, Live>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly sequences = new Map<string, number>();
  private readonly outputs = new Map<string, OutputLines>();
  private writes: Promise<void> = Promise.resolve();
  private admission: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly retries = new Set<NodeJS.Timeout>();
  private readonly outputDirty = new Map<string, Set<string>>();
  private readonly outputTimers = new Map<string, NodeJS.Timeout>();
  private readonly siteByDomain: ReadonlyMap<string, SiteEndpoint>;

  constructor(private readonly o: DeploymentsOptions) {
    this.table = o.store.table<DeploymentRecord>(TABLES.deployments);
    this.requests = o.store.table(TABLES.deployRequests);
    this.siteByDomain = new Map(o.sites.map((s) => [s.domain, s]));
  }

  /** Loads every deployment and resumes what the records say should be running or deleted. */
  async start(): Promise<{ resumed: number; deleting: number }> {
    for await (const [name, rec] of this.table.entries()) this.recs.set(name, rec);
    let resumed = 0;
    let deleting = 0;
    for (const rec of this.recs.values()) {
      if (rec.desired === 'delete' && rec.state !== 'deleted') {
        deleting++;
        this.spawn(rec.name, (signal) => this.finishDelete(rec.name, signal));
      } else if (rec.desired === 'run' && rec.state !== 'failed' && rec.state !== 'deleted') {
        resumed++;
        this.spawn(rec.name, (signal) => this.drive(rec.name, signal));
      }
    }
    if (resumed + deleting > 0) this.o.log.info({ resumed, deleting }, 'deployments resumed');
    return { resumed, deleting };
  }

  /** Stops every supervisor (their Exec calls are cancelled) and waits for pending writes. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const l of this.live.values()) l.abort.abort();
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    await Promise.allSettled([...this.live.values()].flatMap((l) => [...l.tasks]));
    for (const name of [...this.outputTimers.keys()]) this.applyOutput(name);
    await this.writes;
  }

  // ---- Deploy ----

  /** Deploy: records the deployment (or finds the one of this request id) and streams its progress until it is stable. */
  async *deploy(req: DeployRequest, signal: AbortSignal): AsyncGenerator<DeployResponse> {
    const rid = requestId(req.requestId);
    const name = nameField('name', req.name);
    const spec = this.checkSpec(req.spec);
    const fingerprint = createHash('sha256').update(canonicalJson({ name, spec })).digest('base64url');
    const events: DeployResponse[] = [];
    let wake: (() => void) | undefined;
    const listener: Listener = (e) => {
      events.push(e);
      wake?.();
    };
    // Subscribe before anything can happen, so no event is missed.
    const { rec, first } = await this.admit(rid, name, spec, fingerprint, listener);
    const onAbort = (): void => wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      yield first;
      if (STABLE.has(rec.state)) return;
      for (;;) {
        while (events.length > 0) {
          const e = events.shift() as DeployResponse;
          yield e;
          if (e.deployment) return;
        }
        if (signal.aborted) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.listeners.get(name)?.delete(listener);
    }
  }

  /** Records a new deployment (or finds this request's) and subscribes; the first event is made at subscription, so no event comes before it. */
  private async admit(rid: string, name: string, spec: SpecRecord, fingerprint: string, listener: Listener): Promise<{ rec: DeploymentRecord; first: DeployResponse }> {
    const run = this.admission.then(async () => {
      const seen = await this.requests.get(rid);
      if (seen) {
        if (seen.fingerprint !== fingerprint || seen.name !== name) {
          throw new AlreadyExistsError(`request id ${rid} was already used for another deployment (${seen.name}); use a new request id`, { rule: 'request_id' });
        }
        const existing = this.recs.get(name);
        if (!existing) throw new NotFoundError(`deployment ${name} of request ${rid} is gone`);
        this.subscribe(name, listener);
        return { rec: existing, first: this.event(existing, { message: `deployment is ${existing.state}`, snapshot: true, consume: true }) };
      }
      const existing = this.recs.get(name);
      if (existing && existing.state !== 'deleted') {
        throw new AlreadyExistsError(`deployment ${name} already exists (request ${existing.requestId}); delete it first or choose another name`, { field: 'name' });
      }
      if (this.stopped) throw new FailedPreconditionError('the service provider is stopping; try again');
      const now = this.o.clock.now();
      const rec: DeploymentRecord = {
        name,
        requestId: rid,
        fingerprint,
        spec,
        state: 'pending',
        desired: 'run',
        deleteSlice: false,
        sliceUrn: spec.sliceUrn,
        createdSlice: false,
        targets: [],
        createdAt: now,
        updatedAt: now,
        error: '',
      };
      // The deployment and its request id are one atomic write: a crash leaves both or neither.
      await this.o.store.batch().put(this.table, name, rec).put(this.requests, rid, { name, fingerprint }).write({ sync: true });
      this.recs.set(name, rec);
      this.sequences.set(name, 0);
      this.subscribe(name, listener);
      const first = this.event(rec, { message: 'deployment recorded', snapshot: true });
      this.o.log.info({ deployment: name, request: rid }, 'deployment recorded');
      this.spawn(name, (signal) => this.drive(name, signal));
      return { rec, first };
    });
    this.admission = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private subscribe(name: string, listener: Listener): void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener);
  }

  /** Reads and checks a DeploymentSpec; everything the provider itself can check, it checks here. */
  private checkSpec(spec: DeploymentSpec | undefined): SpecRecord {
    if (!spec) throw new InvalidArgumentError('spec is required: the slice to use or create and the steps to run', { field: 'spec' });
    const sliceUrn = spec.sliceUrn ? urnField('spec.slice_urn', spec.sliceUrn, 'slice') && spec.sliceUrn : '';
    if (spec.sliceAuthorityUrn && spec.sliceAuthorityUrn !== this.o.sliceAuthorityUrn) {
      throw new InvalidArgumentError(`spec.slice_authority_urn: this provider works with ${this.o.sliceAuthorityUrn} only; leave it empty`, { field: 'spec.slice_authority_urn' });
    }
    if (spec.sliceName) nameField('spec.slice_name', spec.sliceName);
    if (!sliceUrn && spec.sites.length === 0) {
      throw new InvalidArgumentError('spec.sites is empty: name at least one site and its nodes (or give spec.slice_urn of an existing slice)', { field: 'spec.sites' });
    }
    if (sliceUrn && spec.sites.length > 0) throw new InvalidArgumentError('give spec.slice_urn or spec.sites, not both', { field: 'spec.sites' });
    const domains = new Set<string>();
    for (const s of spec.sites) {
      if (domains.has(s.site)) throw new InvalidArgumentError(`site ${s.site} appears twice in spec.sites`, { field: 'spec.sites' });
      domains.add(s.site);
      if (!this.siteByDomain.has(s.site)) {
        throw new InvalidArgumentError(`site ${s.site} is not one this provider knows (config sites[]: ${[...this.siteByDomain.keys()].join(', ') || 'none'})`, { field: 'spec.sites' });
      }
    }
    if (spec.steps.length === 0) throw new InvalidArgumentError('spec.steps is empty: give at least one command to run', { field: 'spec.steps' });
    if (spec.steps.length > 32) throw new InvalidArgumentError('spec.steps: at most 32 steps', { field: 'spec.steps' });
    const steps = spec.steps.map((s, i) => checkStep(s, i, i === spec.steps.length - 1));
    const expiresAt = spec.expiresAt?.getTime();
    if (expiresAt !== undefined && expiresAt <= this.o.clock.now()) throw new InvalidArgumentError('spec.expires_at is in the past', { field: 'spec.expires_at' });
    return {
      sliceUrn,
      sliceAuthorityUrn: this.o.sliceAuthorityUrn,
      sliceName: spec.sliceName,
      mode: spec.mode,
      sites: spec.sites.map((s) => SiteRequest.toJSON(s)),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
      steps,
    };
  }

  // ---- Reads ----

  /** One deployment. */
  get(name: string): Deployment {
    nameField('name', name);
    const rec = this.recs.get(name);
    if (!rec) throw new NotFoundError(`no deployment ${name}; list them with ListDeployments`);
    return this.wire(rec);
  }

  /** A page of deployments by name; UNSPECIFIED state: all but DELETED. */
  list(pageSize: number, pageToken: string, state: DeploymentState): { deployments: Deployment[]; nextPageToken: string } {
    if (!Number.isSafeInteger(pageSize) || pageSize < 0) throw new InvalidArgumentError('page_size must be 0 or more', { field: 'page_size' });
    const size = Math.min(pageSize || 100, 1000);
    let after = '';
    if (pageToken) {
      const text = Buffer.from(pageToken, 'base64url').toString();
      if (!text.startsWith('d:')) throw new InvalidArgumentError('page_token is not one this provider gave out; start again with an empty token', { field: 'page_token' });
      after = text.slice(2);
    }
    const names = [...this.recs.keys()].sort().filter((n) => n > after);
    const out: DeploymentRecord[] = [];
    let last = '';
    let more = false;
    for (const n of names) {
      const rec = this.recs.get(n) as DeploymentRecord;
      const keep = state === DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED ? rec.state !== 'deleted' : STATE[rec.state] === state;
      if (!keep) continue;
      if (out.length === size) {
        more = true;
        break;
      }
      out.push(rec);
      last = n;
    }
    return { deployments: out.map((r) => this.wire(r)), nextPageToken: more ? Buffer.from(`d:${last}`).toString('base64url') : '' };
  }

  /** Whether a live (not deleted) deployment runs on this slice. */
  ownsSlice(sliceUrn: string): boolean {
    for (const r of this.recs.values()) if (r.sliceUrn === sliceUrn && r.state !== 'deleted') return true;
    return false;
  }

  /** The record (tests and the member service read it). */
  record(name: string): DeploymentRecord | undefined {
    return this.recs.get(name);
  }

  // ---- Delete ----

  /** DeleteDeployment: stops every sliver's service, deletes the slice if this deployment made it (unless kept). Idempotent. */
  async delete(name: string, keepSlice: boolean): Promise<Deployment> {
    nameField('name', name);
    const rec = this.recs.get(name);
    if (!rec) throw new NotFoundError(`no deployment ${name}; list them with ListDeployments`);
    if (rec.state === 'deleted') return this.wire(rec);
    if (rec.desired !== 'delete') {
      // A deployment that asked for its own slice deletes it, even if the answer to CreateSlice never arrived.
      await this.update(name, (r) => ({ ...r, desired: 'delete', state: 'deleting', deleteSlice: !r.spec.sliceUrn && !keepSlice }), { message: 'deleting', sync: true });
    }
    // Stop supervision first: cancelling the Exec calls makes the nodes kill the commands.
    await this.stopLive(name);
    const signal = new AbortController().signal;
    await this.finishDelete(name, signal);
    return this.wire(this.recs.get(name) as DeploymentRecord);
  }

  private async stopLive(name: string): Promise<void> {
    const l = this.live.get(name);
    if (!l) return;
    l.abort.abort();
    await Promise.allSettled([...l.tasks]);
    this.live.delete(name);
  }

  private async finishDelete(name: string, signal: AbortSignal): Promise<void> {
    const rec = this.recs.get(name);
    if (!rec || rec.state === 'deleted') return;
    if (rec.deleteSlice) {
      try {
        const sliceUrn = rec.sliceUrn || (await this.findOwnSlice(rec, signal));
        if (!sliceUrn) throw Object.assign(new Error('no slice'), { code: CODE.notFound, details: 'no slice was made for this deployment' });
        const res = await this.o.remotes.sliceAuthority().deleteSlice({ sliceUrn }, { deadlineMs: this.o.sliceDeadlineMs, signal });
        this.o.log.info({ deployment: name, slice: rec.sliceUrn, state: res.slice?.state }, 'slice deleted');
      } catch (err) {
        const { code, reason } = describeError(err);
        if (code !== CODE.notFound) {
          await this.update(name, (r) => ({ ...r, error: `deleting slice ${r.sliceUrn}: ${reason}` }), { message: `slice not deleted yet (${reason}); retrying` });
          if (!this.stopped && !signal.aborted) {
            this.spawnLater(name, this.o.supervision.retryMs, (s) => this.finishDelete(name, s));
          }
          return;
        }
      }
      if (rec.sliceUrn) await this.o.credentials.forget(rec.sliceUrn);
    }
    await this.update(
      name,
      (r) => ({ ...r, state: 'deleted', error: '', targets: r.targets.map((t) => ({ ...t, service: t.service === 'failed' ? t.service : ('stopped' as const), nextRestartAt: undefined })) }),
      { message: 'deployment deleted', sync: true, snapshot: true },
    );
  }

  /** The slice the slice authority made for this deployment's CreateSlice request id, if any (when the answer was lost). */
  private async findOwnSlice(rec: DeploymentRecord, signal: AbortSignal): Promise<string> {
    const rid = sliceRequestId(rec.requestId);
    let token = '';
    do {
      const page = await this.o.remotes.sliceAuthority().listSlices({ pageSize: 1000, pageToken: token, state: SliceState.SLICE_STATE_UNSPECIFIED }, { signal });
      const hit = page.slices.find((x) => x.requestId === rid);
      if (hit) return hit.urn;
      token = page.nextPageToken;
    } while (token);
    return '';
  }

  // ---- Driving a deployment ----

  private spawn(name: string, task: (signal: AbortSignal) => Promise<void>): void {
    let l = this.live.get(name);
    if (!l) {
      l = { abort: new AbortController(), tasks: new Set() };
      this.live.set(name, l);
    }
    const live = l;
    const p = task(live.abort.signal)
      .catch((err: unknown) => this.o.log.error({ err, deployment: name }, 'deployment task failed'))
      .finally(() => live.tasks.delete(p));
    live.tasks.add(p);
  }

  /** Runs a task after `ms` (a retry); a stop cancels the wait. */
  private spawnLater(name: string, ms: number, task: (signal: AbortSignal) => Promise<void>): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      if (!this.stopped) this.spawn(name, task);
    }, ms);
    timer.unref();
    this.retries.add(timer);
  }

  /** Carries a deployment forward from wherever its record says it is. */
  private async drive(name: string, signal: AbortSignal): Promise<void> {
    let rec = this.recs.get(name) as DeploymentRecord;
    if (rec.targets.length === 0) {
      await this.update(name, (r) => ({ ...r, state: 'creating_slice' }), { message: rec.spec.sliceUrn ? `checking slice ${rec.spec.sliceUrn}` : 'creating the slice' });
      let slice: Slice;
      try {
        slice = await this.ensureSlice(rec, signal);
      } catch (err) {
        if (signal.aborted) return;
        const { code, reason } = describeError(err);
        if (code === CODE.unavailable || code === 4) {
          // The slice authority is unreachable: the intent stays, and the provider tries again.
          await this.update(name, (r) => ({ ...r, error: `slice authority: ${reason}` }), { message: `slice authority unreachable (${reason}); retrying`, status: { code, reason } });
          this.spawnLater(name, this.o.supervision.retryMs, (s) => this.drive(name, s));
          return;
        }
        await this.update(name, (r) => ({ ...r, state: 'failed', error: `slice: ${reason}` }), { message: `slice failed: ${reason}`, status: { code, reason }, snapshot: true, sync: true });
        return;
      }
      const targets = await this.targetsOf(slice, signal);
      if (signal.aborted) return;
      const problems = slice.sites
        .filter((x) => (x.status?.code ?? 0) !== 0)
        .map((x) => `${x.site}: ${x.status?.reason ?? ''}`)
        .join('; ');
      await this.update(name, (r) => ({ ...r, sliceUrn: slice.urn, targets, ...(problems ? { sliceProblems: problems } : {}) }), {
        message: `slice ${slice.urn}: ${targets.length} slivers${problems ? ` (failed at ${problems})` : ''}`,
        sync: true,
      });
      rec = this.recs.get(name) as DeploymentRecord;
      if (targets.length === 0) {
        await this.update(name, (r) => ({ ...r, state: 'failed', error: `slice ${slice.urn} has no provisioned sliver` }), { message: 'no sliver to deploy to', snapshot: true, sync: true });
        return;
      }
    }
    if (!STABLE.has(rec.state)) await this.update(name, (r) => ({ ...r, state: 'running_steps' }), { message: 'running the steps on every sliver' });
    for (const t of rec.targets) {
      if (t.service === 'failed' || t.service === 'exited' || t.service === 'stopped') continue;
      this.spawn(name, (s) => this.supervise(name, t.sliverUrn, s));
    }
    this.settleWhenReady(name);
  }

  /** Creates the slice through the slice authority (idempotent on the deployment's request id), or reads the given one. */
  private async ensureSlice(rec: DeploymentRecord, signal: AbortSignal): Promise<Slice> {
    const sa = this.o.remotes.sliceAuthority();
    let slice: Slice | undefined;
    if (rec.spec.sliceUrn) {
      slice = (await sa.getSlice({ sliceUrn: rec.spec.sliceUrn }, { signal })).slice;
    } else {
      const res = await sa.createSlice(
        {
          requestId: sliceRequestId(rec.requestId),
          name: rec.spec.sliceName || rec.name,
          description: `deployment ${rec.name}`,
          mode: rec.spec.mode || SliceMode.SLICE_MODE_ALL_OR_NOTHING,
          sites: rec.spec.sites.map((s) => SiteRequest.fromJSON(s)),
          expiresAt: rec.spec.expiresAt !== undefined ? new Date(rec.spec.expiresAt) : undefined,
          start: true,
          wait: true,
        },
        { deadlineMs: this.o.sliceDeadlineMs, signal },
      );
      slice = res.slice;
      if (slice) await this.update(rec.name, (r) => ({ ...r, sliceUrn: (slice as Slice).urn, createdSlice: true }), { message: `slice ${slice.urn} is ${SliceState[slice.state]}`, sync: true });
    }
    const deadline = this.o.clock.now() + this.o.sliceDeadlineMs;
    while (slice && (slice.state === SliceState.SLICE_STATE_PENDING || slice.state === SliceState.SLICE_STATE_UNSPECIFIED)) {
      if (this.o.clock.now() > deadline) throw Object.assign(new Error(`slice ${slice.urn} is still PENDING after ${this.o.sliceDeadlineMs} ms`), { code: 4, details: `slice ${slice.urn} is still PENDING` });
      await sleep(250, signal);
      if (signal.aborted) throw new Error('stopped');
      slice = (await sa.getSlice({ sliceUrn: slice.urn }, { signal })).slice;
    }
    if (!slice) throw new Error('the slice authority returned no slice');
    if (slice.state !== SliceState.SLICE_STATE_READY && slice.state !== SliceState.SLICE_STATE_PARTIAL) {
      const why = slice.sites
        .filter((s) => (s.status?.code ?? 0) !== 0)
        .map((s) => `${s.site}: ${s.status?.reason ?? ''}`)
        .join('; ');
      throw Object.assign(new Error(`slice ${slice.urn} is ${SliceState[slice.state]}${why ? ` (${why})` : ''}`), {
        code: CODE.failedPrecondition,
        details: `slice ${slice.urn} is ${SliceState[slice.state].replace('SLICE_STATE_', '')}${why ? ` (${why})` : ''}`,
      });
    }
    return slice;
  }

  /** The slice's provisioned slivers, each with its node manager's endpoint (from the site's MA). */
  private async targetsOf(slice: Slice, signal: AbortSignal): Promise<TargetRecord[]> {
    const out: TargetRecord[] = [];
    await Promise.all(
      slice.slivers
        .filter((s) => s.allocationState === 3 /* PROVISIONED */ && s.nodeUrn)
        .map(async (s) => {
          const site = parseUrn(s.urn).domain;
          const base: TargetRecord = {
            sliverUrn: s.urn,
            nodeUrn: s.nodeUrn,
            site,
            endpoint: '',
            stepsDone: 0,
            code: 0,
            reason: '',
            service: 'starting',
            restarts: 0,
            lastOutput: [],
            lastExit: '',
          };
          const siteEp = this.siteByDomain.get(parseUrn(s.nodeUrn).domain);
          if (!siteEp) {
            out.push({ ...base, service: 'failed', code: CODE.failedPrecondition, reason: `site ${site} is not in this provider's config (sites[]): its node managers cannot be found` });
            return;
          }
          try {
            const { ma } = this.o.remotes.site(siteEp);
            const node = (await ma.getNode({ nodeUrn: s.nodeUrn }, { deadlineMs: this.o.maDeadlineMs, signal })).node;
            if (!node?.endpoint) throw Object.assign(new Error('no endpoint'), { code: CODE.failedPrecondition, details: `the site does not know ${s.nodeUrn}'s endpoint` });
            out.push({ ...base, endpoint: node.endpoint });
          } catch (err) {
            // The endpoint is looked up again when the sliver is supervised.
            out.push(base);
            this.o.log.warn({ sliver: s.urn, reason: describeError(err).reason }, 'node endpoint not known yet');
          }
        }),
    );
    return out.sort((a, b) => (a.sliverUrn < b.sliverUrn ? -1 : 1));
  }

  /** Marks the deployment READY / PARTIAL / FAILED once every sliver settled. */
  private settleWhenReady(name: string): void {
    const rec = this.recs.get(name);
    if (!rec || rec.desired !== 'run' || STABLE.has(rec.state)) return;
    if (!rec.targets.every((t) => SETTLED.has(t.service) && !(t.service === 'backoff' && t.restarts === 0))) return;
    const failed = rec.targets.filter((t) => t.service === 'failed');
    const state: DeploymentStateName = failed.length === rec.targets.length ? 'failed' : failed.length > 0 || rec.sliceProblems ? 'partial' : 'ready';
    const error = [rec.sliceProblems ?? '', ...failed.map((t) => `${t.sliverUrn}: ${t.reason}`)].filter(Boolean).join('; ');
    void this.update(name, (r) => ({ ...r, state, error }), { message: `deployment ${state}`, snapshot: true, sync: true });
  }

  /** Runs the steps on one sliver, then keeps its service running. */
  private async supervise(name: string, sliverUrn: string, signal: AbortSignal): Promise<void> {
    const s = this.o.supervision;
    let failuresInRow = 0;
    while (!signal.aborted && !this.stopped) {
      const rec = this.recs.get(name);
      const t = rec?.targets.find((x) => x.sliverUrn === sliverUrn);
      if (!rec || !t || rec.desired !== 'run') return;
      const steps = rec.spec.steps;
      if (t.stepsDone >= steps.length) {
        await this.patchTarget(name, sliverUrn, { service: 'exited' }, `all steps done on ${sliverUrn}`);
        return;
      }
      const step = steps[t.stepsDone] as StepRecord;
      let endpoint = t.endpoint;
      if (!endpoint) {
        try {
          endpoint = await this.lookupEndpoint(t, signal);
          await this.patchTarget(name, sliverUrn, { endpoint }, undefined);
        } catch (err) {
          const { code, reason } = describeError(err);
          await this.patchTarget(name, sliverUrn, { code, reason: `node endpoint: ${reason}` }, `cannot find ${t.nodeUrn}'s node manager (${reason}); retrying`);
          await sleep(s.retryMs, signal);
          continue;
        }
      }
      const started = this.o.clock.now();
      await this.patchTarget(name, sliverUrn, { service: step.service ? 'running' : 'starting', code: 0, reason: '', nextRestartAt: undefined }, step.service ? `service ${step.name} started on ${sliverUrn}` : `step ${step.name} on ${sliverUrn}`, step.name);
      if (step.service) this.settleWhenReady(name);
      let result: { exit?: { code?: number; signal?: string; timedOut: boolean }; error?: { code: number; reason: string } };
      try {
        result = { exit: await this.runExec(rec, t, endpoint, step, signal) };
      } catch (err) {
        result = { error: describeError(err) };
      }
      this.flushOutput(name, sliverUrn);
      if (signal.aborted || this.stopped) return;
      const ranMs = this.o.clock.now() - started;
      if (result.exit && !result.exit.signal && (result.exit.code ?? 0) === 0 && !result.exit.timedOut) {
        failuresInRow = 0;
        if (step.service) {
          await this.patchTarget(name, sliverUrn, { service: 'exited', stepsDone: t.stepsDone + 1, lastExit: 'exit code 0' }, `service ${step.name} exited 0 on ${sliverUrn}; not restarted`, step.name);
          this.settleWhenReady(name);
          return;
        }
        await this.patchTarget(name, sliverUrn, { stepsDone: t.stepsDone + 1 }, `step ${step.name} done on ${sliverUrn}`, step.name);
        continue;
      }
      const why = result.exit ? exitText(result.exit) : (result.error?.reason ?? 'unknown error');
      const code = result.error?.code ?? CODE.failedPrecondition;
      if (result.error && code === CODE.notFound) {
        await this.patchTarget(name, sliverUrn, { service: 'failed', code, reason: `the sliver is gone: ${why}` }, `sliver ${sliverUrn} is gone`, step.name, { code, reason: why });
        this.settleWhenReady(name);
        return;
      }
      if (result.error && (code === CODE.unauthenticated || code === CODE.permissionDenied)) await this.o.credentials.forget(rec.sliceUrn);
      // A node that cannot be reached may have moved: ask its site for the endpoint again next time.
      if (result.error && code === CODE.unavailable) await this.patchTarget(name, sliverUrn, { endpoint: '' }, undefined);
      if (!step.service) {
        if (result.exit) {
          const reason = `step ${step.name} failed: ${why}`;
          await this.patchTarget(name, sliverUrn, { service: 'failed', code: CODE.failedPrecondition, reason }, `${reason} on ${sliverUrn}`, step.name, { code: CODE.failedPrecondition, reason });
          this.settleWhenReady(name);
          return;
        }
        // The node could not be reached (or refused the credential): try the step again.
        await this.patchTarget(name, sliverUrn, { code, reason: `step ${step.name}: ${why}` }, `step ${step.name} on ${sliverUrn} could not run (${why}); retrying`, step.name, { code, reason: why });
        await sleep(s.retryMs, signal);
        continue;
      }
      if (ranMs >= s.backoffResetMs) failuresInRow = 0;
      failuresInRow++;
      const delay = backoffDelay(failuresInRow, s.backoffInitialMs, s.backoffMaxMs);
      this.outputFor(name, sliverUrn).note(`[fedlab] service ${step.name} ended: ${why}; restarting in ${delay} ms`);
      this.flushOutput(name, sliverUrn);
      await this.patchTarget(
        name,
        sliverUrn,
        { service: 'backoff', restarts: t.restarts + 1, lastExit: why, nextRestartAt: this.o.clock.now() + delay, code: result.error ? code : 0, reason: result.error ? why : '' },
        `service ${step.name} on ${sliverUrn} ended (${why}); restart ${t.restarts + 1} in ${delay} ms`,
        step.name,
        { code, reason: why },
      );
      this.settleWhenReady(name);
      await sleep(delay, signal);
    }
  }

  private async lookupEndpoint(t: TargetRecord, signal: AbortSignal): Promise<string> {
    const siteEp = this.siteByDomain.get(parseUrn(t.nodeUrn).domain);
    if (!siteEp) throw Object.assign(new Error('unknown site'), { code: CODE.failedPrecondition, details: `site ${t.site} is not in this provider's config (sites[])` });
    const node = (await this.o.remotes.site(siteEp).ma.getNode({ nodeUrn: t.nodeUrn }, { deadlineMs: this.o.maDeadlineMs, signal })).node;
    if (!node?.endpoint) throw Object.assign(new Error('no endpoint'), { code: CODE.failedPrecondition, details: `the site does not know ${t.nodeUrn}'s endpoint` });
    return node.endpoint;
  }

  /** One Exec of a step on a sliver, output into the sliver's lines; resolves with the exit. */
  private async runExec(rec: DeploymentRecord, t: TargetRecord, endpoint: string, step: StepRecord, signal: AbortSignal): Promise<{ code?: number; signal?: string; timedOut: boolean }> {
    const chain = await this.o.credentials.chainFor(rec.sliceUrn, signal);
    const nm = this.o.remotes.nodeManager(endpoint, t.nodeUrn);
    const timeoutMs = step.timeoutMs || (step.service ? this.o.supervision.execTimeoutMs : 0);
    const out = this.outputFor(rec.name, t.sliverUrn);
    const stream = nm.exec(
      {
        sliverUrn: t.sliverUrn,
        argv: [...step.argv],
        env: { ...step.env },
        ...(step.stdin !== undefined ? { stdin: Buffer.from(step.stdin, 'base64') } : {}),
        timeoutMs,
      },
      // The node bounds the run by timeout_ms; the call's deadline only has to outlast it.
      { chain, signal, deadlineMs: (timeoutMs || 3_600_000) + 30_000 },
    );
    try {
      for await (const msg of stream) {
        const c = msg.chunk;
        if (!c) continue;
        if (c.$case === 'stdout') out.write('stdout', c.stdout);
        else if (c.$case === 'stderr') out.write('stderr', c.stderr);
        else {
          const st = c.exit.status;
          return { ...(st?.$case === 'signal' ? { signal: st.signal } : { code: st?.$case === 'code' ? st.code : 0 }), timedOut: c.exit.timedOut };
        }
        this.flushOutput(rec.name, t.sliverUrn);
      }
    } finally {
      out.end();
    }
    throw Object.assign(new Error('the exec stream ended without an exit'), { code: CODE.unavailable, details: 'the exec stream ended without an exit' });
  }

  private outputFor(name: string, sliverUrn: string): OutputLines {
    const key = `${name} ${sliverUrn}`;
    let o = this.outputs.get(key);
    if (!o) {
      const t = this.recs.get(name)?.targets.find((x) => x.sliverUrn === sliverUrn);
      o = new OutputLines(this.o.supervision.outputLines, t?.lastOutput ?? []);
      this.outputs.set(key, o);
    }
    return o;
  }

  /**
   * Marks a sliver's output for the record. Output reaches the record (and readers) in one write per
   * deployment at most every OUTPUT_FLUSH_MS, however many slivers are talking: each write is the
   * whole deployment record.
   */
  private flushOutput(name: string, sliverUrn: string): void {
    let dirty = this.outputDirty.get(name);
    if (!dirty) {
      dirty = new Set();
      this.outputDirty.set(name, dirty);
    }
    dirty.add(sliverUrn);
    if (this.outputTimers.has(name)) return;
    const timer = setTimeout(() => this.applyOutput(name), OUTPUT_FLUSH_MS);
    timer.unref();
    this.outputTimers.set(name, timer);
  }

  private applyOutput(name: string): void {
    clearTimeout(this.outputTimers.get(name));
    this.outputTimers.delete(name);
    const dirty = this.outputDirty.get(name);
    this.outputDirty.delete(name);
    const lines = new Map<string, string[]>();
    for (const sliverUrn of dirty ?? []) {
      const o = this.outputs.get(`${name} ${sliverUrn}`);
      if (o?.changed) lines.set(sliverUrn, o.take());
    }
    if (lines.size === 0) return;
    void this.update(name, (r) => ({ ...r, targets: r.targets.map((t) => (lines.has(t.sliverUrn) ? { ...t, lastOutput: lines.get(t.sliverUrn) as string[] } : t)) }), { quiet: true });
  }

  // ---- Records and events ----

  private async patchTarget(name: string, sliverUrn: string, patch: Partial<TargetRecord>, message: string | undefined, step = '', status?: ResultStatus): Promise<void> {
    await this.update(
      name,
      (r) => ({ ...r, targets: r.targets.map((t) => (t.sliverUrn === sliverUrn ? { ...t, ...patch } : t)) }),
      message === undefined ? { quiet: true } : { message, sliverUrn, step, ...(status ? { status } : {}) },
    );
  }

  /** Applies a change to a deployment: memory at once, then the store in order; emits an event unless quiet. */
  private async update(
    name: string,
    change: (r: DeploymentRecord) => DeploymentRecord,
    ev: { message?: string; sliverUrn?: string; step?: string; status?: ResultStatus; snapshot?: boolean; sync?: boolean; quiet?: boolean },
  ): Promise<void> {
    const cur = this.recs.get(name);
    if (!cur) return;
    const next = { ...change(cur), updatedAt: this.o.clock.now() };
    this.recs.set(name, next);
    const write = this.writes.then(() => this.table.put(name, next, { sync: ev.sync ?? false }));
    this.writes = write.catch((err: unknown) => this.o.log.error({ err, deployment: name }, 'deployment record not written'));
    if (!ev.quiet) {
      const e = this.event(next, { message: ev.message ?? '', sliverUrn: ev.sliverUrn ?? '', step: ev.step ?? '', status: ev.status, snapshot: ev.snapshot ?? (STABLE.has(next.state) && next.state !== cur.state) });
      for (const l of this.listeners.get(name) ?? []) l(e);
    }
    await write;
  }

  private event(
    rec: DeploymentRecord,
    o: { message: string; sliverUrn?: string; step?: string; status?: ResultStatus | undefined; snapshot: boolean; consume?: boolean },
  ): DeployResponse {
    const seq = (this.sequences.get(rec.name) ?? 0) + 1;
    if (!o.consume) this.sequences.set(rec.name, seq);
    const t = o.sliverUrn ? rec.targets.find((x) => x.sliverUrn === o.sliverUrn) : undefined;
    return {
      sequence: o.consume ? this.sequences.get(rec.name) ?? 0 : seq,
      time: new Date(this.o.clock.now()),
      deploymentName: rec.name,
      state: STATE[rec.state],
      site: t?.site ?? '',
      sliverUrn: o.sliverUrn ?? '',
      step: o.step ?? '',
      status: o.status ?? { code: 0, reason: '' },
      message: o.message,
      deployment: o.snapshot ? this.wire(rec) : undefined,
    };
  }

  /** The wire form of a deployment. */
  wire(rec: DeploymentRecord): Deployment {
    return {
      name: rec.name,
      spec: {
        sliceUrn: rec.spec.sliceUrn,
        sliceAuthorityUrn: rec.spec.sliceAuthorityUrn,
        sliceName: rec.spec.sliceName,
        mode: rec.spec.mode,
        sites: rec.spec.sites.map((s) => SiteRequest.fromJSON(s)),
        expiresAt: rec.spec.expiresAt !== undefined ? new Date(rec.spec.expiresAt) : undefined,
        steps: rec.spec.steps.map(
          (s): DeployStep => ({
            name: s.name,
            argv: [...s.argv],
            env: { ...s.env },
            ...(s.stdin !== undefined ? { stdin: Buffer.from(s.stdin, 'base64') } : {}),
            timeoutMs: s.timeoutMs,
            service: s.service,
          }),
        ),
      },
      sliceUrn: rec.sliceUrn,
      state: STATE[rec.state],
      targets: rec.targets.map(
        (t): DeploymentTarget => ({
          sliverUrn: t.sliverUrn,
          nodeUrn: t.nodeUrn,
          site: t.site,
          stepsDone: t.stepsDone,
          status: { code: t.code, reason: t.reason },
          serviceState: SERVICE[t.service],
          restarts: t.restarts,
          lastOutput: [...t.lastOutput],
          lastExit: t.lastExit,
          nextRestartAt: t.nextRestartAt !== undefined ? new Date(t.nextRestartAt) : undefined,
          nodeEndpoint: t.endpoint,
        }),
      ),
      createdAt: new Date(rec.createdAt),
      updatedAt: new Date(rec.updatedAt),
      error: rec.error,
      requestId: rec.requestId,
    };
  }
}

/** The CreateSlice request id of a deployment: derived from its own, so a retry after a crash is the same request. */
function sliceRequestId(deployRequestId: string): string {
  return `deploy.${deployRequestId}`.slice(0, 128);
}

function checkStep(s: DeployStep, i: number, last: boolean): StepRecord {
  const field = `spec.steps[${i}]`;
  if (s.argv.length === 0 || !s.argv[0]) throw new InvalidArgumentError(`${field}.argv is empty: give the program and its arguments`, { field: `${field}.argv` });
  if (s.argv.length > 1024 || s.argv.some((a) => typeof a !== 'string' || a.length > 65_536 || a.includes('\0'))) {
    throw new InvalidArgumentError(`${field}.argv: at most 1024 arguments of at most 64 KiB, without NUL`, { field: `${field}.argv` });
  }
  for (const [k, v] of Object.entries(s.env)) {
    if (!ENV_KEY.test(k) || v.includes('\0') || v.length > 65_536) throw new InvalidArgumentError(`${field}.env: bad variable ${JSON.stringify(k.slice(0, 40))}`, { field: `${field}.env` });
  }
  if (s.stdin && s.stdin.length > 1024 * 1024) throw new InvalidArgumentError(`${field}.stdin is over 1 MiB`, { field: `${field}.stdin` });
  if (s.service && !last) throw new InvalidArgumentError(`${field} is the service but not the last step: the service must be the last step`, { field: `${field}.service` });
  const name = s.name || (s.service ? 'service' : `step-${i + 1}`);
  if (name.length > 64 || /[\u0000-\u001f]/.test(name)) throw new InvalidArgumentError(`${field}.name: at most 64 printable characters`, { field: `${field}.name` });
  return {
    name,
    argv: [...s.argv],
    env: { ...s.env },
    ...(s.stdin !== undefined ? { stdin: Buffer.from(s.stdin).toString('base64') } : {}),
    timeoutMs: s.timeoutMs,
    service: s.service,
  };
}
