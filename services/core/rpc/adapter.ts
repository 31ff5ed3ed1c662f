/**
 * One adapter between grpc-js and Fedlab handlers. Handlers are plain async
 * functions `(request, context) => response`, async generators for
 * server-streaming calls, or session handlers for bidi streams that answer each
 * message with one message (session-stream.ts); the adapter builds the
 * {@link CallContext}, maps every thrown error through `toGrpcStatus` (status.ts),
 * and logs one line per stream and per failed call (successful unary calls at debug).
 */
import { performance } from 'node:perf_hooks';
import {
  status as Status,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { StreamQuota, type ServerLimits } from './server-limits.js';
import { buildContext, failure, finishCall, startCall, type AdapterDeps, type ResolvedDeps } from './call-lifecycle.js';
import { admit, RefusedRequest } from './refused-request.js';
import { serveSession, sessionLimits, type SessionHandler } from './session-stream.js';
import type { CallContext } from './context.js';

export { CallTracker, type AdapterDeps } from './call-lifecycle.js';
export { admit } from './refused-request.js';
export type { Session, SessionHandler, SessionLimits } from './session-stream.js';

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
  [K in keyof D]: D[K] extends { requestStream: true; responseStream: true }
    ? SessionHandler<RequestOf<D[K]>, ResponseOf<D[K]>>
    : D[K] extends { responseStream: true }
      ? StreamHandler<RequestOf<D[K]>, ResponseOf<D[K]>>
      : UnaryHandler<RequestOf<D[K]>, ResponseOf<D[K]>>;
};

/** A service ready to be added to a server: its definition and Fedlab handlers. */
export interface ServiceRegistration {
  /** Fully-qualified service name, e.g. `fedlab.v1.Federation` (used for health status). */
  readonly name: string;
  readonly definition: Record<string, MethodDefinitionLike>;
  /** A function per unary or server-streaming method; a {@link SessionHandler} per bidi method. */
  readonly handlers: Record<string, ((request: never, context: CallContext) => unknown) | SessionHandler<never, unknown>>;
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

type AnyHandler = ServiceRegistration['handlers'][string];

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
    const handler: AnyHandler | undefined = reg.handlers[key];
    if (!handler) throw new TypeError(`no handler for ${def.path}`);
    if (def.requestStream) {
      if (!def.responseStream || typeof handler === 'function')
        throw new TypeError(`${def.path}: only bidi streams served by a session handler are supported for client streams`);
      const session = handler as SessionHandler<unknown, unknown>;
      const limits = sessionLimits(session.limits);
      // Per method: a caller's sessions of one method are bounded apart from its other streams.
      const perMethod = new StreamQuota(limits.maxPerCaller);
      impl[key] = (call: ServerDuplexStream<unknown, unknown>) => {
        void serveSession(call, def.path, session, limits, perMethod, resolved);
      };
      continue;
    }
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
    const built = buildContext(call, method, controller, deps.log, deps.trust);
    const ctx = built instanceof Promise ? await built : built;
    caller = ctx.peer.urn;
    deps.audit?.begin(ctx, call.request);
    admit(call.request);
    const response = await handler(call.request, ctx);
    callback(null, response);
  } catch (err) {
    const f = failure(err, deps, method);
    ({ code, rule } = f);
    callback(f.status);
  } finally {
    done();
    finishCall(deps, method, caller, code, started, rule, controller);
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
  let messages = 0;
  try {
    const ctx = await buildContext(call, method, controller, deps.log, deps.trust);
    caller = ctx.peer.urn;
    deps.audit?.begin(ctx, call.request);
    admit(call.request);
    release = deps.streams.acquire(caller, method);
    for await (const message of handler(call.request, ctx)) {
      if (controller.aborted) break;
      messages++;
      // Respect backpressure: a slow reader must not make us buffer without bound.
      if (!call.write(message)) await drainOrAbort(call, controller.signal);
    }
    if (controller.aborted && call.cancelled) code = Status.CANCELLED;
    else call.end();
  } catch (err) {
    const f = failure(err, deps, method);
    ({ code, rule } = f);
    call.emit('error', f.status);
  } finally {
    release?.();
    done();
    finishCall(deps, method, caller, code, started, rule, controller, messages);
  }
}

/** Re-export for server wiring. */
export type { ServiceDefinition };
