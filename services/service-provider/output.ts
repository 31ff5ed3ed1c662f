/**
 * The last output lines of one sliver's commands, as the provider sees them
 * through Exec: stdout and stderr split into lines separately (one cannot cut
 * the other's line), bounded in count and in line length.
 */

/** Longest line kept (characters). */
export const MAX_LINE_CHARS = 1024;

/** A bounded ring of output lines. */
export class OutputLines {
  private readonly lines: string[];
  private readonly partial = { stdout: '', stderr: '' };
  private dirty = false;

  constructor(
    private readonly max: number,
    initial: readonly string[] = [],
  ) {
    this.lines = initial.slice(-max);
  }

  /** Adds a chunk of a stream. */
  write(stream: 'stdout' | 'stderr', data: Buffer): void {
    const parts = (this.partial[stream] + data.toString('utf8')).split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const line of parts) this.push(line);
    if (this.partial[stream].length > MAX_LINE_CHARS) {
      this.push(this.partial[stream]);
      this.partial[stream] = '';
    }
  }

  /** Ends a run: unfinished lines are kept as they are. */
  end(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.partial[s] !== '') this.push(this.partial[s]);
      this.partial[s] = '';
    }
  }

  /** Adds a line of the provider's own (e.g. why a run ended). */
  note(line: string): void {
    this.push(line);
  }

  private push(line: string): void {
    const clean = line.endsWith('\r') ? line.slice(0, -1) : line;
    this.lines.push(clean.length > MAX_LINE_CHARS ? `${clean.slice(0, MAX_LINE_CHARS)}…` : clean);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
    this.dirty = true;
  }

  /** Whether lines were added since the last {@link take}. */
  get changed(): boolean {
    return this.dirty;
  }

  /** The lines, oldest first; clears the changed flag. */
  take(): string[] {
    this.dirty = false;
    return [...this.lines];
  }
}
