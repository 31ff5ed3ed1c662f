/**
 * Deployments: a slice (created through the slice authority, or an existing
 * one) and a list of steps run on every sliver through NodeManager.Exec,
 * the last of which may be the deployment's *service*, which the provider
 * keeps running. This is the facade the handlers and the role call; the work
 * is in this folder: the spec's checks (deployment-spec.ts), Deploy
 * (deploy.ts), ensuring the slice (slice-driver.ts), supervision with
 * back-off (supervisor.ts), output (sliver-outputs.ts), records and events
 * (deployment-store.ts, events.ts), DeleteDeployment (delete.ts) and the
 * renewal of live deployments' slices (slice-renewer.ts).
 *
 * Restart safety comes from the intent in LevelDB: every deployment records
 * `desired` (run or delete) and each sliver's progress (steps done,
 * restarts, last output); a restarted provider resumes every deployment from
 * there: steps already done are not run again, and the service is started
 * again on every sliver (its run was killed with the old provider's calls).
 */
import type { Deployment, DeploymentState, DeployRequest, DeployResponse } from '../../generated/fedlab/v1/service_provider.js';
import type { DeploymentRecord } from '../records.js';
import { DeploymentContext, type DeploymentsOptions } from './context.js';
import { deploy } from './deploy.js';
import { deleteDeployment, finishDelete } from './delete.js';
import { getDeployment, listDeployments } from './read.js';
import { driveDeployment } from './slice-driver.js';
import { DEFAULT_RENEWAL, SliceRenewer } from './slice-renewer.js';
import { DEFAULT_RETENTION, DeploymentRetention, type PurgeCounts } from './retention.js';
import { deploymentToWire, type DeploymentView } from './to-wire.js';

export type { DeploymentsOptions, RenewalSettings, SupervisionSettings } from './context.js';
export type { RetentionSettings } from './retention.js';
export type { DeploymentView } from './to-wire.js';

/** The provider's deployments. */
export class Deployments {
  private readonly context: DeploymentContext;
  /** Renews the slices of live deployments before they expire. */
  readonly renewer: SliceRenewer;
  /** Purges deleted deployments and old request ids after their retention. */
  private readonly retention: DeploymentRetention;

  constructor(deps: DeploymentsOptions) {
    this.context = new DeploymentContext(deps);
    this.renewer = new SliceRenewer(this.context, deps.renewal ?? DEFAULT_RENEWAL);
    this.retention = new DeploymentRetention(this.context, deps.retention ?? DEFAULT_RETENTION);
  }

  /** Loads every deployment and resumes what the records say should be running or deleted. */
  async start(): Promise<{ resumed: number; deleting: number }> {
    const { records, tasks } = this.context;
    await records.load();
    let resumed = 0;
    let deleting = 0;
    for (const rec of records.all()) {
      const name = rec.name;
      if (rec.desired === 'delete' && rec.state !== 'deleted') {
        deleting++;
        tasks.spawn(name, (signal) => finishDelete(this.context, name, signal));
      } else if (rec.desired === 'run' && rec.state !== 'failed' && rec.state !== 'deleted') {
        resumed++;
        tasks.spawn(name, (signal) => driveDeployment(this.context, name, signal));
      }
    }
    if (resumed + deleting > 0) this.context.deps.log.info({ resumed, deleting }, 'deployments resumed');
    this.renewer.start();
    this.retention.start();
    return { resumed, deleting };
  }

  /** Stops the renewals and every supervisor (their Exec calls are cancelled) and waits for pending writes. */
  async stop(): Promise<void> {
    await this.retention.stop();
    await this.renewer.stop();
    await this.context.tasks.stopAll();
    this.context.outputs.applyAll();
    await this.context.records.flushed();
  }

  /** Deploy: records the deployment (or finds the one of this request id) and streams its progress until it is stable. */
  deploy(req: DeployRequest, signal: AbortSignal): AsyncGenerator<DeployResponse> {
    return deploy(this.context, req, signal);
  }

  /** One deployment, as `view` may see it (readers: no env, no stdin). */
  get(name: string, view: DeploymentView): Deployment {
    return getDeployment(this.context.records, name, view);
  }

  /** A page of deployments by name, as `view` may see them; UNSPECIFIED state: all but DELETED. */
  list(
    pageSize: number,
    pageToken: string,
    state: DeploymentState,
    view: DeploymentView,
  ): { deployments: Deployment[]; nextPageToken: string } {
    return listDeployments(this.context.records, pageSize, pageToken, state, view);
  }

  /** DeleteDeployment: stops every sliver's service, deletes the slice if this deployment made it (unless kept). Idempotent. */
  delete(name: string, keepSlice: boolean): Promise<Deployment> {
    return deleteDeployment(this.context, name, keepSlice);
  }

  /** Purges what is past its retention now (the schedule does it every `retention.interval_ms`). */
  purge(): Promise<PurgeCounts> {
    return this.retention.purge();
  }

  /** Whether a live (not deleted) deployment runs on this slice. */
  ownsSlice(sliceUrn: string): boolean {
    for (const r of this.context.records.all()) if (r.sliceUrn === sliceUrn && r.state !== 'deleted') return true;
    return false;
  }

  /** Every deployment's record (metrics read them). */
  records(): IterableIterator<DeploymentRecord> {
    return this.context.records.all();
  }

  /** The record (tests and the member service read it). */
  record(name: string): DeploymentRecord | undefined {
    return this.context.records.get(name);
  }

  /** The wire form of a deployment. */
  wire(rec: DeploymentRecord): Deployment {
    return deploymentToWire(rec);
  }
}
