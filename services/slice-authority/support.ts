/**
 * Small pieces the slice authority's domain classes share: request field
 * checks that name their field, and the mapping of a failed outgoing call to a
 * per-site `ResultStatus`.
 */
import { status as Status } from '@grpc/grpc-js';
import { InvalidArgumentError, isFedlabError, type ErrorKind } from '../core/errors.js';
import { parseUrn, type Urn, type UrnKind } from '../core/identity/urn.js';
import { isServiceError } from '../core/rpc/client.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** A client-chosen idempotency key. */
export function requestId(value: string, field = 'request_id'): string {
  if (typeof value !== 'string' || !REQUEST_ID.test(value)) throw new InvalidArgumentError(`${field} must be 1 to 128 characters of [A-Za-z0-9._-]`, { field });
  return value;
}

/** A URN field of a given kind. */
export function urnField(field: string, value: string, kind: UrnKind): Urn {
  if (typeof value !== 'string' || value === '') throw new InvalidArgumentError(`${field} is required: a URN urn:fedlab:<domain>:${kind}:<name>`, { field });
  let urn: Urn;
  try {
    urn = parseUrn(value);
  } catch (err) {
    throw new InvalidArgumentError(`${field}: ${(err as Error).message}`, { field });
  }
  if (urn.kind !== kind) throw new InvalidArgumentError(`${field} must name a ${kind}, not a ${urn.kind}`, { field });
  return urn;
}

/** Free text of bounded length without control characters. */
export function text(field: string, value: string, max: number): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field} must be text`, { field });
  if (value.length > max) throw new InvalidArgumentError(`${field} is at most ${max} characters`, { field });
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value)) throw new InvalidArgumentError(`${field} must not contain control characters`, { field });
  return value;
}

/** Page size of a List call: 0 → 100, at most 1000. */
export function pageSize(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('page_size must be 0 or more', { field: 'page_size' });
  return Math.min(n || 100, 1000);
}

/** A per-part outcome. */
export interface Outcome {
  readonly code: number;
  readonly reason: string;
}

/** Success. */
export const OK: Outcome = Object.freeze({ code: 0, reason: '' });

const KIND_CODE: Record<ErrorKind, number> = {
  invalid_argument: Status.INVALID_ARGUMENT,
  unauthenticated: Status.UNAUTHENTICATED,
  permission_denied: Status.PERMISSION_DENIED,
  not_found: Status.NOT_FOUND,
  already_exists: Status.ALREADY_EXISTS,
  failed_precondition: Status.FAILED_PRECONDITION,
  resource_exhausted: Status.RESOURCE_EXHAUSTED,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  unavailable: Status.UNAVAILABLE,
  aborted: Status.ABORTED,
};

/** The outcome of a failed call to a site, its reason prefixed with `where`. */
export function outcomeOf(err: unknown, where: string): Outcome {
  if (isServiceError(err)) {
    const code = err.code;
    let why = err.details || err.message;
    // The transport's own UNAVAILABLE (no connection) says the site is down; one the site sent says something else.
    if (code === Status.UNAVAILABLE && /No connection established|ECONNREFUSED|ECONNRESET|Connection dropped|ENOTFOUND|EHOSTUNREACH|Failed to connect|handshake/i.test(why)) {
      why = `unreachable (${why}); the site may be down — try again later or leave it out`;
    }
    if (code === Status.DEADLINE_EXCEEDED) why = `did not answer within the deadline (${why}); the site may be down or overloaded`;
    return { code, reason: `${where}: ${why}` };
  }
  if (isFedlabError(err)) return { code: KIND_CODE[err.kind], reason: `${where}: ${err.message}` };
  return { code: Status.INTERNAL, reason: `${where}: ${(err as Error)?.message ?? String(err)}` };
}

/** Codes with which an Allocate certainly held nothing (the aggregate refused before admitting anything). */
export const REFUSED_CODES: ReadonlySet<number> = new Set([
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.ALREADY_EXISTS,
  Status.PERMISSION_DENIED,
  Status.RESOURCE_EXHAUSTED,
  Status.FAILED_PRECONDITION,
  Status.UNAUTHENTICATED,
]);
