// One page-token format for every list: opaque, tied to its list, O(page) slicing of a sorted index.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePageToken, encodePageToken, firstAfter, insertSorted, pageOf, removeSorted } from '../../services/core/paging.js';

describe('paging', () => {
  it('round-trips a key and refuses a token of another list or a made-up one', () => {
    expect(decodePageToken('nodes', encodePageToken('nodes', 'urn:fedlab:a:node:n\n1'))).toBe('urn:fedlab:a:node:n\n1');
    expect(decodePageToken('nodes', '')).toBe('');
    for (const bad of [encodePageToken('slices', 'x'), 'nope', Buffer.from('nodes').toString('base64url')]) {
      expect(() => decodePageToken('nodes', bad)).toThrow(/page_token is not one this server gave out/);
    }
  });

  it('keeps an index sorted and pages through every key exactly once', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 7 }),
        (keys, size) => {
          const index: string[] = [];
          for (const k of keys) insertSorted(index, k);
          insertSorted(index, keys[0] ?? 'a');
          expect(index).toEqual([...new Set([...keys, keys[0] ?? 'a'])].sort());
          const seen: string[] = [];
          let token = '';
          do {
            const page = pageOf('t', index, token, size);
            expect(page.keys.length).toBeLessThanOrEqual(size);
            seen.push(...page.keys);
            token = page.nextPageToken;
          } while (token);
          expect(seen).toEqual(index);
          for (const k of keys) removeSorted(index, k);
          expect(index.filter((k) => keys.includes(k))).toEqual([]);
        },
      ),
    );
    expect(firstAfter(['a', 'b', 'c'], 'b')).toBe(2);
  });
});
