// A trust bundle is what one site pins of another: every field that names a key or a CA is checked when it is
// read. Each case takes a valid bundle the test PKI wrote and changes one thing; the parse must refuse it with
// INVALID_ARGUMENT and a message that names the field (an authority whose kid is another key's thumbprint, the
// same key twice, a private member, a non-canonical coordinate, another domain's authority, a leaf as a CA).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { generateKeyPair, jwkThumbprint } from '../../services/core/identity/keys.js';
import { parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { makeTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';

type Json = Record<string, unknown>;
type Authority = { urn: string; jwk: Json; kid: string };

let pki: TestPki;
let leaf: TestIdentity;
let valid: Json;

beforeAll(async () => {
  pki = await makeTestPki('plc.test');
  await pki.issueServer('urn:fedlab:plc.test:authority:ma');
  await pki.issue('urn:fedlab:plc.test:authority:sa');
  leaf = await pki.issue('urn:fedlab:plc.test:sp:acme');
  valid = JSON.parse(readFileSync((await pki.bundle()).file, 'utf8')) as Json;
});
afterAll(async () => {
  await pki?.cleanup();
});

/** The valid bundle with its authorities changed by `f` (a deep copy: cases do not see each other's changes). */
function withAuthorities(f: (list: Authority[]) => Authority[]): Json {
  const copy = structuredClone(valid);
  copy.authorities = f(copy.authorities as Authority[]);
  return copy;
}

describe('reading a trust bundle', () => {
  it('takes the bundle as written, authorities with their keys and thumbprints', async () => {
    const b = await parseTrustBundle(structuredClone(valid));
    expect(b.authorities.map((a) => a.urn)).toEqual(['urn:fedlab:plc.test:authority:ma', 'urn:fedlab:plc.test:authority:sa']);
    for (const a of b.authorities) expect(a.kid).toBe(jwkThumbprint(a.jwk));
  });

  const otherKey = generateKeyPair('p256').publicKey.export({ format: 'jwk' }) as Json;
  const cases: [string, () => Json, RegExp][] = [
    [
      "an authority whose kid is another key's thumbprint",
      () => withAuthorities(([a, b]) => [{ ...a!, kid: jwkThumbprint(otherKey) }, b!]),
      /authorities\[0\]\.kid is not the RFC 7638 thumbprint of its jwk/,
    ],
    [
      'an authority whose key is swapped for another (its kid left as it was)',
      () => withAuthorities(([a, b]) => [{ ...a!, jwk: otherKey }, b!]),
      /authorities\[0\]\.kid is not the RFC 7638 thumbprint of its jwk/,
    ],
    ['the same key twice', () => withAuthorities(([a, b]) => [a!, b!, { ...a! }]), /authorities\[2\] repeats key/],
    [
      'a private member in a jwk',
      () => withAuthorities(([a, b]) => [{ ...a!, jwk: { ...a!.jwk, d: 'AAAA' } }, b!]),
      /authorities\[0\]\.jwk must hold public members only/,
    ],
    [
      'a coordinate in a non-canonical spelling of the same key',
      () => withAuthorities(([a, b]) => [{ ...a!, jwk: { ...a!.jwk, x: `${a!.jwk.x as string}=` } }, b!]),
      /authorities\[0\]\.jwk: .*canonical base64url/,
    ],
    [
      "another domain's authority",
      () => withAuthorities(([a, b]) => [a!, { ...b!, urn: 'urn:fedlab:geni.test:authority:sa' }]),
      /authorities\[1\] urn:fedlab:geni\.test:authority:sa is not in the bundle's domain plc\.test/,
    ],
    [
      'a leaf certificate as a CA',
      () => ({ ...structuredClone(valid), ca_certs: [leaf.certPem] }),
      /ca_certs\[0\] is not a CA certificate/,
    ],
    ['no CA at all', () => ({ ...structuredClone(valid), ca_certs: [] }), /ca_certs must list at least one PEM certificate/],
    ['an unknown field', () => ({ ...structuredClone(valid), trust_everyone: true }), /unknown field "trust_everyone"/],
    ['another version', () => ({ ...structuredClone(valid), v: 2 }), /unsupported version 2/],
  ];

  it.each(cases)('refuses %s, naming the field', async (_what, make, message) => {
    const input = make();
    const before = JSON.stringify(input);
    const err = await parseTrustBundle(input).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/^invalid trust bundle: /);
    expect((err as Error).message).toMatch(message);
    // Reading changes nothing it was given.
    expect(JSON.stringify(input)).toBe(before);
  });

  it('refuses the same cases given as text', async () => {
    for (const [, make, message] of cases) await expect(parseTrustBundle(JSON.stringify(make()))).rejects.toThrow(message);
  });
});
