// The strict reader of one credential link: canonical base64url, the duplicate-key scanner, RFC 7638
// thumbprints, and interoperability of what we issue with a standard JWS library (jose).
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { decodeBase64url, isCanonicalBase64url } from '../../services/core/credentials/base64url.js';
import {
  countMembersInText,
  countMembersInValue,
  findDuplicateKey,
  parseStrictJsonObject,
} from '../../services/core/credentials/strict-json.js';
import { CREDENTIAL_TYP, credentialHash, issueRoot, parseCredential, thumbprintOf } from '../../services/core/credentials/index.js';
import { ALL_NODES, NOW, SLIVER_PRIVS, principal } from './credentials-fixtures.js';

describe('canonical base64url', () => {
  it('accepts what Node encodes, for every length', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff));
      const s = bytes.toString('base64url');
      expect(isCanonicalBase64url(s)).toBe(true);
      expect(decodeBase64url(s)).toEqual(bytes);
    }
  });

  it("rejects padding, '+', '/', white space, impossible lengths and non-zero trailing bits", () => {
    for (const s of ['QQ==', 'a+b_', 'a/b_', 'ab c', 'abcde', 'QR', 'QUJ', 'QUF']) expect(isCanonicalBase64url(s), s).toBe(false);
    for (const s of ['', 'QQ', 'QUI', 'QUJD']) expect(isCanonicalBase64url(s), s).toBe(true);
  });
});

describe('duplicate JSON keys', () => {
  it('finds repeats at any depth, spelled plainly or with escapes', () => {
    expect(findDuplicateKey('{"a":1,"a":2}')).toBe('a');
    expect(findDuplicateKey('{"x":{"b":[{"c":1,"c":1}]}}')).toBe('c');
    expect(findDuplicateKey('{"a":1,"\\u0061":2}')).toBe('a');
    expect(findDuplicateKey('{"k":"a\\"b","k":1}')).toBe('k');
  });

  it('counts members outside strings, whatever the strings hold', () => {
    const tricky = JSON.stringify({ a: 'x:y', 'b\\"': { c: [1, { d: '\\":"' }] }, e: '\\\\', f: '"' });
    for (const text of [tricky, '{ "k" : "urn:fedlab:a:b:c" , "l" : [ ":" , { "m" : null } ] }', '{}', '{"__proto__":1,"x":2}']) {
      expect(countMembersInText(text), text).toBe(countMembersInValue(JSON.parse(text)));
    }
    expect(parseStrictJsonObject(Buffer.from('{"a":":","a":1}'))).toMatchObject({ ok: false, problem: 'duplicate-key' });
    expect(parseStrictJsonObject(Buffer.from('{"__proto__":1,"__proto__":2}'))).toMatchObject({ ok: false, problem: 'duplicate-key' });
    expect(parseStrictJsonObject(Buffer.from('{"a":"\\":","b":1}'))).toMatchObject({ ok: true });
  });

  it('ignores equal keys in sibling objects, and strings that look like keys', () => {
    expect(findDuplicateKey('{"a":{"b":1},"c":{"b":2}}')).toBeUndefined();
    expect(findDuplicateKey('[{"a":1},{"a":1}]')).toBeUndefined();
    expect(findDuplicateKey('{"a":["a","a"],"b":"a"}')).toBeUndefined();
    expect(findDuplicateKey('{"a":"{\\"a\\":1,\\"a\\":2}"}')).toBeUndefined();
  });
});

describe('thumbprints', () => {
  it('match RFC 7638 as jose computes them, for P-256 and Ed25519', async () => {
    for (const alg of ['p256', 'ed25519'] as const) {
      const p = principal('urn:fedlab:plc.test:user:t', alg);
      expect(thumbprintOf(p.jwk)).toBe(await calculateJwkThumbprint(p.jwk as never, 'sha256'));
    }
  });
});

describe('issued credentials', () => {
  it('are standard compact JWS that jose verifies, with exactly the documented header', async () => {
    for (const alg of ['p256', 'ed25519'] as const) {
      const ma = principal('urn:fedlab:plc.test:authority:ma', alg);
      const sa = principal('urn:fedlab:plc.test:authority:sa');
      const { token, claims, hash } = await issueRoot({
        key: ma.privateKey,
        issuer: ma.urn,
        subject: sa.urn,
        subjectKey: sa.publicKey,
        targets: [ALL_NODES],
        privileges: SLIVER_PRIVS,
        dlg: 2,
        now: NOW,
      });
      const header = decodeProtectedHeader(token);
      expect(Object.keys(header)).toEqual(['alg', 'typ', 'kid']);
      expect(header).toEqual({ alg: ma.alg, typ: CREDENTIAL_TYP, kid: ma.kid });
      const { payload } = await compactVerify(token, ma.publicKey);
      expect(JSON.parse(Buffer.from(payload).toString())).toEqual(claims);
      expect(hash).toBe(credentialHash(token));
      expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(claims.cnf.jwk).toEqual(sa.jwk);
      expect('prf' in claims).toBe(false);
    }
  });

  it('read back field by field', async () => {
    const ma = principal('urn:fedlab:plc.test:authority:ma');
    const sa = principal('urn:fedlab:plc.test:authority:sa', 'ed25519');
    const issued = await issueRoot({
      key: ma.privateKey,
      issuer: ma.urn,
      subject: sa.urn,
      subjectKey: sa.jwk,
      targets: [ALL_NODES, 'urn:fedlab:plc.test:slice:s1'],
      privileges: ['node.read'],
      limits: { slivers: 3 },
      ttlSeconds: 3600,
      now: NOW,
    });
    const p = parseCredential(issued.token, 0);
    expect(p.claims).toMatchObject({
      v: 1,
      iss: ma.urn,
      sub: sa.urn,
      priv: ['node.read'],
      dlg: 0,
      lim: { slivers: 3 },
      exp: p.claims.nbf + 3600,
    });
    expect(p.holderKid).toBe(sa.kid);
    expect(p.targets.map((t) => t.kind)).toEqual(['node', 'slice']);
  });
});
