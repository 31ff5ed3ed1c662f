/**
 * The live view of `fedlab up`. On a terminal it is repainted in place: the cursor moves up over the
 * previous frame and clears to the end of the screen, which only works when no line wrapped and the
 * frame fits the screen — so every line is cut to the terminal's width and the frame to its height
 * (nothing leaks into the scrollback). Lines said meanwhile are printed above it. In a pipe
 * or a file, one plain line is printed, only when something other than the output sample changed.
 */
import { printableText } from '../printable.js';
import type { UpOutput } from './up-output.js';

/** Cuts a line to `width` columns (code points; the view's text is printable). */
export function cutToWidth(line: string, width: number): string {
  const chars = [...line];
  return chars.length <= width ? line : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

/** Fits a frame to a terminal: every line cut to `columns - 1`, at most `rows - 1` lines. */
export function fitFrame(lines: readonly string[], columns: number, rows: number): string[] {
  const width = Math.max(10, columns - 1);
  const height = Math.max(3, rows - 1);
  let fitted = lines.map((l) => cutToWidth(l, width));
  if (fitted.length > height) {
    const hidden = fitted.length - (height - 1);
    fitted = [
      ...fitted.slice(0, height - 1),
      cutToWidth(`… ${hidden} more line${hidden === 1 ? '' : 's'} (a taller terminal shows them)`, width),
    ];
  }
  return fitted;
}

/** The live view. */
export class LiveView {
  private drawn = 0;
  private lastKey: string | undefined;
  private resized = false;
  private readonly onResize = (): void => {
    this.resized = true;
  };

  constructor(private readonly o: UpOutput) {}

  /** From now on the lines said are printed above the view (on a terminal), which is drawn again below them. */
  start(): void {
    this.o.setDivert((line) => this.above(line));
    this.o.out.on('resize', this.onResize);
  }

  /** The view is left as it is on screen; lines said from now on are printed below it. */
  stop(): void {
    this.o.setDivert(undefined);
    this.o.out.off('resize', this.onResize);
    this.drawn = 0;
  }

  /**
   * Prints a line above the view, whole (long lines may wrap: it is printed once and scrolls away like
   * any output): the frame is cleared first and drawn again at the next {@link show}.
   */
  private above(line: string): void {
    this.o.raw(`${this.back()}\x1b[J${printableText(line)}\n`);
    this.drawn = 0;
  }

  /** The escapes that bring the cursor back to the frame's first line. */
  private back(): string {
    // After a resize the old frame may have wrapped: clear the screen once (in place, no scrollback).
    const back = this.resized ? '\x1b[H\x1b[2J' : this.drawn ? `\x1b[${this.drawn}A\r` : '';
    this.resized = false;
    return back;
  }

  /**
   * Shows a frame: `lines` on a terminal; else `plain` when `key` differs from the last one shown (the
   * frame's line goes to the log file only when it changed).
   */
  show(lines: readonly string[], plain: string, key: string): void {
    const changed = key !== this.lastKey;
    this.lastKey = key;
    if (changed) this.o.log(plain);
    if (!this.o.tty) {
      if (changed) this.o.raw(`${printableText(plain)}\n`);
      return;
    }
    const frame = fitFrame(lines, this.o.columns, this.o.rows);
    this.o.raw(`${this.back()}\x1b[J${frame.join('\n')}\n`);
    this.drawn = frame.length;
  }
}
