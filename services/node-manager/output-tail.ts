/**
 * The last output lines of the commands run in each sliver through Exec, kept
 * in memory (bounded per sliver and per line) so that a slice's provider and
 * its members can read a service's recent output with GetSliver
 * (`output_lines`) without running anything. Lost when the node manager
 * restarts; forgotten when the sliver is deleted.
 */

/** Longest line kept (characters); longer lines are cut and marked. */
export const MAX_LINE_CHARS = 2048;

interface SliverTail {
  readonly lines: string[];
}

/** Per-sliver rings of output lines. */
export class OutputTail {
  private readonly tails = new Map<string, SliverTail>();

  constructor(private readonly maxLines = 200) {}

  /**
   * A writer for one command's output: whole lines go to the sliver's ring as
   * they complete; a stream's unfinished last line is kept at the end. stdout
   * and stderr are split separately so one cannot cut the other's line.
   */
  writer(sliverUrn: string): { write(stream: 'stdout' | 'stderr', data: Buffer): void; end(): void } {
    const partial = { stdout: '', stderr: '' };
    const push = (line: string): void => this.push(sliverUrn, line);
    return {
      write(stream, data) {
        const text = partial[stream] + data.toString('utf8');
        const parts = text.split('\n');
        partial[stream] = parts.pop() ?? '';
        for (const line of parts) push(line);
        // An endless line without a newline must not grow without bound.
        if (partial[stream].length > MAX_LINE_CHARS) {
          push(partial[stream]);
          partial[stream] = '';
        }
      },
      end() {
        for (const s of ['stdout', 'stderr'] as const) if (partial[s] !== '') push(partial[s]);
        partial.stdout = '';
        partial.stderr = '';
      },
    };
  }

  private push(sliverUrn: string, line: string): void {
    let tail = this.tails.get(sliverUrn);
    if (!tail) {
      tail = { lines: [] };
      this.tails.set(sliverUrn, tail);
    }
    const clean = line.endsWith('\r') ? line.slice(0, -1) : line;
    tail.lines.push(clean.length > MAX_LINE_CHARS ? `${clean.slice(0, MAX_LINE_CHARS)}…` : clean);
    if (tail.lines.length > this.maxLines) tail.lines.splice(0, tail.lines.length - this.maxLines);
  }

  /** The last `n` lines of a sliver, oldest first. */
  last(sliverUrn: string, n: number): string[] {
    const lines = this.tails.get(sliverUrn)?.lines ?? [];
    return n <= 0 ? [] : lines.slice(-n);
  }

  /** Forgets a sliver's lines. */
  forget(sliverUrn: string): void {
    this.tails.delete(sliverUrn);
  }
}
