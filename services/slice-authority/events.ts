/**
 * Progress events of slices for WatchSlice: each slice's recent events are
 * retained in memory (for `after_sequence` replays) and pushed to watchers as
 * they happen. Sequence numbers are given out by the slice records (and
 * persisted with them), so they keep growing across restarts.
 *
 * Each watcher gets its own bounded queue ({@link EventFeed}): a reader that
 * falls further behind than the cap is dropped at once (its subscription and
 * queued events freed) and its stream ends RESOURCE_EXHAUSTED naming the cap,
 * so a slow or stalled reader never makes the slice authority hold more.
 */
import { ResourceExhaustedError } from '../core/errors.js';
import type { WatchSliceResponse } from '../generated/fedlab/v1/slice_authority.js';

/** Events kept per slice for replays. */
export const RETAINED = 1000;
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
    // A copy: a watcher that overflows unsubscribes itself on the way.
    for (const l of [...(this.listeners.get(e.sliceUrn) ?? [])]) l(e);
  }

  /** Retained events of a slice with a sequence above `after`. */
  since(sliceUrn: string, after: number): WatchSliceResponse[] {
    return (this.retained.get(sliceUrn) ?? []).filter((e) => e.sequence > after);
  }

  /** The sequence number of the last retained event of a slice (0 when none is). */
  lastSequence(sliceUrn: string): number {
    return this.retained.get(sliceUrn)?.at(-1)?.sequence ?? 0;
  }

  /**
   * Drops the retained events of a slice whose record is gone (retention purged it): a later slice of
   * the same URN must not have them replayed to its watchers as its own.
   */
  forget(sliceUrn: string): void {
    this.retained.delete(sliceUrn);
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
      if (set.size === 0 && this.listeners.get(sliceUrn) === set) this.listeners.delete(sliceUrn);
    };
  }

  /** How many watchers a slice has now. */
  watchers(sliceUrn: string): number {
    return this.listeners.get(sliceUrn)?.size ?? 0;
  }

  /** A bounded feed of a slice's new events for one watcher (see {@link EventFeed}). */
  feed(sliceUrn: string, maxQueued: number): EventFeed {
    return new EventFeed(this, sliceUrn, maxQueued);
  }
}

/**
 * One watcher's new events, at most `maxQueued` waiting. One more and the
 * watcher is dropped: it is unsubscribed and its queue emptied there and then
 * (whether or not its reader is still waiting on the transport), and its next
 * read throws RESOURCE_EXHAUSTED naming the cap.
 */
export class EventFeed {
  private readonly queue: WatchSliceResponse[] = [];
  private wake: (() => void) | undefined;
  private readonly unsubscribe: () => void;
  private overflowed = false;

  constructor(
    hub: EventHub,
    readonly sliceUrn: string,
    readonly maxQueued: number,
  ) {
    this.unsubscribe = hub.subscribe(sliceUrn, (e) => this.push(e));
  }

  private push(e: WatchSliceResponse): void {
    if (this.overflowed) return;
    if (this.queue.length >= this.maxQueued) {
      this.overflowed = true;
      this.queue.length = 0;
      this.unsubscribe();
    } else {
      this.queue.push(e);
    }
    this.wake?.();
  }

  /**
   * The next event, waiting for one; undefined once `signal` aborts. Throws ResourceExhaustedError when
   * the watcher fell behind by more than the cap (`resumeAfter` is the last sequence it was given, which
   * the message tells it to watch again from).
   */
  async next(signal: AbortSignal, resumeAfter: number): Promise<WatchSliceResponse | undefined> {
    for (;;) {
      if (this.overflowed) {
        throw new ResourceExhaustedError(
          `this WatchSlice reader fell more than ${this.maxQueued} events behind (limits.watch_queue_events is ${this.maxQueued}) and was cut off; read faster, or watch again with after_sequence ${resumeAfter} (or 0 for a fresh snapshot)`,
          { rule: 'watch_queue_events', limit: this.maxQueued },
        );
      }
      if (signal.aborted) return undefined;
      const e = this.queue.shift();
      if (e) return e;
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        this.wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
      this.wake = undefined;
    }
  }

  /** Stops the feed (the watcher is gone). */
  close(): void {
    this.queue.length = 0;
    this.unsubscribe();
  }
}
