// The public-key cache of the verifier: keys are found by their exact bytes, never by a kid a token
// claims; a different key that claims the same kid gets its own KeyObject; the cache stays bounded,
// and a key used since eviction last passed survives one pass. Also the scratch buffer's base64url
// reader, which the uncached path decodes payloads with.
import { sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PublicKeyCache } from '../../services/core/credentials/key-cache.js';
import { keyObjectFor, thumbprintOf, type PublicJwk } from '../../services/core/credentials/keys.js';
import { transientBase64url } from '../../services/core/credentials/scratch.js';
import { principal } from './credentials-fixtures.js';

const data = Buffer.from('signing input');

function verifies(jwk: PublicJwk, signer: ReturnType<typeof principal>, cache: PublicKeyCache): boolean {
  const sig = sign('sha256', data, { key: signer.privateKey, dsaEncoding: 'ieee-p1363' });
  return verify('sha256', data, { key: cache.keyObject(jwk), dsaEncoding: 'ieee-p1363' }, sig);
}

describe('the public-key cache', () => {
  it('imports a key once and finds it again from a new copy of the same members', () => {
    const cache = new PublicKeyCache();
    const a = principal('urn:fedlab:plc.test:user:a');
    const first = cache.keyObject(a.jwk);
    expect(cache.keyObject({ ...a.jwk })).toBe(first);
    expect(cache.known(JSON.parse(JSON.stringify(a.jwk)) as PublicJwk).kid).toBe(a.kid);
    expect(cache.size).toBe(1);
  });

  it('a different key that claims the same kid never hits: it gets its own KeyObject', () => {
    const cache = new PublicKeyCache();
    const a = principal('urn:fedlab:plc.test:user:a');
    const b = principal('urn:fedlab:plc.test:user:b');
    expect(verifies(a.jwk, a, cache)).toBe(true);
    // The exported helper keeps a kid parameter; it plays no part in the lookup.
    const viaKid = keyObjectFor(b.jwk, a.kid);
    expect(viaKid).not.toBe(keyObjectFor(a.jwk, a.kid));
    expect(
      verify(
        'sha256',
        data,
        { key: viaKid, dsaEncoding: 'ieee-p1363' },
        sign('sha256', data, { key: b.privateKey, dsaEncoding: 'ieee-p1363' }),
      ),
    ).toBe(true);
    // The same x with another y (a different point) is another key, too.
    const twisted = { ...(a.jwk as Extract<PublicJwk, { kty: 'EC' }>), y: (b.jwk as Extract<PublicJwk, { kty: 'EC' }>).y };
    expect(cache.known(twisted).kid).toBe(thumbprintOf(twisted));
    expect(cache.known(twisted).kid).not.toBe(a.kid);
    expect(() => cache.keyObject(twisted)).toThrow();
    expect(verifies(a.jwk, a, cache)).toBe(true);
    expect(verifies(a.jwk, b, cache)).toBe(false);
  });

  it('an Ed25519 key and a P-256 key never share an entry', () => {
    const cache = new PublicKeyCache();
    const ec = principal('urn:fedlab:plc.test:user:e');
    const ed = principal('urn:fedlab:plc.test:user:d', 'ed25519');
    const forged = { kty: 'OKP', crv: 'Ed25519', x: (ec.jwk as { x: string }).x } as PublicJwk;
    cache.keyObject(ec.jwk);
    expect(cache.known(forged).kid).toBe(thumbprintOf(forged));
    expect(cache.keyObject(ed.jwk).asymmetricKeyType).toBe('ed25519');
    expect(cache.keyObject(ec.jwk).asymmetricKeyType).toBe('ec');
  });

  it('stays within its bound, and a key in use survives a pass of eviction', () => {
    const cache = new PublicKeyCache(4);
    const keys = Array.from({ length: 10 }, (_, i) => principal(`urn:fedlab:plc.test:user:u${i}`, 'ed25519'));
    const hot = keys[0] as (typeof keys)[number];
    const hotKey = cache.keyObject(hot.jwk);
    for (const k of keys.slice(1)) {
      cache.keyObject(k.jwk);
      cache.keyObject(hot.jwk);
      expect(cache.size).toBeLessThanOrEqual(4);
    }
    expect(cache.keyObject(hot.jwk)).toBe(hotKey);
    expect(cache.size).toBe(4);
  });

  it('keeps nothing for a key that does not import', () => {
    const cache = new PublicKeyCache();
    const a = principal('urn:fedlab:plc.test:user:a');
    const offCurve = { ...(a.jwk as Extract<PublicJwk, { kty: 'EC' }>), y: (a.jwk as { x: string }).x };
    expect(() => cache.keyObject(offCurve)).toThrow();
    expect(() => cache.keyObject(offCurve)).toThrow();
  });
});

describe('the scratch base64url reader', () => {
  it('gives the bytes of canonical text and nothing for any other spelling', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff));
      expect(Buffer.from(transientBase64url(bytes.toString('base64url')) as Buffer)).toEqual(bytes);
    }
    for (const s of ['QQ==', 'a+b_', 'a/b_', 'ab c', 'abcde', 'QR', 'QUJ', 'QUF', 'QU\u0141D', 'Q\u00c1JD', 'QU*D', 'QU.D']) {
      expect(transientBase64url(s), s).toBeUndefined();
    }
  });
});
