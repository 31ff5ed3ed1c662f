/**
 * Checks of request fields every role shares (idempotency keys, URNs, free text, page sizes). Each
 * failure is an InvalidArgumentError that names its field, so the client learns which field to fix.
 */
import { InvalidArgumentError } from './errors.js';
import { parseUrn, type Urn, type UrnKind } from './identity/urn.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The server's default page size, and the largest page it returns. */
export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

/** A client-chosen idempotency key. */
export function requestId(value: string, field = 'request_id'): string {
  if (typeof value !== 'string' || !REQUEST_ID.test(value))
    throw new InvalidArgumentError(`${field} must be 1 to 128 characters of [A-Za-z0-9._-]`, { field });
  return value;
}

/** A URN field of a given kind (and, when given, domain). */
export function urnField(field: string, value: string, kind: UrnKind, domain?: string): Urn {
  if (typeof value !== 'string' || value === '')
    throw new InvalidArgumentError(`${field} is required: a URN urn:fedlab:<domain>:${kind}:<name>`, { field });
  let urn: Urn;
  try {
    urn = parseUrn(value);
  } catch (err) {
    throw new InvalidArgumentError(`${field}: ${(err as Error).message}`, { field });
  }
  if (urn.kind !== kind) throw new InvalidArgumentError(`${field} must name a ${kind}, not a ${urn.kind}`, { field });
  if (domain !== undefined && urn.domain !== domain) {
    throw new InvalidArgumentError(`${field} ${value} is not at this site: its domain is ${urn.domain}, this site's is ${domain}`, {
      field,
    });
  }
  return urn;
}

/** Free text of bounded length without control characters. */
export function text(field: string, value: string, max: number): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field} must be text`, { field });
  if (value.length > max) throw new InvalidArgumentError(`${field} is at most ${max} characters`, { field });
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value))
    throw new InvalidArgumentError(`${field} must not contain control characters`, { field });
  return value;
}

/** The effective page size of a List call: 0 gives {@link DEFAULT_PAGE}, at most {@link MAX_PAGE}. */
export function pageSize(requested: number): number {
  if (!Number.isSafeInteger(requested) || requested < 0)
    throw new InvalidArgumentError('page_size must be 0 or more', { field: 'page_size' });
  return Math.min(requested || DEFAULT_PAGE, MAX_PAGE);
}
