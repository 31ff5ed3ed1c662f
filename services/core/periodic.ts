/**
 * A task that runs every `intervalMs`, never overlapping itself, whose errors
 * are logged rather than lost; `stop()` waits for a run in progress. The
 * node manager's reaper and heartbeat, the management authority's health
 * monitor and hold sweeper, the slice authority's expiry sweeper are each one.
 */
import type { Logger } from './log.js';

/** Options of {@link Periodic}. */
export interface PeriodicOptions {
  readonly name: string;
  readonly intervalMs: number;
  readonly log: Logger;
  /** Run once right away instead of after the first interval. */
  readonly immediate?: boolean;
}

/** A repeating background task. */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  /** Runs completed (for tests and diagnostics). */
  runs = 0;

  constructor(
    private readonly o: PeriodicOptions,
    private readonly task: () => Promise<void> | void,
  ) {}

  /** Starts the schedule. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(this.o.immediate ? 0 : this.o.intervalMs);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        this.schedule(this.o.intervalMs);
      });
    }, ms);
    // Background work must never keep a stopping process alive.
    this.timer.unref();
  }

  /** Runs the task now (outside the schedule); errors are logged. */
  async runOnce(): Promise<void> {
    try {
      await this.task();
    } catch (err) {
      this.o.log.error({ err, task: this.o.name }, 'background task failed; it will run again');
    } finally {
      this.runs++;
    }
  }

  /** Stops the schedule and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
