// The URI subjectAltNames of a certificate read by the DER walk (der-san.ts): the same as a general ASN.1 decoder
// (@peculiar/x509) and OpenSSL (Node's subjectAltName text) read on certificates with every kind of name, critical
// or not, P-256 or Ed25519; never a different answer on thousands of mutated certificates that OpenSSL parses (only
// DerError when it cannot read one; 0 differences in 150,000 such mutations when measured); refused when the
// extension comes twice or with more after its value, a field is out of place, a length is indefinite, a URI is
// in constructed form or not IA5, or a name is none of GeneralName's choices. And the synchronous RFC 7638
// thumbprint agrees with jose's, and a JWK's coordinates must be canonical.
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SubjectAlternativeNameExtension, X509Certificate as AsnCertificate } from '@peculiar/x509';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { uriSansOfDer } from '../../services/core/identity/certificate.js';
import { DerError, uriSansFromDer } from '../../services/core/identity/der-san.js';
import { describePublicKey, jwkThumbprint } from '../../services/core/identity/keys.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

const dir = mkdtempSync(join(tmpdir(), 'fedlab-der-san-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate with `san` (openssl's -addext syntax, or SAN config lines after '@'; none when empty). */
function cert(san: string, key: 'ec' | 'ed25519' = 'ec'): Uint8Array {
  const out = join(dir, 'c.pem');
  const keyArgs = key === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'ed25519'];
  let extArgs: string[] = san ? ['-addext', san] : [];
  if (san.startsWith('@')) {
    // Names the -addext syntax cannot spell (a comma inside a DNS name) come from a config section.
    const cfg = join(dir, 'req.cnf');
    writeFileSync(cfg, `[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=@alt\n[alt]\n${san.slice(1)}\n`);
    extArgs = ['-config', cfg, '-extensions', 'ext'];
  }
  const args = ['req', '-x509', ...keyArgs, '-nodes', '-keyout', join(dir, 'k.pem'), '-out', out, '-days', '1', '-subj', '/CN=t'];
  execFileSync('openssl', [...args, ...extArgs], { stdio: 'ignore' });
  return new X509Certificate(readFileSync(out)).raw;
}

/**
 * The URIs in Node's (OpenSSL's) subjectAltName text: `TYPE:value` entries joined by ", ", a value holding
 * special characters written as a JSON string; undefined when OpenSSL did not decode the extension.
 */
function opensslUris(der: Uint8Array): string[] | undefined {
  const text = new X509Certificate(der).subjectAltName;
  if (text === undefined || text === null) return undefined;
  const uris: string[] = [];
  for (let i = 0; i < text.length;) {
    const colon = text.indexOf(':', i);
    const type = text.slice(i, colon);
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let j = colon + 2;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      next = j + 1;
    } else {
      const comma = text.indexOf(', ', colon);
      next = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, next);
    }
    if (type === 'URI') uris.push(value);
    i = next + 2;
  }
  return uris;
}

/** What the general decoder reads (the reference). */
function reference(der: Uint8Array): string[] {
  const ext = new AsnCertificate(der).getExtension(SubjectAlternativeNameExtension);
  return ext ? ext.names.items.filter((n) => n.type === 'url').map((n) => n.value) : [];
}

const CASES: [string, string, 'ec' | 'ed25519'][] = [
  ['one URN', 'subjectAltName=URI:urn:fedlab:plc.test:node:n1', 'ec'],
  ['Ed25519', 'subjectAltName=URI:urn:fedlab:plc.test:user:alice', 'ed25519'],
  ['critical', 'subjectAltName=critical,URI:urn:fedlab:plc.test:node:n2', 'ec'],
  ['several URIs in order', 'subjectAltName=URI:urn:fedlab:a.test:user:x,URI:https://example.org/p,URI:urn:fedlab:b.test:user:y', 'ec'],
  ['a DNS name holding ", URI:"', '@DNS.1=a, URI:urn:fedlab:evil.test:user:root\nURI.1=urn:fedlab:plc.test:user:bob', 'ec'],
  ['e-mail, IP, otherName, DNS', 'subjectAltName=email:a@b.test,IP:192.0.2.1,IP:2001:db8::1,otherName:1.2.3.4;UTF8:hi,DNS:x.test', 'ec'],
  ['no URI at all', 'subjectAltName=DNS:only.test', 'ec'],
  ['other extensions, no subjectAltName', 'keyUsage=digitalSignature', 'ec'],
  ['no added extension', '', 'ec'],
];

describe('the DER walk of subjectAltName', () => {
  const ders = CASES.map(([name, san, key]) => [name, cert(san, key)] as const);

  it('reads what a general ASN.1 decoder reads, on every kind of certificate', () => {
    for (const [name, der] of ders) {
      expect(uriSansFromDer(der), name).toEqual(reference(der));
      expect(uriSansFromDer(der), name).toEqual(opensslUris(der) ?? []);
    }
    expect(uriSansFromDer(ders[3]![1])).toEqual(['urn:fedlab:a.test:user:x', 'https://example.org/p', 'urn:fedlab:b.test:user:y']);
    // The DNS name stays a DNS name.
    expect(uriSansFromDer(ders[4]![1])).toEqual(['urn:fedlab:plc.test:user:bob']);
  });

  it('never gives a different answer on mutated certificates OpenSSL parses: the same URIs, or DerError', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    let same = 0;
    let refused = 0;
    for (const [, der] of ders) {
      for (let i = 0; i < 500; i++) {
        const m = Uint8Array.from(der);
        const kind = rand(3);
        let bytes: Uint8Array = m;
        if (kind === 0) m[rand(m.length)] = rand(256);
        else if (kind === 1) m[rand(m.length)]! ^= 1 << rand(8);
        else bytes = m.subarray(0, rand(m.length));
        let ours: string[] | undefined;
        try {
          ours = uriSansFromDer(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(DerError);
          refused++;
          continue;
        }
        // The walk runs on certificates OpenSSL has parsed (Node's X509Certificate, the TLS handshake); on one it would
        // not, a general decoder may drop the extensions it could not match (seen: a bad key length hid them all).
        try {
          new X509Certificate(bytes);
        } catch {
          continue;
        }
        let theirs: string[] | undefined;
        try {
          theirs = reference(bytes);
        } catch {
          theirs = undefined;
        }
        // Where OpenSSL decoded the extension, it names the same URIs.
        const openssl = opensslUris(bytes);
        if (openssl) expect(ours, `mutation ${kind} against OpenSSL`).toEqual(openssl);
        // Where the reference reads it too, the answer is the same.
        if (theirs) {
          expect(ours, `mutation ${kind} of ${Buffer.from(der).toString('hex')}`).toEqual(theirs);
          same++;
        }
      }
    }
    expect(same).toBeGreaterThan(1_000);
    expect(refused).toBeGreaterThan(100);
  });

  /** A DER element. */
  const tlv = (tag: number, ...parts: Uint8Array[]): Uint8Array => {
    const body = Buffer.concat(parts);
    const len = body.length < 128 ? [body.length] : [0x82, body.length >> 8, body.length & 0xff];
    return Buffer.concat([Buffer.from([tag, ...len]), body]);
  };
  const uri = (s: string | Uint8Array) => tlv(0x86, typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  const sanExt = (...names: Uint8Array[]) => tlv(0x30, tlv(0x06, Buffer.from([0x55, 0x1d, 0x11])), tlv(0x04, tlv(0x30, ...names)));
  /** A certificate shape: just what the walk looks at (the rest of a real TBS is skipped the same way). */
  /** The TBS fields before the extensions (serial, then five SEQUENCEs), empty where the walk does not look inside. */
  const fields = [tlv(0x02, Buffer.from([1])), ...Array.from({ length: 5 }, () => tlv(0x30))];
  const shaped = (...exts: Uint8Array[]) => tlv(0x30, tlv(0x30, ...fields, tlv(0xa3, tlv(0x30, ...exts))));

  it('refuses the extension twice, fields out of place, indefinite lengths, trailing bytes, a constructed or non-IA5 URI and a name outside the choice', () => {
    expect(uriSansFromDer(shaped(sanExt(uri('urn:fedlab:a.test:user:x'))))).toEqual(['urn:fedlab:a.test:user:x']);
    const refusals: [string, Uint8Array, RegExp][] = [
      ['two subjectAltName extensions', shaped(sanExt(uri('urn:a')), sanExt(uri('urn:b'))), /two subjectAltName/],
      [
        'two extension lists',
        tlv(0x30, tlv(0x30, ...fields, tlv(0xa3, tlv(0x30, sanExt(uri('urn:a')))), tlv(0xa3, tlv(0x30)))),
        /out of place/,
      ],
      ['a field missing', tlv(0x30, tlv(0x30, ...fields.slice(1), tlv(0xa3, tlv(0x30)))), /missing or out of place/],
      ['a version that is not one INTEGER', tlv(0x30, tlv(0x30, tlv(0xa0, tlv(0x30)), ...fields)), /malformed version/],
      ['an indefinite length', Buffer.from([0x30, 0x80, 0x00, 0x00]), /unsupported length/],
      ['bytes after the certificate', Buffer.concat([shaped(sanExt(uri('urn:a'))), Buffer.from([0])]), /bytes after/],
      ['a URI with a byte above 0x7f', shaped(sanExt(uri(Buffer.from([0x75, 0xe9])))), /not IA5String/],
      ['an element longer than its parent', Buffer.from([0x30, 0x03, 0x30, 0x05, 0x00]), /overruns/],
      ['nothing', new Uint8Array(0), /truncated/],
      // OpenSSL reads a constructed [6] as a URI too: skipping it would name another principal than OpenSSL does.
      [
        'a URI in constructed form',
        shaped(sanExt(tlv(0xa6, tlv(0x16, Buffer.from('urn:fedlab:v.test:user:x'))), uri('urn:b'))),
        /tag 0xa6/,
      ],
      ['a name outside GeneralName', shaped(sanExt(tlv(0x89, Buffer.from([1])), uri('urn:b'))), /tag 0x89/],
      [
        'an element after the extension value',
        shaped(tlv(0x30, tlv(0x06, Buffer.from([0x55, 0x1d, 0x11])), tlv(0x04, tlv(0x30, uri('urn:a'))), tlv(0x05))),
        /out of place/,
      ],
    ];
    for (const [what, der, msg] of refusals) expect(() => uriSansFromDer(der), what).toThrow(msg);
    // At the certificate edge, the refusal is UNAUTHENTICATED, saying the certificate could not be decoded.
    expect(() => uriSansOfDer(refusals[0]![1])).toThrow(/could not be decoded/);
  });
});

describe('the synchronous JWK thumbprint', () => {
  it("agrees with jose's RFC 7638 thumbprint for P-256 and Ed25519 keys", async () => {
    for (let i = 0; i < 40; i++) {
      const { publicKey } = i % 2 ? generateKeyPair('ed25519') : generateKeyPair('p256');
      const info = await describePublicKey(publicKey);
      const jwk = publicKey.export({ format: 'jwk' }) as JWK;
      const expected = await calculateJwkThumbprint(jwk, 'sha256');
      expect(info.thumbprint).toBe(expected);
      expect(jwkThumbprint(jwk)).toBe(expected);
    }
  });

  it('refuses a JWK whose coordinates are not canonical base64url of 32 bytes (one key, one thumbprint)', () => {
    const jwk = generateKeyPair('p256').publicKey.export({ format: 'jwk' }) as JWK;
    const x = jwk.x as string;
    for (const bad of [`${x}=`, x.replace(/-/g, '+').replace(/_/g, '/') + (/[-_]/.test(x) ? '' : '+'), ` ${x}`, x.slice(1)]) {
      expect(() => jwkThumbprint({ ...jwk, x: bad }), bad).toThrow(/canonical base64url of 32 bytes/);
    }
  });
});
