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
import { peerIdentity, readCredentialChain, type CallContext } from './context.js';
import type { TransportTrust } from './trust.js';
import type { StreamQuota } from './server-limits.js';

/** Tracks the calls in flight so the server can abort them on a forced stop, and end its session streams on any stop. */
export class CallTracker {
  private readonly controllers = new Set<AbortController>();
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

  add(c: AbortController): void {
    this.controllers.add(c);
  }

  delete(c: AbortController): void {
    this.controllers.delete(c);
  }

  get size(): number {
    return this.controllers.size;
  }

  abortAll(reason: string): void {
    for (const c of this.controllers) c.abort(new Error(reason));
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

/** Sets up the context's abort signal: cancellation, deadline and forced stop all abort it. */
export function startCall(call: AnyCall, tracker: CallTracker): { controller: AbortController; done: () => void } {
  const controller = new AbortController();
  tracker.add(controller);
  const onCancel = (): void => controller.abort(new Error('cancelled by the client'));
  // Every kind of server call emits 'cancelled'; the union of their overloads does not type-check as one.
  const events = call as ServerUnaryCall<unknown, unknown>;
  events.on('cancelled', onCancel);
  const deadline = deadlineOf(call);
  const timer = Number.isFinite(deadline)
    ? setTimeout(() => controller.abort(new Error('deadline exceeded')), Math.max(0, deadline - Date.now()))
    : undefined;
  timer?.unref();
  return {
    controller,
    done: () => {
      if (timer) clearTimeout(timer);
      events.off('cancelled', onCancel);
      tracker.delete(controller);
    },
  };
}

/** The handler's context: the caller's identity from the connection (checked against `trust`), its chain, deadline and signal. */
export async function buildContext(
  call: AnyCall,
  method: string,
  signal: AbortSignal,
  log: Logger,
  trust: Pick<TransportTrust, 'checkClient'> | undefined,
): Promise<CallContext> {
  const peer = await peerIdentity(call, trust);
  const chain = readCredentialChain(call.metadata);
  // The call's logger is made when a handler first logs: a pino child costs more than a small call's handler.
  let callLog: Logger | undefined;
  return {
    method,
    peer,
    chain,
    metadata: call.metadata,
    deadline: deadlineOf(call),
    signal,
    get log(): Logger {
      return (callLog ??= log.child({ method, caller: peer.urn }));
    },
  };
}

/** One log line and the metrics of a finished call (a stream is one call, however many messages it carried). */
export function finishCall(
  deps: ResolvedDeps,
  method: string,
  caller: string | undefined,
  code: Status,
  started: number,
  rule: string | undefined,
  signal: AbortSignal,
  messages?: number,
): void {
  const ms = performance.now() - started;
  const name = Status[code] ?? String(code);
  // finish() logs its own failures: the answer has gone already, so a failed append must not fail the call.
  if (caller !== undefined && deps.audit?.audits(method)) void deps.audit.finish(signal, name, rule);
  const line = { method, caller, code: name, ms: Math.round(ms * 10) / 10 };
  deps.rpcLog.info(messages === undefined ? line : { ...line, messages }, 'rpc');
  deps.metrics?.observeCall(method, name, ms / 1000, rule);
}

/** The `fedlab-rule` trailer of a status, if it has one. */
export function ruleOf(st: StatusObject): string | undefined {
  const rule = st.metadata?.get('fedlab-rule')[0];
  return rule === undefined ? undefined : String(rule);
}
