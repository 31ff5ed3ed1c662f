/** Checks of request fields shared by the service provider's calls; every error names its field. */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.js';
import { isValidName, parseUrn, type Urn, type UrnKind } from '../core/identity/urn.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** A client-chosen idempotency key. */
export function requestId(value: string, field = 'request_id'): string {
  if (typeof value !== 'string' || !REQUEST_ID.test(value)) {
    throw new InvalidArgumentError(`${field} must be 1 to 128 characters of [A-Za-z0-9._-]`, { field });
  }
  return value;
}

/** A name (`[a-z0-9][a-z0-9._-]{0,62}`). */
export function nameField(field: string, value: string): string {
  if (typeof value !== 'string' || !isValidName(value)) throw new InvalidArgumentError(`${field} must match [a-z0-9][a-z0-9._-]{0,62}`, { field });
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

/** A short description of a gRPC (or other) error for records and messages: code name and details. */
export function describeError(err: unknown): { code: number; reason: string } {
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e?.code === 'number' && typeof e.details === 'string') return { code: e.code, reason: e.details };
  return { code: 2, reason: typeof e?.message === 'string' ? e.message : String(err) };
}

/** A fresh request id for calls the provider makes on its own account. */
export function internalRequestId(prefix: string): string {
  return `${prefix}.${randomBytes(9).toString('base64url')}`;
}
