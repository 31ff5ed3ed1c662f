/**
 * Paging of every List call: `page_size` (see `validate.ts`) and an opaque
 * `page_token` that names the list it belongs to and the last key of the
 * previous page. Lists are kept sorted, so a page is a binary search and a
 * slice: O(page), not O(list). One token format for every server.
 */
import { InvalidArgumentError } from './errors.js';

/** Encodes the key a page of `list` ended at. */
export function encodePageToken(list: string, lastKey: string): string {
  return Buffer.from(`${list}\n${lastKey}`).toString('base64url');
}

/** Decodes a page token of `list`; an empty token gives '' (start of the list). */
export function decodePageToken(list: string, token: string): string {
  if (!token) return '';
  const text = Buffer.from(token, 'base64url').toString();
  const nl = text.indexOf('\n');
  if (nl < 0 || text.slice(0, nl) !== list) {
    throw new InvalidArgumentError('page_token is not one this server gave out for this list; start again with an empty token', {
      field: 'page_token',
    });
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

/** Removes `key` from sorted `keys`, if there. */
export function removeSorted(keys: string[], key: string): void {
  const i = firstAfter(keys, key) - 1;
  if (i >= 0 && keys[i] === key) keys.splice(i, 1);
}

/**
 * One page of a sorted key list: the keys after the token's, at most `size`,
 * and the token of the next page ('' at the end).
 */
export function pageOf(
  list: string,
  keys: readonly string[],
  token: string,
  size: number,
): { keys: readonly string[]; nextPageToken: string } {
  const start = firstAfter(keys, decodePageToken(list, token));
  const page = keys.slice(start, start + size);
  const more = start + size < keys.length && page.length > 0;
  return { keys: page, nextPageToken: more ? encodePageToken(list, page[page.length - 1] as string) : '' };
}
