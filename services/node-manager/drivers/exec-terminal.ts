/**
 * Runs one program on a host pseudo-terminal (PTY mode of Exec) and turns
 * the terminal's output into the same bounded stream of chunks as
 * exec-stream.ts: output as `stdout` chunks with backpressure (the terminal is
 * paused while the consumer lags), capped in total, then the exit. The
 * control channel's keystrokes are written to the terminal, its resizes set
 * the window size (the program's foreground group gets SIGWINCH), its signals
 * go to {@link TerminalOptions.sendSignal}. On timeout, cancellation, overflow
 * or when the consumer stops reading, the program's process group is killed,
 * and whatever {@link TerminalOptions.killAll} reaches too.
 *
 * The terminal comes from `@lydell/node-pty` (node-pty's code, prebuilt per
 * platform in npm packages), loaded only when a terminal is asked for. What
 * is typed goes through terminal-writer.ts, never node-pty's `write`, which
 * blocks the whole process while the program does not read.
 */
import { constants } from 'node:os';
import { ResourceExhaustedError } from '../../core/errors.js';
import type { ExecChunk } from './driver.js';
import { MAX_CHUNK_BYTES } from './exec-stream.js';
import { signalQuietly } from './procfs.js';
import { checkTerminalSize, TERMINAL_INPUT_HIGH_WATER, type TerminalControl, type TerminalInput } from './terminal-control.js';
import { ptyMaster, TerminalWriter } from './terminal-writer.js';

/** Buffered bytes above which the terminal is paused. */
const HIGH_WATER = 256 * 1024;

/** Options of {@link streamTerminal}. */
export interface TerminalOptions {
  /** The program's whole environment (TERM is set from `term`). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly rows: number;
  readonly cols: number;
  /** TERM of the program on the host terminal. */
  readonly term?: string;
  /** Typed into the terminal first. */
  readonly stdin?: Buffer;
  readonly control?: TerminalControl;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly signal: AbortSignal;
  /** Delivers a caller's signal; by default it goes to the program itself. */
  readonly sendSignal?: (signal: NodeJS.Signals, programPid: number) => void | Promise<void>;
  /** Kills what the program's process group does not hold (e.g. a container process in its own session). */
  readonly killAll?: () => void | Promise<void>;
}

/** The name of a signal number (`SIGINT` for 2), or undefined for 0. */
function signalName(n: number | undefined): string | undefined {
  if (!n) return undefined;
  const hit = Object.entries(constants.signals).find(([, v]) => v === n);
  return hit ? hit[0] : `signal ${n}`;
}

/** Spawns `command args` on a new terminal and yields its output, then its exit. */
export async function* streamTerminal(command: string, args: readonly string[], options: TerminalOptions): AsyncGenerator<ExecChunk> {
  checkTerminalSize(options.rows, options.cols);
  const { spawn } = await import('@lydell/node-pty');
  const started = Date.now();
  const term = spawn(command, [...args], {
    name: options.term ?? 'xterm',
    rows: options.rows,
    cols: options.cols,
    cwd: options.cwd ?? '/',
    env: { ...options.env },
    // Raw bytes: a multi-byte character split across reads must not be mangled.
    encoding: null,
  });
  let writer: TerminalWriter;
  try {
    const master = ptyMaster(term);
    writer = new TerminalWriter(master.fd, { isOpen: master.isOpen, onDrain: () => options.control?.drained() });
  } catch (err) {
    signalQuietly(-term.pid, 'SIGKILL');
    signalQuietly(term.pid, 'SIGKILL');
    throw err;
  }
  const queue: Buffer[] = [];
  let buffered = 0;
  let total = 0;
  let overflow = false;
  let timedOut = false;
  let paused = false;
  let exit: { code: number; signal?: string } | undefined;
  let controlError: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  const killEverything = (): void => {
    // The program leads its own session and process group on the terminal: this reaches what it forked too.
    signalQuietly(-term.pid, 'SIGKILL');
    signalQuietly(term.pid, 'SIGKILL');
    if (options.killAll) {
      Promise.resolve()
        .then(options.killAll)
        .catch(() => undefined);
    }
  };

  const data = term.onData((d: string | Buffer) => {
    if (overflow) return;
    const buf = Buffer.isBuffer(d) ? d : Buffer.from(d);
    total += buf.length;
    if (total > options.maxOutputBytes) {
      overflow = true;
      killEverything();
      notify();
      return;
    }
    for (let off = 0; off < buf.length; off += MAX_CHUNK_BYTES) {
      const part = buf.subarray(off, off + MAX_CHUNK_BYTES);
      queue.push(part);
      buffered += part.length;
    }
    if (buffered > HIGH_WATER && !paused) {
      paused = true;
      term.pause();
    }
    notify();
  });
  // node-pty reports the exit once the terminal is closed (or 200 ms later): all output came before it.
  const exited = term.onExit(({ exitCode, signal }) => {
    const name = signalName(signal);
    exit = { code: exitCode, ...(name ? { signal: name } : {}) };
    writer.close();
    notify();
  });

  /** Returns false while more than the bound waits for the program (the control channel tells its caller to wait). */
  const onInput = (input: TerminalInput): boolean => {
    if (exit) return true;
    try {
      if (input.kind === 'data') return writer.write(input.data) <= TERMINAL_INPUT_HIGH_WATER;
      if (input.kind === 'resize') term.resize(input.cols, input.rows);
      else if (options.sendSignal) {
        Promise.resolve(options.sendSignal(input.signal, term.pid)).catch((err: unknown) => {
          controlError = err as Error;
          notify();
        });
      } else signalQuietly(term.pid, input.signal);
    } catch (err) {
      // The terminal closed between the exit check and the call: nothing left to reach.
      if (!exit) controlError = err as Error;
      notify();
    }
    return true;
  };
  if (options.stdin?.length) writer.write(options.stdin);
  const detach = options.control?.attach(onInput);

  const timer = setTimeout(() => {
    timedOut = true;
    killEverything();
  }, options.timeoutMs);
  const onAbort = (): void => killEverything();
  options.signal.addEventListener('abort', onAbort, { once: true });
  if (options.signal.aborted) onAbort();

  try {
    for (;;) {
      while (queue.length > 0) {
        const chunk = queue.shift() as Buffer;
        buffered -= chunk.length;
        if (paused && buffered <= HIGH_WATER / 2) {
          paused = false;
          term.resume();
        }
        yield { kind: 'stdout', data: chunk };
      }
      if (overflow) {
        throw new ResourceExhaustedError(
          `the command wrote more than ${options.maxOutputBytes} bytes to its terminal and was killed; write large output to a file in the sliver's work directory`,
          { limit: options.maxOutputBytes },
        );
      }
      if (controlError) throw controlError;
      if (exit) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    yield {
      kind: 'exit',
      ...(exit.signal ? { signal: exit.signal } : { code: exit.code }),
      timedOut,
      durationMs: Date.now() - started,
    };
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onAbort);
    detach?.();
    writer.close();
    if (!exit) killEverything();
    if (paused) term.resume();
    data.dispose();
    exited.dispose();
  }
}
