/**
 * One adapter between grpc-js and Fedlab handlers. Handlers are plain async
 * functions `(request, context) => response` (or async generators for
 * server-streaming calls); the adapter builds the {@link CallContext}, maps
 * every thrown error through {@link toGrpcStatus}, and logs one line per call.
 */
import { performance } from 'node:perf_hooks';
import {
  status as Status,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
  type ServiceDefinition,
  type StatusObject,
} from '@grpc/grpc-js';
import { InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import type { CallAudit } from '../audit/call-audit.js';
import type { ServiceMetrics } from '../metrics/service-metrics.js';
import type { Logger } from '../log.js';
import { peerIdentity, readCredentialChain, type CallContext } from './context.js';
import { toGrpcStatus } from './status.js';
import type { TransportTrust } from './trust.js';
import { StreamQuota, type ServerLimits } from './server-limits.js';

/** The shape of one method in a generated service definition. */
export interface MethodDefinitionLike {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: never): Buffer;
}

type RequestOf<M> = M extends { requestDeserialize(bytes: Buffer): infer R } ? R : never;
type ResponseOf<M> = M extends { responseSerialize(value: infer R): Buffer } ? R : never;

/** A unary handler. */
export type UnaryHandler<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;
/** A server-streaming handler: yields responses; returning ends the stream with OK. */
export type StreamHandler<Req, Res> = (request: Req, context: CallContext) => AsyncIterable<Res>;

/** Handlers for every method of a generated service definition `D`. */
export type ServiceHandlers<D> = {
  [K in keyof D]: D[K] extends { responseStream: true }
    ? StreamHandler<RequestOf<D[K]>, ResponseOf<D[K]>>
    : UnaryHandler<RequestOf<D[K]>, ResponseOf<D[K]>>;
};

/** A service ready to be added to a server: its definition and Fedlab handlers. */
export interface ServiceRegistration {
  /** Fully-qualified service name, e.g. `fedlab.v1.Federation` (used for health status). */
  readonly name: string;
  readonly definition: Record<string, MethodDefinitionLike>;
  readonly handlers: Record<string, (request: never, context: CallContext) => unknown>;
}

/** Pairs a generated service definition with its handlers, type-checked against each other. */
export function defineService<D extends Record<string, MethodDefinitionLike>>(
  definition: D,
  handlers: ServiceHandlers<D>,
): ServiceRegistration {
  const first = Object.values(definition)[0];
  if (!first) throw new TypeError('a service definition needs at least one method');
  const name = first.path.split('/')[1] ?? '';
  return { name, definition, handlers: handlers as unknown as ServiceRegistration['handlers'] };
}

/** A request the transport could not hand to the handler, and why (decoded lazily into an error). */
class RefusedRequest {
  constructor(readonly error: Error) {}
}

/**
 * The definition grpc-js serves: each method's deserializer never throws (grpc-js would answer
 * INTERNAL), it returns a {@link RefusedRequest} the adapter answers INVALID_ARGUMENT — or
 * RESOURCE_EXHAUSTED for a request over the method's size limit.
 */
export function boundedDefinition(
  definition: Record<string, MethodDefinitionLike>,
  limits: ServerLimits,
): Record<string, MethodDefinitionLike> {
  const out: Record<string, MethodDefinitionLike> = {};
  for (const [key, def] of Object.entries(definition)) {
    const max = limits.methodReceiveBytes[def.path] ?? limits.maxReceiveBytes;
    const messageName = def.path.split('/')[2] ?? def.path;
    out[key] = {
      ...def,
      requestDeserialize: (bytes: Buffer): unknown => {
        if (bytes.length > max) {
          return new RefusedRequest(
            new ResourceExhaustedError(
              `the request is ${bytes.length} bytes, more than the ${max} bytes ${def.path} accepts; send less per call`,
              { limit: 'max_receive_bytes' },
            ),
          );
        }
        try {
          return def.requestDeserialize(bytes);
        } catch {
          return new RefusedRequest(
            new InvalidArgumentError(
              `the request bytes are not a valid ${messageName} request message; send the message the API defines (see docs/api.md)`,
            ),
          );
        }
      },
    };
  }
  return out;
}

/** Waits until the stream drains or the call ends, leaving no listener behind on either. */
function drainOrAbort(call: ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Throws the refusal the bounded deserializer left in place of a request that could not be decoded. */
export function admit(request: unknown): void {
  if (request instanceof RefusedRequest) throw request.error;
}

/** Tracks the calls in flight so the server can abort them on a forced stop. */
export class CallTracker {
  private readonly controllers = new Set<AbortController>();

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

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

function deadlineOf(call: AnyCall): number {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) ? ms : Infinity;
}

/** Sets up the context's abort signal: cancellation, deadline and forced stop all abort it. */
function startCall(call: AnyCall, tracker: CallTracker): { controller: AbortController; done: () => void } {
  const controller = new AbortController();
  tracker.add(controller);
  const onCancel = (): void => controller.abort(new Error('cancelled by the client'));
  call.on('cancelled', onCancel);
  const deadline = deadlineOf(call);
  const timer = Number.isFinite(deadline)
    ? setTimeout(() => controller.abort(new Error('deadline exceeded')), Math.max(0, deadline - Date.now()))
    : undefined;
  timer?.unref();
  return {
    controller,
    done: () => {
      if (timer) clearTimeout(timer);
      call.off('cancelled', onCancel);
      tracker.delete(controller);
    },
  };
}

async function buildContext(call: AnyCall, method: string, signal: AbortSignal, log: Logger, trust: PeerCheck): Promise<CallContext> {
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

type PeerCheck = Pick<TransportTrust, 'checkClient'> | undefined;

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
type ResolvedDeps = AdapterDeps & { readonly streams: StreamQuota; readonly rpcLog: Logger };

/** Turns a registration into a grpc-js implementation object. */
export function toGrpcImplementation(reg: ServiceRegistration, deps: AdapterDeps): UntypedServiceImplementation {
  const resolved: ResolvedDeps = {
    ...deps,
    streams: deps.streams ?? new StreamQuota(Infinity),
    // The per-call line holds only what the adapter puts in it (method, caller URN, code, ms), never a
    // credential, so it skips the redaction pass, which costs as much again as writing the line.
    rpcLog: deps.log.child({}, { redact: { paths: [] } }),
  };
  const impl: UntypedServiceImplementation = {};
  for (const [key, def] of Object.entries(reg.definition)) {
    const handler = reg.handlers[key];
    if (!handler) throw new TypeError(`no handler for ${def.path}`);
    if (def.requestStream) throw new TypeError(`${def.path}: client-streaming methods are not supported by the adapter`);
    impl[key] = def.responseStream
      ? (call: ServerWritableStream<unknown, unknown>) => {
          void serveStream(call, def.path, handler as unknown as StreamHandler<unknown, unknown>, resolved);
        }
      : (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
          void serveUnary(call, callback, def.path, handler as unknown as UnaryHandler<unknown, unknown>, resolved);
        };
  }
  return impl;
}

/** One log line and the metrics of a finished call. */
function finishCall(
  deps: ResolvedDeps,
  method: string,
  caller: string | undefined,
  code: Status,
  started: number,
  rule: string | undefined,
  signal: AbortSignal,
): void {
  const ms = performance.now() - started;
  const name = Status[code] ?? String(code);
  // finish() logs its own failures: the answer has gone already, so a failed append must not fail the call.
  if (caller !== undefined && deps.audit?.audits(method)) void deps.audit.finish(signal, name, rule);
  deps.rpcLog.info({ method, caller, code: name, ms: Math.round(ms * 10) / 10 }, 'rpc');
  deps.metrics?.observeCall(method, name, ms / 1000, rule);
}

function ruleOf(st: StatusObject): string | undefined {
  const rule = st.metadata?.get('fedlab-rule')[0];
  return rule === undefined ? undefined : String(rule);
}

async function serveUnary(
  call: ServerUnaryCall<unknown, unknown>,
  callback: sendUnaryData<unknown>,
  method: string,
  handler: UnaryHandler<unknown, unknown>,
  deps: ResolvedDeps,
): Promise<void> {
  const started = performance.now();
  const { controller, done } = startCall(call, deps.tracker);
  let caller: string | undefined;
  let code = Status.OK;
  let rule: string | undefined;
  try {
    const ctx = await buildContext(call, method, controller.signal, deps.log, deps.trust);
    caller = ctx.peer.urn;
    deps.audit?.begin(ctx, call.request);
    admit(call.request);
    const response = await handler(call.request, ctx);
    callback(null, response);
  } catch (err) {
    const st = toGrpcStatus(err, deps.log, method);
    code = st.code;
    rule = ruleOf(st);
    callback(st);
  } finally {
    done();
    finishCall(deps, method, caller, code, started, rule, controller.signal);
  }
}

async function serveStream(
  call: ServerWritableStream<unknown, unknown>,
  method: string,
  handler: StreamHandler<unknown, unknown>,
  deps: ResolvedDeps,
): Promise<void> {
  const started = performance.now();
  const { controller, done } = startCall(call, deps.tracker);
  let caller: string | undefined;
  let code = Status.OK;
  let rule: string | undefined;
  let release: (() => void) | undefined;
  try {
    const ctx = await buildContext(call, method, controller.signal, deps.log, deps.trust);
    caller = ctx.peer.urn;
    deps.audit?.begin(ctx, call.request);
    admit(call.request);
    release = deps.streams.acquire(caller, method);
    for await (const message of handler(call.request, ctx)) {
      if (controller.signal.aborted) break;
      // Respect backpressure: a slow reader must not make us buffer without bound.
      if (!call.write(message)) await drainOrAbort(call, controller.signal);
    }
    if (controller.signal.aborted && call.cancelled) code = Status.CANCELLED;
    else call.end();
  } catch (err) {
    const st = toGrpcStatus(err, deps.log, method);
    code = st.code;
    rule = ruleOf(st);
    call.emit('error', st);
  } finally {
    release?.();
    done();
    finishCall(deps, method, caller, code, started, rule, controller.signal);
  }
}

/** Re-export for server wiring. */
export type { ServiceDefinition };
