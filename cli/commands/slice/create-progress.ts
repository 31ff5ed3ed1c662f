/** Progress of `fedlab slice create`. */
import type { WatchSliceResponse } from '../../../services/generated/fedlab/v1/slice_authority.js';
import { printable } from '../../printable.js';

/** Progress of a slice being made: a bar redrawn in place on a terminal, one plain line per event otherwise. */
export class CreateProgress {
  private readonly done = new Map<string, string>();
  private total = 0;
  private drawn = false;

  constructor(
    private readonly tty: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  /** How many nodes the slice asks for. */
  expect(total: number): void {
    this.total = total;
  }

  /** Shows one event of the slice's watch. */
  event(raw: WatchSliceResponse): void {
    // What the slice authority says is shown printable; the only escapes written are the bar's own.
    const e = { ...raw, site: printable(raw.site), nodeUrn: printable(raw.nodeUrn), message: printable(raw.message) };
    if (e.nodeUrn) this.done.set(e.nodeUrn, e.message);
    if (this.tty) {
      if (e.status?.code && e.site) this.line(`${e.site}: ${e.message}`);
      this.draw(e.site ? `${e.site}${e.nodeUrn ? ` ${e.nodeUrn.split(':').pop()}` : ''}: ${e.message}` : e.message);
      return;
    }
    const where = [e.site, e.nodeUrn].filter((x) => x).join(' ');
    this.out.write(`${where ? `${where} ` : ''}${e.message}\n`);
  }

  private line(text: string): void {
    if (this.drawn) this.out.write('\r\x1b[2K');
    this.out.write(`${text}\n`);
    this.drawn = false;
  }

  private draw(last: string): void {
    const finished = [...this.done.values()].filter((m) => m === 'started' || m === 'provisioned' || /failed/.test(m)).length;
    const total = Math.max(this.total, this.done.size, 1);
    const width = 24;
    const filled = Math.min(width, Math.round((finished / total) * width));
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${finished}/${total} nodes`;
    this.out.write(`\r\x1b[2K${bar}  ${last.slice(0, 60)}`);
    this.drawn = true;
  }

  /** Ends the bar's line. */
  end(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
