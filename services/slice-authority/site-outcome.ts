/**
 * What a call to a site came to, as the slice authority records it per site:
 * the `Outcome` type, `outcomeOf` (a failed call to a site as a per-site
 * status with a reason a person can act on) and `nothingHeld` (whether a
 * failed Allocate certainly left nothing at the site).
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
export const OK: Outcome = Object.freeze({ code: Status.OK, reason: '' });

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

/** Whether a failed Allocate certainly left nothing held (refused by the aggregate, or never connected). */
export function nothingHeld(err: unknown): boolean {
  if (!isServiceError(err)) return false;
  if (REFUSED_CODES.has(err.code)) return true;
  return err.code === Status.UNAVAILABLE && /ECONNREFUSED|No connection established|ENOTFOUND|EHOSTUNREACH/.test(`${err.details} ${err.message}`);
}
