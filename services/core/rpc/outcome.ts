/**
 * The one place that interprets a failed call to another service. Roles call
 * sites, nodes and slice authorities and must turn what came back into either
 * a per-part result (one site of a slice, one node of an allocation) or a
 * typed error to rethrow at their own edge. Everything here reads status codes
 * by name; `codeForKind` (status.ts) is the forward map, `errorForCode` its
 * inverse.
 */
import { status as Status } from '@grpc/grpc-js';
import {
  AbortedError,
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  FedlabError,
  InvalidArgumentError,
  isFedlabError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from '../errors.js';
import { isServiceError } from './client.js';
import { codeForKind } from './status.js';

/** The result of one part of a larger operation: a code (OK on success) and why. */
export interface Outcome {
  readonly code: Status;
  readonly reason: string;
}

/** Success. */
export const OK: Outcome = Object.freeze({ code: Status.OK, reason: '' });

/** A part that failed: its code and why. */
export interface Failure extends Outcome {
  readonly ok: false;
}

/** The result of one part that yields a value (a call to one node, one sliver's admission). */
export type Result<T = undefined> = { readonly ok: true; readonly value: T } | Failure;

/** A failed part. */
export function failure(code: Status, reason: string): Failure {
  return { ok: false, code, reason };
}

/** A successful part with its value. */
export function success<T>(value: T): Result<T> {
  return { ok: true, value };
}

/** A successful part without a value. */
export const SUCCESS: Result = Object.freeze({ ok: true, value: undefined });

/** Who was called, as messages name it, and what the caller can do when it is down. */
export interface Callee {
  /** E.g. `site plc.test` or `node urn:… (host:port)`; prefixes every reason. */
  readonly name: string;
  /** Appended when the callee is unreachable or slow, e.g. `try again later or leave it out`. */
  readonly advice: string;
  /** The deadline the call had, named in the message when it passed. */
  readonly deadlineMs?: number;
}

// What grpc-js and Node say when a call never reached a server: nothing was done there.
const NEVER_CONNECTED = /ECONNREFUSED|No connection established|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|Failed to connect/i;
// Broader: the connection failed or broke; the callee may or may not have acted.
const TRANSPORT_FAILURE =
  /No connection established|ECONNREFUSED|ECONNRESET|Connection dropped|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|Failed to connect|handshake/i;

/** Codes with which a call certainly changed nothing: the callee refused before acting. */
export const REFUSED_CODES: ReadonlySet<Status> = new Set([
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.ALREADY_EXISTS,
  Status.PERMISSION_DENIED,
  Status.RESOURCE_EXHAUSTED,
  Status.FAILED_PRECONDITION,
  Status.UNAUTHENTICATED,
]);

/** The text a failed call carries: the server's details, or the transport's message. */
function textOf(err: { details?: string; message?: string }): string {
  return err.details || err.message || '';
}

/** Whether the call failed in the transport (the local client's UNAVAILABLE), not by the callee's answer. */
export function isUnreachable(err: unknown): boolean {
  return isServiceError(err, Status.UNAVAILABLE) && TRANSPORT_FAILURE.test(textOf(err));
}

/**
 * Whether a failed call certainly changed nothing at the callee: it refused
 * with a code that means "before acting", or the connection was never made.
 * A deadline, a dropped connection or INTERNAL may have left work done.
 */
export function certainlyChangedNothing(err: unknown): boolean {
  if (!isServiceError(err)) return false;
  if (REFUSED_CODES.has(err.code)) return true;
  return err.code === Status.UNAVAILABLE && NEVER_CONNECTED.test(`${err.details} ${err.message}`);
}

/** The per-part outcome of a failed call to `callee`, its reason prefixed with the callee's name. */
export function outcomeOf(err: unknown, callee: Callee): Outcome {
  if (isServiceError(err)) {
    const why = textOf(err);
    if (isUnreachable(err)) return { code: err.code, reason: `${callee.name}: unreachable (${why}); ${callee.advice}` };
    if (err.code === Status.DEADLINE_EXCEEDED) {
      const within = callee.deadlineMs !== undefined ? `${callee.deadlineMs} ms` : 'the deadline';
      return { code: err.code, reason: `${callee.name}: did not answer within ${within} (${why}); ${callee.advice}` };
    }
    if (err.code === Status.CANCELLED) return { code: err.code, reason: `${callee.name}: the call was cancelled` };
    return { code: err.code, reason: `${callee.name}: ${why}` };
  }
  if (isFedlabError(err)) return { code: codeForKind(err.kind), reason: `${callee.name}: ${err.message}` };
  return { code: Status.INTERNAL, reason: `${callee.name}: ${(err as Error)?.message ?? String(err)}` };
}

/** The outcome of a failed call with no callee to name (the reason is the callee's own text). */
export function plainOutcome(err: unknown): Outcome {
  if (isServiceError(err)) return { code: err.code, reason: textOf(err) };
  if (isFedlabError(err)) return { code: codeForKind(err.kind), reason: err.message };
  return { code: Status.UNKNOWN, reason: (err as Error)?.message ?? String(err) };
}

type Details = Record<string, string | number | boolean>;

/**
 * The typed error for a gRPC code: the inverse of `codeForKind`. Codes with no
 * domain kind of their own (CANCELLED, UNKNOWN, INTERNAL, …) become UNAVAILABLE:
 * the other side failed, which for our caller is a passing condition.
 */
export function errorForCode(code: Status, message: string, details?: Details): FedlabError {
  switch (code) {
    case Status.INVALID_ARGUMENT:
      return new InvalidArgumentError(message, details);
    case Status.UNAUTHENTICATED:
      return new UnauthenticatedError(message, details);
    case Status.PERMISSION_DENIED:
      return new PermissionDeniedError(message, details);
    case Status.NOT_FOUND:
      return new NotFoundError(message, details);
    case Status.ALREADY_EXISTS:
      return new AlreadyExistsError(message, details);
    case Status.FAILED_PRECONDITION:
      return new FailedPreconditionError(message, details);
    case Status.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(message, details);
    case Status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(message, details);
    case Status.ABORTED:
      return new AbortedError(message, details);
    default:
      return new UnavailableError(message, details);
  }
}

/** A failed call to `callee` as a typed error to rethrow at the caller's own edge. */
export function errorFromCall(err: unknown, callee: Callee): FedlabError {
  if (err instanceof FedlabError) return err;
  const { code, reason } = outcomeOf(err, callee);
  const rule = isServiceError(err) ? err.metadata?.get('fedlab-rule')[0] : undefined;
  return errorForCode(code, reason, rule !== undefined ? { rule: String(rule) } : undefined);
}
