/**
 * Typed domain errors. Domain code throws these; the RPC edge maps each kind
 * to one gRPC status code (see `rpc/status.ts`) and the CLI maps them to exit
 * codes. The message is shown to the caller, so it must say what to do and
 * must never contain key material or a whole credential.
 */

/** The closed set of error kinds a Fedlab domain error can have. */
export type ErrorKind =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'deadline_exceeded'
  | 'unavailable'
  | 'aborted';

/** Base class of every error the domain throws on purpose. */
export class FedlabError extends Error {
  readonly kind: ErrorKind;
  /** Optional machine-readable details (field name, link index, rule, site...). */
  readonly details: Readonly<Record<string, string | number | boolean>>;

  constructor(kind: ErrorKind, message: string, details: Record<string, string | number | boolean> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.kind = kind;
    this.details = Object.freeze({ ...details });
  }
}

type Details = Record<string, string | number | boolean>;

/** The request itself is wrong (a malformed URN, a negative limit, an unknown field). */
export class InvalidArgumentError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('invalid_argument', message, details, options);
  }
}
/** The caller could not be authenticated (no, unreadable, badly signed or expired credential). */
export class UnauthenticatedError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('unauthenticated', message, details, options);
  }
}
/** The caller is known but not allowed to do this. */
export class PermissionDeniedError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('permission_denied', message, details, options);
  }
}
export class NotFoundError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('not_found', message, details, options);
  }
}
export class AlreadyExistsError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('already_exists', message, details, options);
  }
}
/** The system is not in a state where this can be done (e.g. the kernel lacks netem). */
export class FailedPreconditionError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('failed_precondition', message, details, options);
  }
}
/** Capacity or quota would be exceeded. */
export class ResourceExhaustedError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('resource_exhausted', message, details, options);
  }
}
export class DeadlineExceededError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('deadline_exceeded', message, details, options);
  }
}
/** A dependency (a peer site, a node) could not be reached; retrying later may work. */
export class UnavailableError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('unavailable', message, details, options);
  }
}
/** A concurrent change got in the way; the caller may retry. */
export class AbortedError extends FedlabError {
  constructor(message: string, details?: Details, options?: { cause?: unknown }) {
    super('aborted', message, details, options);
  }
}

/** True when `err` is a Fedlab domain error (of any kind). */
export function isFedlabError(err: unknown): err is FedlabError {
  return err instanceof FedlabError;
}
