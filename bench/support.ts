/**
 * Small pieces every benchmark uses: command-line flags, free ports, CPU time of a process, order
 * statistics and a bounded pool. Benchmarks print figures; nothing here asserts.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/** The value after `--name` on the command line, or `dflt`. */
export function flagText(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? String(process.argv[i + 1]) : dflt;
}

/** The number after `--name` on the command line, or `dflt`. */
export function flagNumber(name: string, dflt: number): number {
  return Number(flagText(name, String(dflt)));
}

// One way to find a free port, shared with `fedlab up`.
export { freePort } from '../cli/up/processes.js';

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after "pid (comm) ".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds a process has used: user and system apart, and its main thread's share (from /proc); NaN once it is gone. */
export function cpuSplit(pid: number): { user: number; system: number; mainThread: number } {
  const fields = (file: string): string[] => {
    const stat = readFileSync(file, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  };
  try {
    const all = fields(`/proc/${pid}/stat`);
    // The main thread's task id is the process id.
    const main = fields(`/proc/${pid}/task/${pid}/stat`);
    return {
      user: Number(all[11]) / 100,
      system: Number(all[12]) / 100,
      mainThread: (Number(main[11]) + Number(main[12])) / 100,
    };
  } catch {
    return { user: NaN, system: NaN, mainThread: NaN };
  }
}

/** The median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

/** The `q` quantile (0..1) of an ascending array, nearest rank (NaN when empty). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** The load averages, for printing beside figures. */
export const loadAverage = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** Runs a benchmark file as its worker (`--worker`) or as the main process, exiting 1 with the error. */
export function runBenchmark(main: () => Promise<void>, worker: () => Promise<void>): void {
  const run = process.argv.includes('--worker') ? worker : main;
  run().then(
    // The main process exits when done (workers and clients may hold handles); a worker runs until told to stop.
    () => (run === main ? process.exit(0) : undefined),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
