/**
 * The control channel of a command run on a terminal (PTY mode of Exec): the
 * caller types into it, resizes its window and sends signals; the driver
 * attaches once the command runs and receives them in order. What arrives
 * before the driver attaches is kept and delivered then; what arrives after
 * the command ended is dropped. Sizes and signal names are checked here, so
 * a bad one fails the caller's own call and never reaches the host.
 */
import { InvalidArgumentError, ResourceExhaustedError } from '../../core/errors.js';

/** Largest window, in rows or columns, a terminal may have. */
export const MAX_TERMINAL_SIZE = 4096;
/** Bytes typed before the command runs that are kept for it. */
const MAX_PENDING_BYTES = 1024 * 1024;

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
  private sink: ((input: TerminalInput) => void) | undefined;
  private ended = false;

  /** Types into the terminal (keystrokes: Ctrl-C is "\x03", Ctrl-D "\x04"). */
  write(data: Buffer | string): void {
    this.push({ kind: 'data', data: Buffer.isBuffer(data) ? data : Buffer.from(data) });
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

  /** Driver side: receives what was sent so far, then each new input as it comes, until the returned function is called. */
  attach(sink: (input: TerminalInput) => void): () => void {
    if (this.sink || this.ended) throw new Error('a terminal control channel serves one command');
    this.sink = sink;
    const early = this.pending;
    this.pending = [];
    for (const input of early) sink(input);
    return () => {
      this.sink = undefined;
      this.ended = true;
    };
  }

  private push(input: TerminalInput): void {
    if (this.ended) return;
    if (this.sink) return this.sink(input);
    if (input.kind === 'data') {
      this.pendingBytes += input.data.length;
      if (this.pendingBytes > MAX_PENDING_BYTES) {
        throw new ResourceExhaustedError(`more than ${MAX_PENDING_BYTES} bytes typed before the terminal's command started`);
      }
    }
    this.pending.push(input);
  }
}
