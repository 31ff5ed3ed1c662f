/**
 * Small pieces the slice authority's domain classes share: the mapping of a
 * failed outgoing call to a per-site `ResultStatus`.
 */
import { status as Status } from '@grpc/grpc-js';
import { isFedlabError } from '../core/errors.js';
import { isServiceError } from '../core/rpc/client.js';
import { codeForKind } from '../core/rpc/status.js';

/** A per-part outcome. */
export interface Outcome {
  readonly code: number;
  readonly reason: string;
}

/** Success. */
export const OK: Outcome = Object.freeze({ code: 0, reason: '' });


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
  if (isFedlabError(err)) return { code: codeForKind(err.kind), reason: `${where}: ${err.message}` };
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
