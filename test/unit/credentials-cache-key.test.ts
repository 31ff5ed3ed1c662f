// The prefix cache finds candidates by a short key (the end of a link's signature) and confirms a hit
// text for text: new copies of the same links hit; a forged link that reuses a cached signature, or a
// cached leaf presented under other ancestors, is no hit and fails exactly as it would uncached.
import { describe, expect, it } from 'vitest';
import { ChainCache, newJti } from '../../services/core/credentials/index.js';
import { cast, expectRule, forgeChain, forgeLink, standardSpecs, verifyAs } from './credentials-fixtures.js';

/** The same text in a new string object (as links arrive from gRPC metadata). */
const copy = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');

/** `token` with its payload replaced by `payload`'s, keeping its own header and signature. */
function graft(token: string, payload: string): string {
  const [h, , sig] = token.split('.');
  return `${h}.${payload.split('.')[1]}.${sig}`;
}

describe('the prefix cache key', () => {
  it('hits for new copies of the same links, and the grant is the cached one', () => {
    const c = cast();
    const cache = new ChainCache();
    const chain = forgeChain(standardSpecs(c));
    const first = verifyAs(c, chain, { cache });
    for (let i = 0; i < 3; i++) expect(verifyAs(c, chain.map(copy), { cache })).toBe(first);
    expect(cache.stats.hits).toBe(3);
  });

  it('a link carrying a cached signature over another payload is a miss and fails its signature', () => {
    const c = cast();
    const cache = new ChainCache();
    const specs = standardSpecs(c);
    const chain = forgeChain(specs);
    verifyAs(c, chain, { cache });
    // Same header and signature as the cached leaf, the payload of a sibling link of the same length
    // (another jti), so the forged link has the cached leaf's cache key.
    const sibling = forgeLink({ ...specs[2]!, claims: { jti: newJti() } }, 2, chain[1]);
    const forged = [chain[0]!, chain[1]!, graft(chain[2]!, sibling)];
    expect(forged[2]!.length).toBe(chain[2]!.length);
    expect(forged[2]).not.toBe(chain[2]);
    const hits = cache.stats.hits;
    expectRule(() => verifyAs(c, forged, { cache }), 2, 'signature');
    expect(cache.stats.hits).toBe(hits);
  });

  it('a cached leaf under other ancestors is not a hit for the whole chain', () => {
    const c = cast();
    const cache = new ChainCache();
    const specs = standardSpecs(c);
    const chain = forgeChain(specs);
    verifyAs(c, chain, { cache });
    const other = forgeChain(specs);
    // Another root and middle link (new jtis), then the leaf of the first chain: its prf names the first chain's link 1.
    const mixed = [other[0]!, other[1]!, chain[2]!];
    const hits = cache.stats.hits;
    expectRule(() => verifyAs(c, mixed, { cache }), 2, 'prf');
    expect(cache.stats.hits).toBe(hits);
  });
});
