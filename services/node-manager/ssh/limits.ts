/**
 * The SSH endpoint's shared counts: sessions and forwards per slice, and
 * logged-in connections per slice and overall. A slot is taken before the
 * thing it counts starts and given back once it ended.
 */
import type { SshSettings } from './settings.js';

/** What is counted per slice. */
export type SliceCounted = 'sessions' | 'forwards' | 'connections';

/** Counts against the settings' bounds. */
export class SshLimits {
  private readonly perSlice = new Map<string, number>();
  private connections = 0;

  constructor(private readonly settings: SshSettings) {}

  private bound(kind: SliceCounted): number {
    const s = this.settings;
    return kind === 'sessions' ? s.maxSessionsPerSlice : kind === 'forwards' ? s.maxForwardsPerSlice : s.maxConnectionsPerSlice;
  }

  /** How many of `kind` the slice has now. */
  count(kind: SliceCounted, slice: string): number {
    return this.perSlice.get(`${kind} ${slice}`) ?? 0;
  }

  /** Takes a slot of `kind` for the slice (and, for a connection, one of the node's); false when full. */
  take(kind: SliceCounted, slice: string): boolean {
    if (this.count(kind, slice) >= this.bound(kind)) return false;
    if (kind === 'connections') {
      if (this.connections >= this.settings.maxConnections) return false;
      this.connections++;
    }
    this.perSlice.set(`${kind} ${slice}`, this.count(kind, slice) + 1);
    return true;
  }

  /** Gives a slot back. */
  release(kind: SliceCounted, slice: string): void {
    const n = this.count(kind, slice) - 1;
    if (n > 0) this.perSlice.set(`${kind} ${slice}`, n);
    else this.perSlice.delete(`${kind} ${slice}`);
    if (kind === 'connections' && this.connections > 0) this.connections--;
  }
}
