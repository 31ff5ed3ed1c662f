/**
 * The client end of a session stream (session-stream.ts): one long-lived bidi
 * call on which each request message is answered by one response, in order.
 * The stream itself has no deadline; every message does — an answer that does
 * not come within it fails that message and cancels the stream (answers after
 * it could no longer be matched), so the caller opens a new one.
 */
import { Metadata, status as Status, type Client, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import type { MethodDefinitionLike } from './adapter.js';

/** A bidi method with both codecs (a generated definition's method). */
export interface SessionMethod<Req, Res> extends MethodDefinitionLike {
  requestSerialize(value: Req): Buffer;
  responseDeserialize(bytes: Buffer): Res;
}

/** How a stream ended: its status code, details and trailers (a refusal's `fedlab-rule`, ...). */
export interface SessionEnd {
  readonly code: Status;
  readonly details: string;
  readonly metadata?: Metadata;
}

interface Waiter<Res> {
  readonly resolve: (res: Res) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** An error shaped like grpc-js's, so callers test every failure the same way ({@link isServiceError}). */
function statusError(code: Status, details: string, metadata = new Metadata()): ServiceError {
  return Object.assign(new Error(`${code} ${Status[code]}: ${details}`), { code, details, metadata });
}

/** One open session stream. */
export class SessionStream<Req, Res> {
  private readonly call: ClientDuplexStream<Req, Res>;
  private readonly waiting: Waiter<Res>[] = [];
  private ending: SessionEnd | undefined;
  /** Resolves when the stream has ended, however it ended. */
  readonly ended: Promise<SessionEnd>;

  constructor(raw: Client, method: SessionMethod<Req, Res>, metadata: Metadata = new Metadata()) {
    this.call = raw.makeBidiStreamRequest(
      method.path,
      (v: Req) => method.requestSerialize(v),
      (b: Buffer) => method.responseDeserialize(b),
      metadata,
      {},
    );
    this.ended = new Promise<SessionEnd>((resolve) => {
      const settle = (end: SessionEnd): void => {
        if (this.ending) return;
        this.ending = end;
        this.failAll(
          end.code === Status.OK
            ? statusError(Status.UNAVAILABLE, 'the stream ended before answering')
            : statusError(end.code, end.details, end.metadata),
        );
        resolve(end);
      };
      this.call.on('data', (res: Res) => {
        const w = this.waiting.shift();
        if (!w) return;
        clearTimeout(w.timer);
        w.resolve(res);
      });
      this.call.on('error', (err: ServiceError) =>
        settle({ code: err.code ?? Status.UNKNOWN, details: err.details ?? err.message, metadata: err.metadata }),
      );
      this.call.on('status', (st: { code: Status; details: string; metadata?: Metadata }) =>
        settle({ code: st.code, details: st.details, metadata: st.metadata }),
      );
    });
  }

  /** Whether the stream can still carry messages. */
  get open(): boolean {
    return this.ending === undefined;
  }

  /** Sends one message; resolves with its answer, or rejects (a ServiceError) when none comes within `deadlineMs`. */
  send(request: Req, deadlineMs: number): Promise<Res> {
    if (this.ending)
      return Promise.reject(statusError(this.ending.code === Status.OK ? Status.UNAVAILABLE : this.ending.code, 'the stream has ended'));
    return new Promise<Res>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.findIndex((w) => w.timer === timer);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(statusError(Status.DEADLINE_EXCEEDED, `no answer on the stream within ${deadlineMs} ms`));
        // Later answers could not be matched to their messages: this stream is done.
        this.cancel();
      }, deadlineMs);
      this.waiting.push({ resolve, reject, timer });
      this.call.write(request);
    });
  }

  /** Half-closes: the server answers what it has and ends the stream with OK. */
  end(): void {
    if (!this.ending) this.call.end();
  }

  /** Cancels the stream at once (pending messages fail with CANCELLED). */
  cancel(): void {
    this.call.cancel();
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }
}
