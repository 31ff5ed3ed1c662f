/**
 * The one place where errors become gRPC statuses. Domain errors map by kind;
 * anything else is logged with its stack and reaches the client as INTERNAL
 * with no internal detail.
 */
import { status as Status, type StatusObject, Metadata } from '@grpc/grpc-js';
import { FedlabError, type ErrorKind } from '../errors.js';
import type { Logger } from '../log.js';

const CODE_BY_KIND: Record<ErrorKind, Status> = {
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

/** The message an unexpected error gets on the wire. */
export const INTERNAL_MESSAGE = 'internal error; the server logged the details (quote the time of the call when reporting it)';

/** Maps any thrown value to the status sent to the client, logging unexpected errors. */
export function toGrpcStatus(err: unknown, log: Logger, method: string): StatusObject {
  if (err instanceof FedlabError) {
    const metadata = new Metadata();
    // Structured details (link index, rule, field...) travel as trailers so clients can act on them.
    for (const [k, v] of Object.entries(err.details)) metadata.set(`fedlab-${k.replace(/[^a-z0-9-]/gi, '-').toLowerCase()}`, String(v));
    return { code: CODE_BY_KIND[err.kind], details: err.message, metadata };
  }
  log.error({ err, method }, 'unexpected error in handler');
  return { code: Status.INTERNAL, details: INTERNAL_MESSAGE, metadata: new Metadata() };
}

/** The gRPC code a domain error kind maps to. */
export function codeForKind(kind: ErrorKind): Status {
  return CODE_BY_KIND[kind];
}
