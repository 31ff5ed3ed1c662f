/**
 * Progress events of deployments for Deploy's stream: each deployment's
 * events are numbered in order and handed to the streams that subscribed to
 * it. Events are not retained: a stream starts with a snapshot.
 */
import type { ResultStatus } from '../../generated/fedlab/v1/common.js';
import type { DeployResponse } from '../../generated/fedlab/v1/service_provider.js';
import type { Clock } from '../../core/clock.js';
import type { DeploymentRecord } from '../records.js';
import { deploymentStateToWire, deploymentToWire } from './to-wire.js';

/** Who hears a deployment's events. */
export type DeploymentListener = (event: DeployResponse) => void;

/** What an event says, before it gets its sequence number. */
export interface EventInput {
  readonly message: string;
  readonly sliverUrn?: string;
  readonly step?: string;
  readonly status?: ResultStatus | undefined;
  /** Carry the whole deployment (Deploy's stream ends at a snapshot of a stable state). */
  readonly snapshot: boolean;
  /** Number the event as the last one given out, without taking a new number (a stream's first snapshot). */
  readonly consume?: boolean;
}

/** The deployments' event numbering and listeners. */
export class DeploymentEvents {
  private readonly listeners = new Map<string, Set<DeploymentListener>>();
  private readonly sequences = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  /** Hands a deployment's next events to `listener`. */
  subscribe(name: string, listener: DeploymentListener): void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener);
  }

  /** Stops handing events to `listener`. */
  unsubscribe(name: string, listener: DeploymentListener): void {
    this.listeners.get(name)?.delete(listener);
  }

  /** Numbers a new deployment's events from the start. */
  restart(name: string): void {
    this.sequences.set(name, 0);
  }

  /** Makes an event of a deployment (giving it the next number unless `consume`). */
  make(rec: DeploymentRecord, input: EventInput): DeployResponse {
    const seq = (this.sequences.get(rec.name) ?? 0) + 1;
    if (!input.consume) this.sequences.set(rec.name, seq);
    const t = input.sliverUrn ? rec.targets.find((x) => x.sliverUrn === input.sliverUrn) : undefined;
    return {
      sequence: input.consume ? (this.sequences.get(rec.name) ?? 0) : seq,
      time: new Date(this.clock.now()),
      deploymentName: rec.name,
      state: deploymentStateToWire(rec.state),
      site: t?.site ?? '',
      sliverUrn: input.sliverUrn ?? '',
      step: input.step ?? '',
      status: input.status ?? { code: 0, reason: '' },
      message: input.message,
      deployment: input.snapshot ? deploymentToWire(rec) : undefined,
    };
  }

  /** Drops a deployment's numbering, and its listeners once none is left (its record was purged). */
  forget(name: string): void {
    this.sequences.delete(name);
    if ((this.listeners.get(name)?.size ?? 0) === 0) this.listeners.delete(name);
  }

  /** Hands an event to the deployment's listeners. */
  emit(name: string, event: DeployResponse): void {
    for (const l of this.listeners.get(name) ?? []) l(event);
  }
}
