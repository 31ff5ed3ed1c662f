/**
 * The work running for each deployment (driving it, supervising its slivers,
 * deleting it) and the retries waiting to run: one abort controller per
 * deployment, so a delete or a stop cancels its Exec calls and the nodes kill
 * the commands.
 */
import type { Logger } from '../../core/log.js';

interface Live {
  readonly abort: AbortController;
  readonly tasks: Set<Promise<void>>;
}

/** A deployment's task: runs until done or until `signal` aborts. */
export type DeploymentTask = (signal: AbortSignal) => Promise<void>;

/** The deployments' running tasks and pending retries. */
export class DeploymentTasks {
  private readonly live = new Map<string, Live>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopping = false;

  constructor(private readonly log: Logger) {}

  /** Whether the provider is stopping (no new work). */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Runs a task of a deployment now; its failure is logged. */
  spawn(name: string, task: DeploymentTask): void {
    let l = this.live.get(name);
    if (!l) {
      l = { abort: new AbortController(), tasks: new Set() };
      this.live.set(name, l);
    }
    const live = l;
    const p = task(live.abort.signal)
      .catch((err: unknown) => this.log.error({ err, deployment: name }, 'deployment task failed'))
      .finally(() => live.tasks.delete(p));
    live.tasks.add(p);
  }

  /** Runs a task after `ms` (a retry); a stop cancels the wait. */
  spawnLater(name: string, ms: number, task: DeploymentTask): void {
    if (this.stopping) return;
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      if (!this.stopping) this.spawn(name, task);
    }, ms);
    timer.unref();
    this.retries.add(timer);
  }

  /** Cancels a deployment's tasks and waits for them to end. */
  async stopLive(name: string): Promise<void> {
    const l = this.live.get(name);
    if (!l) return;
    l.abort.abort();
    await Promise.allSettled([...l.tasks]);
    this.live.delete(name);
  }

  /** Whether a task of the deployment is running. */
  busy(name: string): boolean {
    return (this.live.get(name)?.tasks.size ?? 0) > 0;
  }

  /** Drops what is kept for a deployment with no task running (its record was purged). */
  forget(name: string): void {
    if (!this.busy(name)) this.live.delete(name);
  }

  /** Cancels every task and retry and waits for the tasks to end. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const l of this.live.values()) l.abort.abort();
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    await Promise.allSettled([...this.live.values()].flatMap((l) => [...l.tasks]));
  }
}
