/**
 * How the service provider reads a failed call for its records and events:
 * `describeError` gives the status code and the server's own words (or the
 * error's message, as UNKNOWN, for anything that is not a gRPC error).
 */
import { status as Status } from '@grpc/grpc-js';

/** A short description of a gRPC (or other) error for records and messages: code and details. */
export function describeError(err: unknown): { code: number; reason: string } {
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e?.code === 'number' && typeof e.details === 'string') return { code: e.code, reason: e.details };
  return { code: Status.UNKNOWN, reason: typeof e?.message === 'string' ? e.message : String(err) };
}

/**
 * An error that reads as a gRPC error with `code` and `details` (what {@link describeError} reports),
 * for failures the provider finds itself on the way to a call.
 */
export function callError(message: string, code: Status, details: string): Error & { code: Status; details: string } {
  return Object.assign(new Error(message), { code, details });
}
