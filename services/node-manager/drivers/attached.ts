/**
 * A command whose standard streams the caller holds (an SSH `exec`, the
 * `sftp` subsystem, a forwarding relay): input streamed as it comes, output
 * read with the caller's own backpressure, no output cap. The child leads its
 * own process group; a kill reaches that group and whatever `alsoKill`
 * reaches beyond it (a container command, which runc starts in a session of
 * its own).
 */
import { spawn } from 'node:child_process';
import type { AttachedCommand, AttachedExit } from './driver.js';
import { signalQuietly } from './procfs.js';

/** Options of {@link spawnAttached}. */
export interface AttachOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Beyond the child's process group: `find` runs while the child lives, `killSession` after the group is killed. */
  readonly alsoKill?: { find(childPid: number | undefined): Promise<void>; killSession(): Promise<void> };
  /** Delivers a caller's signal; by default it goes to the child. */
  readonly sendSignal?: (signal: NodeJS.Signals, childPid: number) => Promise<void>;
  /** Runs once the child exited (removing its temporary files). */
  readonly cleanup?: () => Promise<void>;
}

/** Spawns `command args` with piped standard streams. */
export function spawnAttached(command: string, args: readonly string[], o: AttachOptions): AttachedCommand {
  const child = spawn(command, [...args], { env: o.env, cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let exited = false;
  const exit = new Promise<AttachedExit>((resolve) => {
    child.once('error', (err) => {
      exited = true;
      resolve({ code: 127, error: err.message });
    });
    child.once('exit', (code, signal) => {
      exited = true;
      resolve(signal ? { signal } : { code: code ?? 0 });
    });
  }).then(async (e) => {
    await o.cleanup?.().catch(() => undefined);
    return e;
  });
  // A caller that stops writing or reading must not crash the node manager.
  child.stdin.on('error', () => undefined);
  child.stdout.on('error', () => undefined);
  child.stderr.on('error', () => undefined);
  let killing: Promise<void> | undefined;
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    exit,
    signal: async (sig) => {
      if (exited || child.pid === undefined) return;
      if (o.sendSignal) await o.sendSignal(sig, child.pid);
      else signalQuietly(child.pid, sig);
    },
    kill: () => {
      killing ??= (async () => {
        await o.alsoKill?.find(child.pid).catch(() => undefined);
        if (child.pid !== undefined) {
          signalQuietly(-child.pid, 'SIGKILL');
          signalQuietly(child.pid, 'SIGKILL');
        }
        await o.alsoKill?.killSession().catch(() => undefined);
      })();
      return killing;
    },
  };
}
