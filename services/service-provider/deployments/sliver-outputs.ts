/**
 * The output of each sliver's commands on its way to the deployment record:
 * the last lines per sliver (see ../output.ts), written to the record in one
 * write per deployment at most every OUTPUT_FLUSH_MS, however many slivers
 * are talking — each write is the whole deployment record.
 */
import { OutputLines } from '../output.js';
import type { DeploymentStore } from './deployment-store.js';

/** How often a deployment's output is written to its record, at most (ms). */
const OUTPUT_FLUSH_MS = 250;

/** Output lines per sliver, flushed to the records in batches. */
export class SliverOutputs {
  private readonly outputs = new Map<string, OutputLines>();
  private readonly dirty = new Map<string, Set<string>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly lines: number,
    private readonly records: DeploymentStore,
  ) {}

  /** A sliver's output lines, starting from what its record kept. */
  outputFor(name: string, sliverUrn: string): OutputLines {
    const key = `${name} ${sliverUrn}`;
    let out = this.outputs.get(key);
    if (!out) {
      const t = this.records.get(name)?.targets.find((x) => x.sliverUrn === sliverUrn);
      out = new OutputLines(this.lines, t?.lastOutput ?? []);
      this.outputs.set(key, out);
    }
    return out;
  }

  /** Marks a sliver's output for the record; the deployment's next flush writes it. */
  flush(name: string, sliverUrn: string): void {
    let dirty = this.dirty.get(name);
    if (!dirty) {
      dirty = new Set();
      this.dirty.set(name, dirty);
    }
    dirty.add(sliverUrn);
    if (this.timers.has(name)) return;
    const timer = setTimeout(() => this.apply(name), OUTPUT_FLUSH_MS);
    timer.unref();
    this.timers.set(name, timer);
  }

  /** Writes every pending flush now (at stop). */
  applyAll(): void {
    for (const name of [...this.timers.keys()]) this.apply(name);
  }

  private apply(name: string): void {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
    const dirty = this.dirty.get(name);
    this.dirty.delete(name);
    const lines = new Map<string, string[]>();
    for (const sliverUrn of dirty ?? []) {
      const out = this.outputs.get(`${name} ${sliverUrn}`);
      if (out?.changed) lines.set(sliverUrn, out.take());
    }
    if (lines.size === 0) return;
    void this.records.update(
      name,
      (r) => ({
        ...r,
        targets: r.targets.map((t) => (lines.has(t.sliverUrn) ? { ...t, lastOutput: lines.get(t.sliverUrn) as string[] } : t)),
      }),
      { quiet: true },
    );
  }
}
