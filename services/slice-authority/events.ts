/**
 * Progress events of slices for WatchSlice: each slice's recent events are
 * retained in memory (for `after_sequence` replays) and pushed to watchers as
 * they happen. Sequence numbers are given out by the slice records (and
 * persisted with them), so they keep growing across restarts.
 */
import type { WatchSliceResponse } from '../generated/fedlab/v1/slice_authority.js';

/** Events kept per slice for replays. */
const RETAINED = 1000;
/** Slices whose events are kept (least recently published forgotten first). */
const MAX_SLICES = 10_000;

/** The event hub. */
export class EventHub {
  private readonly retained = new Map<string, WatchSliceResponse[]>();
  private readonly listeners = new Map<string, Set<(e: WatchSliceResponse) => void>>();

  /** Records an event and hands it to the slice's watchers. */
  publish(e: WatchSliceResponse): void {
    let list = this.retained.get(e.sliceUrn);
    if (list) this.retained.delete(e.sliceUrn);
    else list = [];
    list.push(e);
    if (list.length > RETAINED) list.splice(0, list.length - RETAINED);
    this.retained.set(e.sliceUrn, list);
    if (this.retained.size > MAX_SLICES) this.retained.delete(this.retained.keys().next().value as string);
    for (const l of this.listeners.get(e.sliceUrn) ?? []) l(e);
  }

  /** Retained events of a slice with a sequence above `after`. */
  since(sliceUrn: string, after: number): WatchSliceResponse[] {
    return (this.retained.get(sliceUrn) ?? []).filter((e) => e.sequence > after);
  }

  /** Calls `fn` for every new event of a slice; returns the unsubscribe function. */
  subscribe(sliceUrn: string, fn: (e: WatchSliceResponse) => void): () => void {
    let set = this.listeners.get(sliceUrn);
    if (!set) {
      set = new Set();
      this.listeners.set(sliceUrn, set);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.listeners.delete(sliceUrn);
    };
  }
}
