/**
 * A served call's abort signal, made only when something asks for it.
 *
 * Cancellation, the deadline and a forced stop all abort a call. An
 * `AbortController`, its signal, a deadline timer and a `cancelled` listener
 * cost a small call about as much as its handler, and most read handlers never
 * look at the signal; so until {@link CallAbort.signal} is first read, the call
 * only remembers a forced stop's reason, and the signal made then starts in the
 * state the call is in: aborted if the client has cancelled, the deadline has
 * passed or the server was force-stopped, otherwise armed for all three.
 */
import type { ServerUnaryCall } from '@grpc/grpc-js';

/** A call object that says whether its client cancelled, and emits `cancelled` when it does (every grpc-js server call). */
export type CancellableCall = Pick<ServerUnaryCall<unknown, unknown>, 'cancelled' | 'on' | 'off'>;

/** Aborts what a call is doing; one per served call. */
export class CallAbort {
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopReason: Error | undefined;
  private finished = false;
  private readonly onCancel = (): void => this.controller?.abort(new Error('cancelled by the client'));

  /** `deadline` is in ms since the epoch (Infinity for none). */
  constructor(
    private readonly call: CancellableCall,
    readonly deadline: number,
  ) {}

  /** The call's signal: made at the first read, already aborted if the call is over for any of the three reasons. */
  get signal(): AbortSignal {
    return (this.controller ??= this.arm()).signal;
  }

  /** Whether the call has been aborted (without making the signal when nothing has asked for it yet). */
  get aborted(): boolean {
    if (this.controller) return this.controller.signal.aborted;
    return this.stopReason !== undefined || this.call.cancelled || Date.now() >= this.deadline;
  }

  /** Aborts the call (a forced stop). */
  abort(reason: Error): void {
    if (this.controller) this.controller.abort(reason);
    else this.stopReason ??= reason;
  }

  /** The call is over: its timer and listener go. */
  done(): void {
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.controller) this.call.off('cancelled', this.onCancel);
  }

  private arm(): AbortController {
    const controller = new AbortController();
    const wait = this.deadline - Date.now();
    if (this.stopReason) controller.abort(this.stopReason);
    else if (this.call.cancelled) controller.abort(new Error('cancelled by the client'));
    else if (wait <= 0) controller.abort(new Error('deadline exceeded'));
    else if (!this.finished) {
      this.call.on('cancelled', this.onCancel);
      if (Number.isFinite(wait)) {
        this.timer = setTimeout(() => controller.abort(new Error('deadline exceeded')), wait);
        this.timer.unref();
      }
    }
    return controller;
  }
}
