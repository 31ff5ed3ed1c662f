/**
 * Every line `fedlab up` prints goes through one {@link UpOutput}: to the terminal or pipe while it
 * is there, and to the log file in the federation's folder (`up.log`) always. A closed pipe (EPIPE:
 * `npm start | tee log` with tee gone) or terminal (EIO after a hang-up) must never stop the stop, so
 * a failed write is swallowed and from then on that stream is left alone: the log file still gets
 * every line. The live view's repaints (see live-view.ts) are written through it too, not logged.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { claimClosedOutputs } from '../closed-output.js';
import { printableText } from '../printable.js';

/** Name of the log file in the federation's folder. */
export const UP_LOG = 'up.log';

/** One of the streams written to: standard output or error, or a stand-in in tests. */
export type OutStream = Pick<NodeJS.WriteStream, 'write' | 'on' | 'off'> & { isTTY?: boolean; columns?: number; rows?: number };

/** The writer of `fedlab up`. */
export class UpOutput {
  private logFile: string | undefined;
  /** Lines said before the folder was known: written to the log once it is. */
  private pending: string[] = [];
  private readonly broken = new Set<OutStream>();
  private readonly onError = new Map<OutStream, (err: Error) => void>();
  /** Called for what is said while the live view is on screen (it prints it above itself). */
  private divert: ((line: string) => void) | undefined;

  /** Releases the entry's closed-output handler (which would end the process, and so skip the stop). */
  private readonly release = claimClosedOutputs();

  constructor(
    readonly out: OutStream,
    readonly err: OutStream,
  ) {
    for (const s of [out, err]) {
      // A stream that errs asynchronously (EPIPE on a pipe) must not throw an uncaught 'error'.
      const h = (e: Error): void => this.lost(s, e);
      this.onError.set(s, h);
      s.on('error', h);
    }
  }

  /** Whether standard output is a terminal that still answers. */
  get tty(): boolean {
    return this.out.isTTY === true && !this.broken.has(this.out);
  }

  /** Whether standard output was lost (a closed pipe or terminal). */
  get outLost(): boolean {
    return this.broken.has(this.out);
  }

  /** Terminal width (for cutting the view's lines); 100 when unknown. */
  get columns(): number {
    return this.out.columns && this.out.columns > 0 ? this.out.columns : 100;
  }

  /** Terminal height; 24 when unknown. */
  get rows(): number {
    return this.out.rows && this.out.rows > 0 ? this.out.rows : 24;
  }

  /** From now on every line is also appended to `<dir>/up.log` (with the lines said before). */
  logTo(dir: string): void {
    this.logFile = join(dir, UP_LOG);
    const earlier = this.pending;
    this.pending = [];
    for (const l of earlier) this.append(l);
  }

  /** The log file, once known. */
  get logPath(): string | undefined {
    return this.logFile;
  }

  /** Hands what is said from now on to the live view (`undefined`: print it as usual). */
  setDivert(fn: ((line: string) => void) | undefined): void {
    this.divert = fn;
  }

  /** A line (or several) for a person: printed (printable) and logged. */
  say(text: string): void {
    this.log(text);
    if (this.divert && this.tty) {
      this.divert(text);
      return;
    }
    this.raw(`${printableText(text)}\n`);
  }

  /** An error line: to standard error, and logged. */
  error(text: string): void {
    this.log(text);
    this.write(this.err, `${printableText(text)}\n`);
  }

  /** Only to the log file (what the view shows on a terminal, the steps of a stop). */
  log(text: string): void {
    const stamp = new Date().toISOString();
    const lines = text.split('\n').map((l) => `${stamp} ${l}`);
    if (!this.logFile) this.pending.push(...lines);
    else for (const l of lines) this.append(l);
  }

  /** Text as is to standard output (the view's escapes); dropped once the output is lost. */
  raw(text: string): void {
    this.write(this.out, text);
  }

  /** Stops listening to the streams (the end of a run in-process). */
  close(): void {
    for (const [s, h] of this.onError) s.off('error', h);
    this.onError.clear();
    this.release();
  }

  private write(s: OutStream, text: string): void {
    if (this.broken.has(s)) return;
    try {
      s.write(text);
    } catch (e) {
      this.lost(s, e as Error);
    }
  }

  private lost(s: OutStream, e: Error): void {
    if (this.broken.has(s)) return;
    this.broken.add(s);
    const which = s === this.out ? 'standard output' : 'standard error';
    this.log(`${which} is gone (${(e as NodeJS.ErrnoException).code ?? e.message}); lines go to this file only from now on`);
  }

  private append(line: string): void {
    try {
      appendFileSync(this.logFile as string, `${line}\n`, { mode: 0o600 });
    } catch {
      // A log that cannot be written must not stop the stop either.
    }
  }
}
