/** Checks of request fields of the service provider's own (the shared ones are services/core/validate.ts); every error names its field. */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.js';
import { isValidName } from '../core/identity/urn.js';

/** A name (`[a-z0-9][a-z0-9._-]{0,62}`). */
export function nameField(field: string, value: string): string {
  if (typeof value !== 'string' || !isValidName(value)) throw new InvalidArgumentError(`${field} must match [a-z0-9][a-z0-9._-]{0,62}`, { field });
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
