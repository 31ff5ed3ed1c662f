/**
 * The control channel of a command run on a terminal (PTY mode of Exec): the
 * caller types into it, resizes its window and sends signals; the driver
 * attaches once the command runs and receives them in order. What arrives
 * before the driver attaches is kept and delivered then; what arrives after
 * the command ended is dropped. Sizes and signal names are checked here, so
 * a bad one fails the caller's own call and never reaches the host.
 *
 * Typing has backpressure, as a stream's `write` does: `write` returns false
 * while more than {@link TERMINAL_INPUT_HIGH_WATER} bytes wait (before the
 * command starts, or because it does not read), and the caller waits for
 * {@link TerminalControl.onceDrained}. A caller that goes on writing
 * regardless is refused past a bound, so what waits stays bounded.
 */
import { InvalidArgumentError, ResourceExhaustedError } from '../../core/errors.js';

/** Largest window, in rows or columns, a terminal may have. */
export const MAX_TERMINAL_SIZE = 4096;
/** Bytes typed before the command runs that are kept for it. */
const MAX_PENDING_BYTES = 1024 * 1024;
/** Bytes waiting for a terminal above which `write` asks its caller to wait. */
export const TERMINAL_INPUT_HIGH_WATER = 64 * 1024;
/** Bytes a caller may go on writing after `write` asked it to wait, before it is refused. */
const MAX_WRITTEN_WHILE_FULL = 1024 * 1024;

/** Signals a caller may send to a terminal's command (what SSH's "signal" request names, and the job-control ones). */
export const TERMINAL_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGABRT',
  'SIGALRM',
  'SIGFPE',
  'SIGHUP',
  'SIGILL',
  'SIGINT',
  'SIGKILL',
  'SIGPIPE',
  'SIGQUIT',
  'SIGSEGV',
  'SIGTERM',
  'SIGUSR1',
  'SIGUSR2',
  'SIGCONT',
  'SIGSTOP',
  'SIGTSTP',
  'SIGWINCH',
];

/** One thing the terminal's user did. */
export type TerminalInput =
  | { readonly kind: 'data'; readonly data: Buffer }
  | { readonly kind: 'resize'; readonly rows: number; readonly cols: number }
  | { readonly kind: 'signal'; readonly signal: NodeJS.Signals };

/** Throws INVALID_ARGUMENT unless rows and cols are whole numbers from 1 to {@link MAX_TERMINAL_SIZE}. */
export function checkTerminalSize(rows: number, cols: number): void {
  for (const [name, v] of [
    ['rows', rows],
    ['cols', cols],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1 || v > MAX_TERMINAL_SIZE) {
      throw new InvalidArgumentError(`terminal ${name} must be a whole number from 1 to ${MAX_TERMINAL_SIZE}, not ${String(v)}`, {
        field: `tty.${name}`,
      });
    }
  }
}

/** Throws INVALID_ARGUMENT unless the signal is one of {@link TERMINAL_SIGNALS} (with or without its SIG prefix); returns its full name. */
export function checkTerminalSignal(signal: string): NodeJS.Signals {
  const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as NodeJS.Signals;
  if (!TERMINAL_SIGNALS.includes(name)) {
    throw new InvalidArgumentError(`signal ${JSON.stringify(signal.slice(0, 20))} cannot be sent; one of ${TERMINAL_SIGNALS.join(', ')}`, {
      field: 'signal',
    });
  }
  return name;
}

/** The caller's side of a terminal, handed to the driver in `ExecSpec.tty.control`. */
export class TerminalControl {
  private pending: TerminalInput[] = [];
  private pendingBytes = 0;
  private sink: ((input: TerminalInput) => unknown) | undefined;
  private ended = false;
  /** `write` told the caller to wait; cleared on drain. */
  private full = false;
  /** Bytes written since `write` told the caller to wait. */
  private writtenWhileFull = 0;
  private drainListeners: (() => void)[] = [];

  /**
   * Types into the terminal (keystrokes: Ctrl-C is "\x03", Ctrl-D "\x04"). Returns false when the
   * caller should wait for {@link onceDrained} before writing more; throws RESOURCE_EXHAUSTED when
   * it wrote a megabyte more regardless.
   */
  write(data: Buffer | string): boolean {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (this.full && this.sink) {
      this.writtenWhileFull += buf.length;
      if (this.writtenWhileFull > MAX_WRITTEN_WHILE_FULL) {
        throw new ResourceExhaustedError(`more than ${MAX_WRITTEN_WHILE_FULL} bytes typed while the terminal's command was not reading`);
      }
    }
    this.push({ kind: 'data', data: buf });
    return !this.full;
  }

  /** Calls `listener` once the caller may write again: now if it may, else on drain or when the command ended. */
  onceDrained(listener: () => void): void {
    if (this.full) this.drainListeners.push(listener);
    else listener();
  }

  /** Changes the window size; the command gets SIGWINCH. */
  resize(rows: number, cols: number): void {
    checkTerminalSize(rows, cols);
    this.push({ kind: 'resize', rows, cols });
  }

  /** Sends a signal to the command (e.g. `SIGTERM`, or `INT` as SSH names it). */
  signal(signal: string): void {
    this.push({ kind: 'signal', signal: checkTerminalSignal(signal) });
  }

  /** True once the command ended: what is sent now is dropped. */
  get closed(): boolean {
    return this.ended;
  }

  /**
   * Driver side: receives what was sent so far, then each new input as it comes, until the returned
   * function is called. The sink returns false when the terminal's input is over its bound; the driver
   * then calls {@link drained} once it took it.
   */
  attach(sink: (input: TerminalInput) => unknown): () => void {
    if (this.sink || this.ended) throw new Error('a terminal control channel serves one command');
    this.sink = sink;
    const early = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    let full = false;
    for (const input of early) {
      const taken = sink(input);
      if (input.kind === 'data') full = taken === false;
    }
    this.setFull(full);
    return () => {
      this.sink = undefined;
      this.ended = true;
      this.setFull(false);
    };
  }

  /** Driver side: what was waiting was taken; a caller waiting in {@link onceDrained} goes on. */
  drained(): void {
    this.setFull(false);
  }

  private setFull(full: boolean): void {
    if (full) {
      this.full = true;
      return;
    }
    if (!this.full) return;
    this.full = false;
    this.writtenWhileFull = 0;
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const l of listeners) l();
  }

  private push(input: TerminalInput): void {
    if (this.ended) return;
    if (this.sink) {
      const taken = this.sink(input);
      if (input.kind === 'data') this.setFull(taken === false);
      return;
    }
    if (input.kind === 'data') {
      this.pendingBytes += input.data.length;
      if (this.pendingBytes > MAX_PENDING_BYTES) {
        throw new ResourceExhaustedError(`more than ${MAX_PENDING_BYTES} bytes typed before the terminal's command started`);
      }
      if (this.pendingBytes > TERMINAL_INPUT_HIGH_WATER) this.setFull(true);
    }
    this.pending.push(input);
  }
}
