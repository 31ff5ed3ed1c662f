/**
 * Reading /proc: process start times (so a recorded pid is never confused with
 * a later process that reused it), parent links, and the environment marker
 * every process the node manager starts for a sliver carries. The marker lets
 * a restarted node manager find processes it has no record of and remove them.
 */
import { readdir, readFile } from 'node:fs/promises';

/** Environment variable naming the node manager instance a process belongs to. */
export const INSTANCE_ENV = 'FEDLAB_NM_INSTANCE';
/** Environment variable naming the sliver (URN name part) a process belongs to. */
export const SLIVER_ENV = 'FEDLAB_SLIVER';

/** A process as /proc/<pid>/stat shows it. */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  /** The session id (a terminal's command leads its own session). */
  readonly session: number;
  /** Start time in clock ticks after boot: with the pid, a unique process identity. */
  readonly startTicks: number;
}

/** Parses the text of /proc/<pid>/stat; `comm` may hold spaces and parentheses. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); starttime is field 22.
  const startTicks = Number(rest[19]);
  if (!Number.isSafeInteger(pid) || !Number.isSafeInteger(startTicks)) return undefined;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    session: Number(rest[3]),
    startTicks,
  };
}

/** Reads one process's stat, or undefined when it does not exist (any more). */
export async function readStat(pid: number, procRoot = '/proc'): Promise<ProcStat | undefined> {
  try {
    return parseStat(await readFile(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** True when the process `pid` exists, is not a zombie, and started at `startTicks`. */
export async function isSameProcessAlive(pid: number, startTicks: number, procRoot = '/proc'): Promise<boolean> {
  const st = await readStat(pid, procRoot);
  return st !== undefined && st.startTicks === startTicks && st.state !== 'Z' && st.state !== 'X';
}

/** Every pid currently in /proc. */
export async function listPids(procRoot = '/proc'): Promise<number[]> {
  const names = await readdir(procRoot);
  return names.filter((n) => /^[0-9]+$/.test(n)).map(Number);
}

/** The live children of `ppid` (scanning /proc: not every kernel has task/<tid>/children). */
export async function childrenOf(ppid: number, procRoot = '/proc'): Promise<ProcStat[]> {
  const out: ProcStat[] = [];
  for (const pid of await listPids(procRoot)) {
    const st = await readStat(pid, procRoot);
    if (st && st.ppid === ppid && st.state !== 'Z') out.push(st);
  }
  return out;
}

/** Parses a NUL-separated environment block into a map. */
export function parseEnviron(block: Buffer | string): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of block.toString().split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

/** A process the node manager started for a sliver, found by its environment marker. */
export interface MarkedProcess {
  readonly pid: number;
  readonly sliver: string;
}

/** Every live process carrying this instance's marker (processes we may not read are skipped). */
export async function findMarkedProcesses(instance: string, procRoot = '/proc'): Promise<MarkedProcess[]> {
  const out: MarkedProcess[] = [];
  const needle = `${INSTANCE_ENV}=${instance}\0`;
  for (const pid of await listPids(procRoot)) {
    if (pid === process.pid) continue;
    let block: Buffer;
    try {
      block = await readFile(`${procRoot}/${pid}/environ`);
    } catch {
      continue;
    }
    // Cheap filter before parsing: most processes are not ours.
    if (!block.includes(needle)) continue;
    const sliver = parseEnviron(block).get(SLIVER_ENV);
    if (sliver) out.push({ pid, sliver });
  }
  return out;
}

/** Sends a signal, ignoring a process that is already gone. */
export function signalQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
