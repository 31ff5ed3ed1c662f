/**
 * A background task that runs every `intervalMs`, never overlapping itself;
 * errors are logged, never lost or thrown. The health monitor, the health
 * flusher, the hold sweeper and the intent janitor are each one of these.
 */
import type { Logger } from '../core/log.js';

/** A repeating background task. */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly task: () => Promise<void> | void,
  ) {}

  /** Starts the schedule (the first run after one interval). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.intervalMs);
    // Background work never keeps a stopping process alive.
    this.timer.unref();
  }

  /** Runs the task now; errors are logged. */
  async runOnce(): Promise<void> {
    try {
      await this.task();
    } catch (err) {
      this.log.error({ err, task: this.name }, 'background task failed; it will run again');
    }
  }

  /** Stops the schedule and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
