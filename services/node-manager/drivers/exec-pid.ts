/**
 * The host pid of a command that `runc exec --pid-file` started, read once
 * the file exists (or, before that, found as the child runc made for it) and
 * remembered with its start time, so a signal never reaches a later process
 * that reused the pid. runc starts the command in a session of its own
 * (setsid), apart from runc's process group, so killing runc leaves it
 * running: killing that session reaches everything it started there, also
 * once the command itself has ended. Only processes in the sliver's own PID
 * namespace are ever signalled.
 */
import { readFile, readlink } from 'node:fs/promises';
import type { RuntimeRef } from './driver.js';
import { childrenOf, isSameProcessAlive, listPids, readStat, signalQuietly } from './procfs.js';

/** The PID namespace of a process (`pid:[inode]`), or undefined when it is gone. */
async function pidNamespace(pid: number): Promise<string | undefined> {
  return readlink(`/proc/${pid}/ns/pid`).catch(() => undefined);
}

/** One exec'd command's pid, from runc's pid file. */
export class ExecPid {
  private known: { pid: number; startTicks: number } | undefined;
  private ns: string | undefined;

  /** `sliver`: the sliver's first process, whose PID namespace every process signalled here must share. */
  constructor(
    private readonly pidFile: string,
    private readonly sliver?: RuntimeRef,
  ) {}

  private async sliverNs(): Promise<string | undefined> {
    if (this.ns === undefined && this.sliver && (await isSameProcessAlive(this.sliver.pid, this.sliver.startTicks))) {
      this.ns = await pidNamespace(this.sliver.pid);
    }
    return this.ns;
  }

  /** Whether `pid` lives in the sliver (always, when no sliver was given). */
  private async inSliver(pid: number): Promise<boolean> {
    if (!this.sliver) return true;
    const ns = await this.sliverNs();
    return ns !== undefined && (await pidNamespace(pid)) === ns;
  }

  private async remember(pid: number): Promise<boolean> {
    if (!Number.isSafeInteger(pid) || pid <= 1) return false;
    const st = await readStat(pid);
    if (!st || !(await this.inSliver(pid))) return false;
    this.known = { pid, startTicks: st.startTicks };
    return true;
  }

  /**
   * Learns the command's pid: from the pid file, or else as the child of
   * `runcPid` inside the sliver (runc clones the command as its own child)
   * while runc still runs. Call it before killing runc.
   */
  async find(runcPid?: number): Promise<void> {
    if (this.known) return;
    if (await this.remember(Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim()))) return;
    if (runcPid === undefined) return;
    for (const child of await childrenOf(runcPid)) if (await this.remember(child.pid)) return;
  }

  /** The command's host pid while it runs; undefined before runc wrote it or after it ended. */
  async pid(): Promise<number | undefined> {
    await this.find();
    if (!this.known) return undefined;
    return (await isSameProcessAlive(this.known.pid, this.known.startTicks)) ? this.known.pid : undefined;
  }

  /** SIGKILLs the command and every process of its session in the sliver (its jobs and their children too), also after the command itself ended. */
  async killSession(): Promise<void> {
    await this.find();
    const k = this.known;
    if (!k) return;
    if (await isSameProcessAlive(k.pid, k.startTicks)) signalQuietly(k.pid, 'SIGKILL');
    // A few passes: a member may fork while the first one runs.
    for (let pass = 0; pass < 3; pass++) {
      let hit = 0;
      for (const pid of await listPids()) {
        const st = await readStat(pid);
        // The session keeps the leader's id while any member lives; members started after it.
        if (!st || st.session !== k.pid || st.startTicks < k.startTicks || st.state === 'Z' || !(await this.inSliver(pid))) continue;
        signalQuietly(pid, 'SIGKILL');
        hit++;
      }
      if (hit === 0) return;
    }
  }
}
