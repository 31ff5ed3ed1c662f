/**
 * Runs one child process and turns its output into a bounded stream of
 * chunks ending with its exit. Output is read with backpressure (the child is
 * paused while the consumer lags), capped in total (over the cap the command is
 * killed and the call fails with RESOURCE_EXHAUSTED), and the whole process
 * group is killed on timeout, cancellation, or when the consumer stops reading
 * (with what {@link StreamOptions.alsoKill} reaches beyond it).
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { ResourceExhaustedError } from '../../core/errors.js';
import type { ExecChunk } from './driver.js';

/** Largest chunk sent in one message. */
export const MAX_CHUNK_BYTES = 64 * 1024;
/** Buffered bytes above which the child's output is paused. */
const HIGH_WATER = 256 * 1024;
/** How long output may keep coming after the command exited (from children it left behind). */
const DRAIN_GRACE_MS = 200;

/** Options of {@link streamProcess}. */
export interface StreamOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly stdin?: Buffer;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly signal: AbortSignal;
  /**
   * What the child's process group does not hold and must die with it (a
   * container command, which runc starts in a session of its own): `find` runs
   * first, while the child lives, then the group is killed, then `killSession`.
   */
  readonly alsoKill?: { find(childPid: number | undefined): Promise<void>; killSession(): Promise<void> };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    // The child leads its own process group (detached): this reaches whatever it forked too.
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Spawns `command args` and yields its output chunks, then its exit. */
export async function* streamProcess(command: string, args: readonly string[], options: StreamOptions): AsyncGenerator<ExecChunk> {
  const started = Date.now();
  const child = spawn(command, [...args], {
    env: options.env,
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let killing: Promise<void> | undefined;
  const killEverything = (): Promise<void> => {
    const also = options.alsoKill;
    if (!also) {
      killGroup(child.pid);
      return Promise.resolve();
    }
    killing ??= (async () => {
      await also.find(child.pid).catch(() => undefined);
      killGroup(child.pid);
      await also.killSession().catch(() => undefined);
    })();
    return killing;
  };
  const queue: ExecChunk[] = [];
  let buffered = 0;
  let total = 0;
  let overflow = false;
  let timedOut = false;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const streams: Readable[] = [child.stdout, child.stderr];
  // Background children may keep the pipes open after the command exited: once its output has
  // been quiet for a moment, the stream ends anyway.
  let drainTimer: NodeJS.Timeout | undefined;
  let drained = false;
  const armDrain = (): void => {
    clearTimeout(drainTimer);
    drainTimer = setTimeout(() => {
      drained = true;
      notify();
    }, DRAIN_GRACE_MS);
  };
  let open = 2;

  const onData = (kind: 'stdout' | 'stderr') => (data: Buffer) => {
    if (overflow) return;
    total += data.length;
    if (total > options.maxOutputBytes) {
      overflow = true;
      void killEverything();
      notify();
      return;
    }
    for (let off = 0; off < data.length; off += MAX_CHUNK_BYTES) {
      const part = data.subarray(off, off + MAX_CHUNK_BYTES);
      queue.push({ kind, data: part });
      buffered += part.length;
    }
    if (buffered > HIGH_WATER) for (const s of streams) s.pause();
    if (exit) armDrain();
    notify();
  };
  child.stdout.on('data', onData('stdout'));
  child.stderr.on('data', onData('stderr'));
  for (const s of streams)
    s.on('close', () => {
      open--;
      notify();
    });
  child.on('error', (err) => {
    spawnError = err;
    notify();
  });
  child.on('exit', (code, signal) => {
    exit = { code, signal };
    armDrain();
    notify();
  });
  // A command that does not read its stdin must not fail the call.
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.stdin ?? Buffer.alloc(0));

  const timer = setTimeout(() => {
    timedOut = true;
    void killEverything();
  }, options.timeoutMs);
  const onAbort = (): void => void killEverything();
  options.signal.addEventListener('abort', onAbort, { once: true });
  // A call cancelled before the command started never fires 'abort' again.
  if (options.signal.aborted) onAbort();

  try {
    for (;;) {
      while (queue.length > 0) {
        const chunk = queue.shift() as ExecChunk & { data: Buffer };
        buffered -= chunk.data.length;
        if (buffered <= HIGH_WATER / 2) for (const s of streams) s.resume();
        yield chunk;
      }
      if (spawnError) {
        const code = (spawnError as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'EACCES') throw spawnError;
        // What a shell would say: the command does not exist (127) or cannot be run (126).
        yield { kind: 'stderr', data: Buffer.from(`${command}: ${code === 'ENOENT' ? 'command not found' : 'permission denied'}\n`) };
        yield { kind: 'exit', code: code === 'ENOENT' ? 127 : 126, timedOut: false, durationMs: Date.now() - started };
        return;
      }
      if (overflow) {
        throw new ResourceExhaustedError(
          `the command wrote more than ${options.maxOutputBytes} bytes of output and was killed; write large output to a file in the sliver's work directory`,
          { limit: options.maxOutputBytes },
        );
      }
      // The exit comes last: after the child exited and its pipes closed (or went quiet, held open by children it left).
      if (exit && (open === 0 || (drained && buffered === 0))) break;
      if (options.signal.aborted && exit) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    yield {
      kind: 'exit',
      ...(exit?.signal ? { signal: exit.signal } : { code: exit?.code ?? 0 }),
      timedOut,
      durationMs: Date.now() - started,
    };
  } finally {
    clearTimeout(timer);
    clearTimeout(drainTimer);
    options.signal.removeEventListener('abort', onAbort);
    if (!exit) await killEverything();
    // Killed on overflow, timeout or cancel: the command's own session goes too before the call ends.
    if (killing) await killing;
    for (const s of streams) s.destroy();
  }
}
