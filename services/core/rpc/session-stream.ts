/**
 * Bidi streams served as sessions: the caller's identity is established once,
 * when the stream opens (the connection's certificate, checked against the CA
 * trust; the per-caller stream quotas), then every request message is answered
 * by one response message, in order. A session costs one `rpc` log line and one
 * metrics observation when it ends, however many messages it carried; a message
 * costs its handler, a token-bucket step and the CA-trust re-check (a cached
 * verdict while the trust is unchanged).
 *
 * What a peer cannot do with one: hold more than `maxPerCaller` of a method's
 * sessions (plus the server's per-caller and per-connection stream caps), send
 * messages faster than `messagesPerSecond` (beyond `burst`), send larger ones
 * than the method accepts (the bounded deserializer), leave a session silent
 * for `idleMs`, or stop reading answers for `stallMs`: each ends the stream with
 * its status. While an answer waits (an async handler, or a full send window)
 * the stream is not read, so HTTP/2 flow control holds the sender back and at
 * most one message per stream is being worked on.
 */
import { performance } from 'node:perf_hooks';
import { status as Status, type ServerDuplexStream } from '@grpc/grpc-js';
import { DeadlineExceededError, ResourceExhaustedError } from '../errors.js';
import type { CallContext } from './context.js';
import { buildContext, failure, finishCall, startCall, type ResolvedDeps } from './call-lifecycle.js';
import { checkCertificateValidity } from './certificate-validity.js';
import { admit } from './refused-request.js';
import type { StreamQuota } from './server-limits.js';

/** Bounds of one method's sessions. */
export interface SessionLimits {
  /** Open sessions of this method one caller (by URN) may hold on the server. */
  readonly maxPerCaller: number;
  /** Sustained messages per second one session may send ... */
  readonly messagesPerSecond: number;
  /** ... and how many it may send at once above that. */
  readonly burst: number;
  /** A session with no message for this long is ended (DEADLINE_EXCEEDED), ms. */
  readonly idleMs: number;
  /** A session whose answers are not read for this long is ended (RESOURCE_EXHAUSTED), ms. */
  readonly stallMs: number;
}

/** The defaults: a few sessions per caller, ten messages a second, quiet for ten minutes at most. */
export const DEFAULT_SESSION_LIMITS: SessionLimits = Object.freeze({
  maxPerCaller: 4,
  messagesPerSecond: 10,
  burst: 20,
  idleMs: 10 * 60_000,
  stallMs: 30_000,
});

/** Resolves partial limits over the defaults. */
export function sessionLimits(partial: Partial<SessionLimits> = {}): SessionLimits {
  return Object.freeze({ ...DEFAULT_SESSION_LIMITS, ...partial });
}

/** One open session: answers its messages. */
export interface Session<Req, Res> {
  /** Answers one message; a throw ends the stream with the error's status (and nothing more is read). */
  message(request: Req): Res | Promise<Res>;
  /** Called once when the stream has ended, however it ended. */
  close?(): void;
}

/** Serves one bidi method: `open` runs when a stream opens, with the caller known; `end` ends the stream from outside. */
export interface SessionHandler<Req, Res> {
  readonly limits?: Partial<SessionLimits>;
  open(context: CallContext, end: (error: Error) => void): Session<Req, Res> | Promise<Session<Req, Res>>;
}

/** A settled way the message loop ended: the client half-closed (or went away), or an error ends the stream. */
type LoopEnd = { readonly error?: unknown };

/** Serves one session stream through the same path as every other call (identity, quotas, one status mapping, one log line). */
export async function serveSession(
  call: ServerDuplexStream<unknown, unknown>,
  method: string,
  handler: SessionHandler<unknown, unknown>,
  limits: SessionLimits,
  perMethod: StreamQuota,
  deps: ResolvedDeps,
): Promise<void> {
  const started = performance.now();
  const { controller, done } = startCall(call, deps.tracker);
  // Stream slots are given back when the transport stream is gone, not when the handler is done: the status of a
  // stream whose answers are not read waits behind them, and such a stream must go on counting against its caller.
  const gone = new Promise<void>((resolve) => {
    call.once('finish', resolve);
    call.once('cancelled', resolve);
  });
  let caller: string | undefined;
  let code = Status.OK;
  let rule: string | undefined;
  const releases: (() => void)[] = [];
  let session: Session<unknown, unknown> | undefined;
  let loop: MessageLoop | undefined;
  let unregister: (() => void) | undefined;
  try {
    const ctx = await buildContext(call, method, controller, deps.log, deps.trust);
    caller = ctx.peer.urn;
    deps.audit?.begin(ctx, undefined);
    releases.push(deps.streams.acquire(caller, method));
    releases.push(perMethod.acquire(caller, method));
    let ended: Error | undefined;
    session = await handler.open(ctx, (error) => {
      ended ??= error;
      loop?.stop(error);
    });
    if (ended) throw ended;
    const running = new MessageLoop(call, session, limits, () => {
      checkCertificateValidity(ctx.peer);
      deps.trust?.checkClient(ctx.peer);
    });
    loop = running;
    unregister = deps.tracker.addSession((error) => running.stop(error));
    const end = await running.run(controller.signal);
    if (end.error !== undefined) throw end.error;
    if (controller.signal.aborted && call.cancelled) code = Status.CANCELLED;
    else call.end();
  } catch (err) {
    const f = failure(err, deps, method);
    ({ code, rule } = f);
    call.emit('error', f.status);
  } finally {
    unregister?.();
    void gone.then(() => {
      for (const release of releases) release();
    });
    try {
      session?.close?.();
    } catch (err) {
      deps.log.error({ err, method }, 'closing a session failed');
    }
    done();
    finishCall(deps, method, caller, code, started, rule, controller, loop?.messages ?? 0);
  }
}

/** Reads, answers and bounds the messages of one session. */
class MessageLoop {
  /** Messages answered (for the call's log line). */
  messages = 0;
  private tokens: number;
  private refilledAt = performance.now();
  private lastMessageAt = performance.now();
  /** Answers still being worked out (0 or 1: the stream is paused meanwhile). */
  private pending = false;
  private blocked = false;
  private inputEnded = false;
  private finish: (end: LoopEnd) => void = () => undefined;
  private settled = false;

  constructor(
    private readonly call: ServerDuplexStream<unknown, unknown>,
    private readonly session: Session<unknown, unknown>,
    private readonly limits: SessionLimits,
    private readonly recheck: () => void,
  ) {
    this.tokens = limits.burst;
  }

  /** Runs until the client half-closes, the call is aborted, or an error ends it. */
  run(signal: AbortSignal): Promise<LoopEnd> {
    const call = this.call;
    return new Promise<LoopEnd>((resolve) => {
      let idleTimer: NodeJS.Timeout | undefined;
      let stallTimer: NodeJS.Timeout | undefined;
      const onData = (request: unknown): void => this.take(request);
      const onEnd = (): void => {
        this.inputEnded = true;
        if (!this.pending) this.finish({});
      };
      const onAbort = (): void => this.finish({});
      const onError = (): void => this.finish({});
      const onDrain = (): void => {
        if (stallTimer) clearTimeout(stallTimer);
        stallTimer = undefined;
        this.blocked = false;
        this.resumeIfFree();
      };
      this.onBlocked = () => {
        stallTimer ??= setTimeout(() => {
          this.stop(
            new ResourceExhaustedError(
              `the stream's answers were not read for ${this.limits.stallMs} ms; read each answer (a stream that is not read is closed)`,
              { limit: 'stream_stall' },
            ),
          );
        }, this.limits.stallMs);
      };
      // One timer per session, re-armed for what is left rather than reset per message.
      const armIdle = (ms: number): void => {
        idleTimer = setTimeout(() => {
          const quiet = performance.now() - this.lastMessageAt;
          if (quiet < this.limits.idleMs) armIdle(this.limits.idleMs - quiet);
          else
            this.stop(
              new DeadlineExceededError(`no message on this stream for ${this.limits.idleMs} ms; a quiet stream is closed, open a new one`),
            );
        }, ms);
        idleTimer.unref();
      };
      this.finish = (end) => {
        if (this.settled) return;
        this.settled = true;
        if (idleTimer) clearTimeout(idleTimer);
        if (stallTimer) clearTimeout(stallTimer);
        call.off('data', onData);
        call.off('end', onEnd);
        call.off('error', onError);
        call.off('drain', onDrain);
        signal.removeEventListener('abort', onAbort);
        resolve(end);
      };
      if (signal.aborted) return this.finish({});
      signal.addEventListener('abort', onAbort, { once: true });
      call.on('error', onError);
      call.on('end', onEnd);
      call.on('drain', onDrain);
      armIdle(this.limits.idleMs);
      call.on('data', onData);
    });
  }

  /** Ends the loop with `error` (its status goes to the client). */
  stop(error: Error): void {
    this.finish({ error });
  }

  private onBlocked: () => void = () => undefined;

  private take(request: unknown): void {
    if (this.settled) return;
    let answer: unknown;
    try {
      admit(request);
      const now = performance.now();
      this.spend(now);
      // The certificate of a connection cannot change, but it can expire, and the trust in its CA can change (a refreshed bundle).
      this.recheck();
      this.lastMessageAt = now;
      answer = this.session.message(request);
    } catch (err) {
      this.stop(err as Error);
      return;
    }
    if (answer instanceof Promise) {
      this.pending = true;
      this.call.pause();
      answer.then(
        (res) => {
          this.pending = false;
          this.send(res);
          if (this.inputEnded) this.finish({});
          else this.resumeIfFree();
        },
        (err: unknown) => this.stop(err as Error),
      );
      return;
    }
    this.send(answer);
  }

  private send(response: unknown): void {
    if (this.settled) return;
    this.messages++;
    if (!this.call.write(response)) {
      // Nothing more is read until the client takes what was sent.
      this.blocked = true;
      this.call.pause();
      this.onBlocked();
    }
  }

  private resumeIfFree(): void {
    if (!this.settled && !this.pending && !this.blocked) this.call.resume();
  }

  /** A token-bucket step: refuses a message past the sustained rate and its burst. */
  private spend(now: number): void {
    this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.refilledAt) * this.limits.messagesPerSecond) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) {
      throw new ResourceExhaustedError(
        `more than ${this.limits.messagesPerSecond} messages a second on this stream (burst ${this.limits.burst}); send at the interval you were given`,
        { limit: 'stream_messages_per_second' },
      );
    }
    this.tokens -= 1;
  }
}
