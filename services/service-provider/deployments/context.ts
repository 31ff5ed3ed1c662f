/**
 * What every part of the deployments' work shares: what they are built from
 * (store, clock, clients, settings), the records, events, tasks and output,
 * and the sites the provider knows by domain.
 */
import type { Logger } from '../../core/log.js';
import { Mutex } from '../../core/mutex.js';
import type { Store } from '../../core/store/store.js';
import type { Clock } from '../../core/clock.js';
import type { Remotes, SiteEndpoint } from '../remotes.js';
import type { SliceCredentials } from '../slice-credentials.js';
import { DeploymentStore } from './deployment-store.js';
import { DeploymentTasks } from './deployment-tasks.js';
import type { RetentionSettings } from './retention.js';
import { DeploymentEvents } from './events.js';
import { SliverOutputs } from './sliver-outputs.js';

/** Supervision settings. */
export interface SupervisionSettings {
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly backoffResetMs: number;
  readonly outputLines: number;
  readonly execTimeoutMs: number;
  readonly retryMs: number;
}

/** When and how far the provider renews its deployments' slices (slice-renewer.ts). */
export interface RenewalSettings {
  /** Renew when the slice expires within this (s), or within half its current lifetime when that is shorter. */
  readonly marginS: number;
  /** How far from now a renewal asks to move the expiry (s). */
  readonly lifetimeS: number;
  /** How often the deployments are checked (ms). */
  readonly checkMs: number;
}

/** What the deployments are built from. */
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
  /** Renewal of the deployments' slices; unset: the defaults (a day ahead, for a week, checked every 10 s). */
  readonly renewal?: RenewalSettings;
  /** Retention of deleted deployments and old request ids (retention.ts); unset: the defaults. */
  readonly retention?: RetentionSettings;
  /** Users every slice a deployment creates lists (the provider with its operators' SSH keys, when configured). */
  readonly sliceUsers?: readonly { readonly urn: string; readonly sshKeys: readonly string[] }[];
}

/** The shared parts of the deployments' work. */
export class DeploymentContext {
  readonly events: DeploymentEvents;
  readonly records: DeploymentStore;
  readonly tasks: DeploymentTasks;
  readonly outputs: SliverOutputs;
  /** New deployments are admitted one at a time (request id and name checks, then the write). */
  readonly admission = new Mutex();
  readonly siteByDomain: ReadonlyMap<string, SiteEndpoint>;

  constructor(readonly deps: DeploymentsOptions) {
    this.events = new DeploymentEvents(deps.clock);
    this.records = new DeploymentStore({ store: deps.store, clock: deps.clock, log: deps.log, events: this.events });
    this.tasks = new DeploymentTasks(deps.log);
    this.outputs = new SliverOutputs(deps.supervision.outputLines, this.records);
    this.siteByDomain = new Map(deps.sites.map((s) => [s.domain, s]));
  }

  /** The time now (ms). */
  now(): number {
    return this.deps.clock.now();
  }
}
