/** Checks of request fields of the service provider's own (the shared ones are services/core/validate.ts); every error names its field. */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.js';
import { isValidName } from '../core/identity/urn.js';

/** A name (`[a-z0-9][a-z0-9._-]{0,62}`). */
export function nameField(field: string, value: string): string {
  if (typeof value !== 'string' || !isValidName(value))
    throw new InvalidArgumentError(`${field} must match [a-z0-9][a-z0-9._-]{0,62}`, { field });
  return value;
}

/** A fresh request id for calls the provider makes on its own account. */
export function internalRequestId(prefix: string): string {
  return `${prefix}.${randomBytes(9).toString('base64url')}`;
}
