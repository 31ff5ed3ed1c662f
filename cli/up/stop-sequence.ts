/**
 * How `fedlab up` stops, whatever asked it to (Ctrl-C, SIGTERM, SIGHUP from a closed terminal, `--once`,
 * a failure): every deployment and slice of the federation deleted through the provider and the slice
 * authority, every process stopped (newest first), then what they made removed from the machine
 * (slivers, namespaces, cgroup directories, sliver networks). Each step is said, so it is in up.log
 * even when nobody reads the terminal any more. A forced stop (a second Ctrl-C) skips the waiting:
 * every process is killed at once, and the removal still runs.
 */
import type { LocalFederation } from './federation.js';
import { deleteHoldings, holdingLines, listHoldings, type Holdings } from './leftovers.js';

/** Stops a federation; `forced()` says whether a second Ctrl-C came. */
export async function stopFederation(fed: LocalFederation, say: (line: string) => void, forced: () => boolean): Promise<void> {
  if (!forced() && (fed.sp?.running() || fed.sa?.running())) {
    let h: Holdings = { deployments: [], slices: [] };
    try {
      h = await listHoldings(fed);
    } catch (err) {
      say(`could not list the deployments and slices (${(err as Error).message.split('\n')[0]}); their slivers are removed below`);
    }
    const lines = holdingLines(h);
    if (lines.length) {
      say(`deleting ${lines.length === 1 ? lines[0] : `${lines.length} deployments and slices:`}`);
      for (const l of lines.length > 1 ? lines : []) say(`  ${l}`);
      const failed = await deleteHoldings(fed, h, 30_000, forced);
      if (failed.length) say(`not deleted: ${failed.join(', ')}; their slivers are removed below`);
      else say('deleted');
    }
  }
  say(`stopping ${fed.processes.filter((p) => p.running()).length} processes`);
  const killed = await fed.stop(forced() ? 0 : 8000);
  if (killed.length) say(`had to kill ${killed.join(', ')} (they did not stop within the grace period)`);
  say('removing what they left: slivers, namespaces, cgroup directories');
  const left = await fed.sweepLeftovers();
  if (left.length) say(`removed leftovers: ${left.join('; ')}`);
}

/** Signals that stop `fedlab up`. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Turns signals into a stop: the first starts it, a second (SIGINT or SIGTERM) forces it. The same
 * Ctrl-C may arrive twice at once — from the terminal and forwarded by `npm start` — so a repeat
 * within `sameWithinMs` counts as one. A hang-up never forces: the terminal is gone, nobody asked.
 */
export class StopSignals {
  private firstAt = 0;
  private stopping = false;
  private forcedFlag = false;
  private readonly handler = (sig: NodeJS.Signals): void => this.on(sig);

  constructor(
    private readonly onStop: (signal: NodeJS.Signals) => void,
    private readonly onForce: () => void,
    private readonly sameWithinMs = 1000,
  ) {}

  /** Whether a forced stop was asked for. */
  get forced(): boolean {
    return this.forcedFlag;
  }

  /** Listens (until {@link release}). */
  install(): void {
    for (const s of STOP_SIGNALS) process.on(s, this.handler);
  }

  /** Marks the stop as begun without a signal (`--once`, a failure): a signal then forces it. */
  begun(): void {
    if (!this.stopping) {
      this.stopping = true;
      this.firstAt = Date.now();
    }
  }

  /** Stops listening. */
  release(): void {
    for (const s of STOP_SIGNALS) process.off(s, this.handler);
  }

  private on(sig: NodeJS.Signals): void {
    if (!this.stopping) {
      this.stopping = true;
      this.firstAt = Date.now();
      this.onStop(sig);
      return;
    }
    if (sig === 'SIGHUP' || this.forcedFlag || Date.now() - this.firstAt < this.sameWithinMs) return;
    this.forcedFlag = true;
    this.onForce();
  }
}
