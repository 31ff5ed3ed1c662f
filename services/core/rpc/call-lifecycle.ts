/**
 * What every served call goes through, whatever its shape (unary, server
 * stream, session stream): an abort signal that cancellation, the deadline and
 * a forced stop all fire; the {@link CallContext} built from the connection's
 * identity; and, when it ends, one log line and its metrics.
 */
import { performance } from 'node:perf_hooks';
import {
  status as Status,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type StatusObject,
} from '@grpc/grpc-js';
import type { CallAudit } from '../audit/call-audit.js';
import type { ServiceMetrics } from '../metrics/service-metrics.js';
import type { Logger } from '../log.js';
import type { Metadata } from '@grpc/grpc-js';
import type { CertIdentity } from '../identity/certificate.js';
import { CallAbort } from './call-abort.js';
import { knownPeerIdentity, peerIdentity, readCredentialChain, type CallContext } from './context.js';
import type { TransportTrust } from './trust.js';
import type { StreamQuota } from './server-limits.js';
import { toGrpcStatus } from './status.js';

/** Anything a forced stop can abort: a served call's {@link CallAbort}. */
export interface Abortable {
  abort(reason: Error): void;
}

/** Tracks the calls in flight so the server can abort them on a forced stop, and end its session streams on any stop. */
export class CallTracker {
  private readonly calls = new Set<Abortable>();
  private readonly sessions = new Set<(error: Error) => void>();

  /** Registers an open session stream's way to end; returns its removal. */
  addSession(end: (error: Error) => void): () => void {
    this.sessions.add(end);
    return () => this.sessions.delete(end);
  }

  /** Open session streams (diagnostics). */
  get openSessions(): number {
    return this.sessions.size;
  }

  /** Ends every open session stream with `error`: they never end by themselves, and a graceful stop would wait on them. */
  endSessions(error: Error): void {
    for (const end of [...this.sessions]) end(error);
  }

  add(c: Abortable): void {
    this.calls.add(c);
  }

  delete(c: Abortable): void {
    this.calls.delete(c);
  }

  get size(): number {
    return this.calls.size;
  }

  abortAll(reason: string): void {
    for (const c of this.calls) c.abort(new Error(reason));
  }
}

/** What the adapter serves calls with: one set per server. */
export interface AdapterDeps {
  readonly log: Logger;
  readonly tracker: CallTracker;
  /** With it, every caller's identity is checked against the CA it chains to ({@link TransportTrust.checkClient}). */
  readonly trust?: Pick<TransportTrust, 'checkClient'>;
  /** Open server streams per caller; unbounded without it. */
  readonly streams?: StreamQuota;
  /** Call counts and latencies, when the server exports metrics. */
  readonly metrics?: ServiceMetrics;
  /** The audit log: calls that may change state are recorded, allowed or refused. */
  readonly audit?: CallAudit;
}

/** The deps a call is served with: a stream quota, and the logger of the per-call lines. */
export type ResolvedDeps = AdapterDeps & { readonly streams: StreamQuota; readonly rpcLog: Logger };

/** Any server call object of grpc-js. */
export type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

function deadlineOf(call: AnyCall): number {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) ? ms : Infinity;
}

/**
 * Starts tracking a call: cancellation, its deadline and a forced stop abort `controller.signal`
 * (made when first read, see {@link CallAbort}); `done` ends the tracking.
 */
export function startCall(call: AnyCall, tracker: CallTracker): { controller: CallAbort; done: () => void } {
  // Every kind of server call has `cancelled` and emits it; the union of their overloads does not type-check as one.
  const controller = new CallAbort(call as ServerUnaryCall<unknown, unknown>, deadlineOf(call));
  tracker.add(controller);
  return {
    controller,
    done: () => {
      controller.done();
      tracker.delete(controller);
    },
  };
}

/** The context handed to a handler: fixed fields, and the signal and the call's logger made only if it asks. */
class ServedCallContext implements CallContext {
  private callLog: Logger | undefined;

  constructor(
    readonly method: string,
    readonly peer: CertIdentity,
    readonly chain: readonly string[],
    readonly metadata: Metadata,
    readonly deadline: number,
    private readonly abort: CallAbort,
    private readonly baseLog: Logger,
  ) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  // A pino child costs more than a small call's handler: made when a handler first logs.
  get log(): Logger {
    return (this.callLog ??= this.baseLog.child({ method: this.method, caller: this.peer.urn }));
  }
}

/**
 * The handler's context: the caller's identity from the connection (checked against `trust`), its
 * chain, deadline and signal. Synchronous once the connection's identity is known (every call after a
 * connection's first), so a call does not wait a turn for it.
 */
export function buildContext(
  call: AnyCall,
  method: string,
  abort: CallAbort,
  log: Logger,
  trust: Pick<TransportTrust, 'checkClient'> | undefined,
): CallContext | Promise<CallContext> {
  const make = (peer: CertIdentity): CallContext =>
    new ServedCallContext(method, peer, readCredentialChain(call.metadata), call.metadata, deadlineOf(call), abort, log);
  const known = knownPeerIdentity(call, trust);
  return known ? make(known) : peerIdentity(call, trust).then(make);
}

/**
 * The metrics of a finished call and its log line: at info for a stream (one line however many messages it
 * carried; pass `messages`) and for a failed call, at debug for a unary call that succeeded.
 */
export function finishCall(
  deps: ResolvedDeps,
  method: string,
  caller: string | undefined,
  code: Status,
  started: number,
  rule: string | undefined,
  abort: CallAbort,
  messages?: number,
): void {
  const ms = performance.now() - started;
  const name = Status[code] ?? String(code);
  // finish() logs its own failures: the answer has gone already, so a failed append must not fail the call.
  if (caller !== undefined && deps.audit?.audits(method)) void deps.audit.finish(abort.signal, name, rule);
  // A unary call that succeeded is counted in the metrics (and recorded by the audit log if it may
  // change state); its line is for debugging. Every failed call, and every stream, is logged.
  const quiet = messages === undefined && code === Status.OK;
  if (!quiet || deps.rpcLog.isLevelEnabled('debug')) {
    const line = { method, caller, code: name, ms: Math.round(ms * 10) / 10 };
    if (messages !== undefined) deps.rpcLog.info({ ...line, messages }, 'rpc');
    else if (quiet) deps.rpcLog.debug(line, 'rpc');
    else deps.rpcLog.info(line, 'rpc');
  }
  deps.metrics?.observeCall(method, name, ms / 1000, rule);
}

/** How a call that threw ends: its status (through the one mapping, {@link toGrpcStatus}), and the code and rule its log line and metrics record. */
export function failure(
  err: unknown,
  deps: ResolvedDeps,
  method: string,
): { readonly status: StatusObject; readonly code: Status; readonly rule: string | undefined } {
  const status = toGrpcStatus(err, deps.log, method);
  return { status, code: status.code, rule: ruleOf(status) };
}

/** The `fedlab-rule` trailer of a status, if it has one. */
export function ruleOf(st: StatusObject): string | undefined {
  const rule = st.metadata?.get('fedlab-rule')[0];
  return rule === undefined ? undefined : String(rule);
}
