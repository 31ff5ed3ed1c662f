/**
 * A lock shared by every process on this host that makes or removes link
 * hubs: the node managers of every site and instance here, and `fedlab up`'s
 * teardown. Hubs are host-wide (a bridge per site and VNI, or per VNI for the
 * host scope), so one process's sweep of a hub no port is on can otherwise
 * delete the bridge another has just made and is about to put its port on.
 *
 * The lock is a kernel `flock` on a file under /run, held by a `flock(1)`
 * child for as long as its standard input stays open: Node has no flock of
 * its own, and a lock the kernel holds for a process is released when that
 * process ends, so a node manager killed with SIGKILL mid-wiring leaves no
 * stale lock behind (its end of the pipe closes, the child exits). Taking it
 * has a deadline, like every other network command.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DeadlineExceededError } from '../../core/errors.js';
import { parseStat } from '../drivers/procfs.js';
import { findTool, NetworkCommandError } from './net-command.js';

/** The lock of link hubs on this host (tmpfs: it goes with a reboot, as the hubs do). */
export const LINK_HUB_LOCK = '/run/fedlab/link-hubs.lock';

/** What the child prints once it holds the lock. */
const HELD = 'held\n';

/** Whether a process runs (not gone, not a zombie waiting to be reaped). */
function running(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const state = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.state;
    return state !== undefined && state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** An exclusive lock over one file, shared by every process on the host that uses the same path. */
export class HostLock {
  constructor(
    readonly path = LINK_HUB_LOCK,
    /** How long taking the lock may wait for its holder. */
    readonly timeoutMs = 30_000,
  ) {}

  /** Runs `fn` while holding the lock; the lock is let go whatever `fn` does. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const held = await this.acquire();
    let result: T;
    try {
      result = await fn();
    } finally {
      await held.release();
    }
    // Its holder died while `fn` ran (killed from outside): what `fn` did was not protected, so it is not reported
    // as done (every step under this lock is idempotent and is done again by the next wiring or sweep).
    if (held.lost()) {
      throw new NetworkCommandError(`flock ${this.path}`, 'the lock was lost while held (its flock process ended)', undefined);
    }
    return result;
  }

  /** Takes the lock; resolves with the function that lets it go, and whether it was lost meanwhile. */
  private acquire(): Promise<{ release: () => Promise<void>; lost: () => boolean }> {
    const flock = findTool('flock');
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const seconds = String(Math.max(1, Math.ceil(this.timeoutMs / 1000)));
    const notFree = (): Error =>
      new DeadlineExceededError(`the link hub lock ${this.path} was not free within ${this.timeoutMs} ms`, { lock: this.path });
    // `cat` holds the lock until its input ends: when we let go, or when this process dies.
    const child = spawn(flock, ['--exclusive', '--timeout', seconds, this.path, 'cat'], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let letGo = false;
    let lost = false;
    const exited = new Promise<void>((resolve) =>
      child.once('close', () => {
        if (!letGo) lost = true;
        resolve();
      }),
    );
    const release = async (): Promise<void> => {
      // Node may not have reaped it yet: the kernel says whether it still runs.
      if (!letGo && !running(child.pid)) lost = true;
      letGo = true;
      child.stdin.end();
      // It ends at once; a child that does not is killed (the kernel lets the lock go with it).
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    };
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      let settled = false;
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(e);
      };
      // flock's own timeout comes first; this one covers a flock that never answers at all.
      const timer = setTimeout(() => fail(notFree()), this.timeoutMs + 2_000);
      // `cat` echoes what we write: the first line back says the lock is held.
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        out += d;
        if (!settled && out.startsWith(HELD)) {
          settled = true;
          clearTimeout(timer);
          resolve({ release, lost: () => lost });
        }
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => (err += d));
      child.once('error', (e) => fail(new NetworkCommandError(`flock ${this.path}`, e.message, undefined)));
      child.once('close', (code) => {
        if (code === 1 && !err.trim()) fail(notFree());
        else
          fail(
            new NetworkCommandError(`flock ${this.path}`, err || `exited with ${String(code)} before holding the lock`, code ?? undefined),
          );
      });
      child.stdin.on('error', () => undefined);
      child.stdin.write(HELD);
    });
  }
}
