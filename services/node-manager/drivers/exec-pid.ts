/**
 * The host pid of a command that `runc exec --pid-file` started, read once
 * the file exists and remembered with its start time, so a signal never
 * reaches a later process that reused the pid. On a terminal the command
 * leads its own session (runc calls setsid for it), apart from runc's process
 * group: killing that session reaches everything it started there.
 */
import { readFile } from 'node:fs/promises';
import { isSameProcessAlive, listPids, readStat, signalQuietly } from './procfs.js';

/** One exec'd command's pid, from runc's pid file. */
export class ExecPid {
  private known: { pid: number; startTicks: number } | undefined;

  constructor(private readonly pidFile: string) {}

  /** The command's host pid while it runs; undefined before runc wrote it or after it ended. */
  async pid(): Promise<number | undefined> {
    if (!this.known) {
      const pid = Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim());
      if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
      const st = await readStat(pid);
      if (!st) return undefined;
      this.known = { pid, startTicks: st.startTicks };
    }
    return (await isSameProcessAlive(this.known.pid, this.known.startTicks)) ? this.known.pid : undefined;
  }

  /** SIGKILLs every process of the command's session (its jobs and their children too). */
  async killSession(): Promise<void> {
    const leader = await this.pid();
    if (leader === undefined) return;
    signalQuietly(leader, 'SIGKILL');
    for (const pid of await listPids()) {
      const st = await readStat(pid);
      if (st?.session === leader) signalQuietly(pid, 'SIGKILL');
    }
  }
}
