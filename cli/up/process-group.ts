/**
 * The service processes of a local federation, in start order: once one runs, an exit hook kills them
 * all if this process exits without stopping them (they are in their own process groups, so nothing
 * else would). Closed when a stop begins, so that nothing is started after it (a Ctrl-C during start-up).
 */
import type { ServiceProcess } from './processes.js';

/** A federation's processes. */
export class ProcessGroup {
  /** In start order (stopped in reverse). */
  readonly processes: ServiceProcess[] = [];
  private exitHook: (() => void) | undefined;
  private stopping = false;

  /** Whether a stop has begun. */
  get closed(): boolean {
    return this.stopping;
  }

  /** Adds a process (before it starts); refused once a stop has begun. */
  add(proc: ServiceProcess): ServiceProcess {
    if (this.closed) throw new Error('the federation is stopping; nothing more is started');
    this.processes.push(proc);
    if (!this.exitHook) {
      this.exitHook = () => {
        for (const p of this.processes) p.killSync();
      };
      process.on('exit', this.exitHook);
    }
    return proc;
  }

  /** The ids of the processes that run. */
  pids(): number[] {
    return this.processes.map((p) => p.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** Begins a stop: nothing is added after this. */
  close(): void {
    this.stopping = true;
  }

  /** Removes the exit hook (after every process was stopped). */
  release(): void {
    if (this.exitHook) process.off('exit', this.exitHook);
    this.exitHook = undefined;
  }
}
