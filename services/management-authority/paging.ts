/**
 * Paging of List calls: `page_size` (0: 100, at most 1000) and an opaque
 * `page_token` holding the last key of the previous page. Lists are kept
 * sorted, so a page is a binary search and a slice: O(page), not O(list).
 */
import { InvalidArgumentError } from '../core/errors.js';

/** Encodes the key a page ended at. */
export function encodeToken(kind: string, lastKey: string): string {
  return Buffer.from(`${kind}\n${lastKey}`).toString('base64url');
}

/** Decodes a page token of `kind`; empty gives ''. */
export function decodeToken(kind: string, token: string): string {
  if (!token) return '';
  const text = Buffer.from(token, 'base64url').toString();
  const nl = text.indexOf('\n');
  if (nl < 0 || text.slice(0, nl) !== kind) {
    throw new InvalidArgumentError('page_token is not one this server gave out for this list; start again with an empty token', { field: 'page_token' });
  }
  return text.slice(nl + 1);
}

/** Index of the first element of sorted `keys` greater than `after` ('' gives 0). */
export function firstAfter(keys: readonly string[], after: string): number {
  if (after === '') return 0;
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts `key` into sorted `keys` (no duplicates). */
export function insertSorted(keys: string[], key: string): void {
  const i = firstAfter(keys, key);
  if (i > 0 && keys[i - 1] === key) return;
  keys.splice(i, 0, key);
}
