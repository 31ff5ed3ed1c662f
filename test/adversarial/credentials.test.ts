// Adversarial suite of the credential verifier: one test per attack, each asserting the exact link and
// rule of the refusal (docs/design.md §5). Every forged link is properly signed unless the attack is the signature
// itself, so each test isolates the one rule under attack.
import { createHmac, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  RevocationSet,
  TrustStore,
  emptyRevocationList,
  withRevocation,
  type RevocationEntry,
} from '../../services/core/credentials/index.js';
import {
  ALL_NODES,
  NODE_N1,
  NOW,
  T0,
  b64,
  cast,
  expectRule,
  fakeBundle,
  forgeChain,
  forgeLink,
  principal,
  standardSpecs,
  verifyAs,
  type Cast,
  type LinkSpec,
} from '../unit/credentials-fixtures.js';

const TYP = 'fedlab-cred+jwt';

/** The standard chain with overrides on one link (0 root, 1 SA→SP, 2 SP→alice). */
function chainWith(c: Cast, link: number, over: Partial<LinkSpec>): string[] {
  const specs = standardSpecs(c);
  specs[link] = { ...(specs[link] as LinkSpec), ...over };
  return forgeChain(specs);
}

/** Replaces one part (0 header, 1 payload, 2 signature) of a compact JWS. */
function withPart(token: string, part: 0 | 1 | 2, value: string): string {
  const parts = token.split('.');
  parts[part] = value;
  return parts.join('.');
}

function sigOf(token: string): Buffer {
  return Buffer.from(token.split('.')[2] as string, 'base64url');
}

/** DER encoding of an IEEE P1363 r||s ECDSA signature. */
function toDer(p1363: Buffer): Buffer {
  const int = (b: Buffer): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return (v[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
  };
  const r = int(p1363.subarray(0, 32));
  const s = int(p1363.subarray(32));
  const body = Buffer.concat([Buffer.from([2, r.length]), r, Buffer.from([2, s.length]), s]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

function revoked(issuer: { privateKey: import('node:crypto').KeyObject; urn: string }, entries: RevocationEntry[]): RevocationSet {
  const set = new RevocationSet({ cache: null });
  let list = emptyRevocationList(issuer.privateKey, issuer.urn);
  for (const e of entries) list = withRevocation(list, e);
  set.put(list);
  return set;
}

describe('adversarial: algorithms and headers', () => {
  it('1. alg none with an empty signature', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const h = b64(JSON.stringify({ alg: 'none', typ: TYP, kid: c.ma.kid }));
    chain[0] = `${h}.${(chain[0] as string).split('.')[1]}.`;
    expectRule(() => verifyAs(c, chain), 0, 'alg');
  });

  it('2. HS256 with the public key as the HMAC secret', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const h = b64(JSON.stringify({ alg: 'HS256', typ: TYP, kid: c.ma.kid }));
    const p = (chain[0] as string).split('.')[1] as string;
    const secret = createPublicKey(c.ma.privateKey).export({ format: 'pem', type: 'spki' });
    const mac = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
    chain[0] = `${h}.${p}.${mac}`;
    expectRule(() => verifyAs(c, chain), 0, 'alg');
  });

  it('3. EdDSA claimed for a root signed by a P-256 anchor', () => {
    const c = cast();
    const chain = chainWith(c, 0, { header: { alg: 'EdDSA' } });
    expectRule(() => verifyAs(c, chain), 0, 'alg');
  });

  it('4. ES256 claimed on a link signed by an Ed25519 holder key', () => {
    const c = cast();
    // SA's key is Ed25519; its link says ES256 (the signature is a valid Ed25519 one, 64 bytes).
    const chain = chainWith(c, 1, { header: { alg: 'ES256' } });
    expectRule(() => verifyAs(c, chain), 1, 'alg');
  });

  it('5. embedded jwk in the header', () => {
    const c = cast();
    const mallory = principal('urn:fedlab:plc.test:authority:ma');
    const chain = chainWith(c, 0, { signer: mallory, header: { kid: c.ma.kid, jwk: mallory.jwk } });
    expectRule(() => verifyAs(c, chain), 0, 'header');
  });

  it('6. jku in the header', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { header: { jku: 'https://evil.test/keys' } })), 1, 'header');
  });

  it('7. x5u in the header', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { header: { x5u: 'https://evil.test/cert.pem' } })), 2, 'header');
  });

  it('8. x5c in the header', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 0, { header: { x5c: ['MIIB'] } })), 0, 'header');
  });

  it('9. crit in the header', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { header: { crit: ['exp'] } })), 1, 'header');
  });

  it('10. b64=false (unencoded payload)', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 0, { header: { b64: false, crit: ['b64'] } })), 0, 'header');
  });

  it('11. JWS flattened JSON serialization', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const [h, p, s] = (chain[1] as string).split('.');
    chain[1] = JSON.stringify({ protected: h, payload: p, signature: s });
    expectRule(() => verifyAs(c, chain), 1, 'format');
  });

  it('12. JSON serialization with an unprotected header', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const [h, p, s] = (chain[0] as string).split('.');
    chain[0] = JSON.stringify({ payload: p, signatures: [{ protected: h, header: { kid: c.ma.kid }, signature: s }] });
    expectRule(() => verifyAs(c, chain), 0, 'format');
  });

  it('13. wrong typ', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { header: { typ: 'JWT' } })), 2, 'typ');
  });

  it('14. header without kid', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { header: { kid: undefined } })), 1, 'header');
  });

  it('15. kid not in the trust store (root signed by an unknown key)', () => {
    const c = cast();
    const mallory = principal('urn:fedlab:plc.test:authority:ma');
    expectRule(() => verifyAs(c, chainWith(c, 0, { signer: mallory })), 0, 'trust-anchor');
  });
});

describe('adversarial: JSON and claims', () => {
  it('16. duplicate key in the payload (priv twice)', () => {
    const c = cast();
    const chain = chainWith(c, 2, { payloadText: (j) => j.replace('"priv":', '"priv":["sliver.exec"],"priv":') });
    expectRule(() => verifyAs(c, chain), 2, 'duplicate-key');
  });

  it('17. duplicate key in the header (alg twice)', () => {
    const c = cast();
    const chain = chainWith(c, 0, { headerText: (j) => j.replace('{', '{"alg":"none",') });
    expectRule(() => verifyAs(c, chain), 0, 'duplicate-key');
  });

  it('18. duplicate key spelled with a JSON escape', () => {
    const c = cast();
    const chain = chainWith(c, 1, { payloadText: (j) => j.replace('"dlg":', '"\\u0064lg":9,"dlg":') });
    expectRule(() => verifyAs(c, chain), 1, 'duplicate-key');
  });

  it('19. duplicate key inside a nested object (cnf.jwk.x)', () => {
    const c = cast();
    const chain = chainWith(c, 1, { payloadText: (j) => j.replace('"x":', `"x":"${c.bob.jwk.x}","x":`) });
    expectRule(() => verifyAs(c, chain), 1, 'duplicate-key');
  });

  it('20. v other than 1', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { v: 2 } })), 1, 'version');
  });

  it('21. a missing claim (exp)', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { exp: undefined } })), 1, 'claims');
  });

  it('22. a mistyped claim (dlg as a string)', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { dlg: '0' } })), 2, 'claims');
  });

  it('23. a mistyped claim (exp with a fraction)', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 0, { claims: { exp: T0 + 0.5 } })), 0, 'claims');
  });

  it('24. an unknown claim', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { admin: true } })), 1, 'claims');
  });

  it('25. a private key member in cnf.jwk', () => {
    const c = cast();
    const d = (c.alice.privateKey.export({ format: 'jwk' }) as { d: string }).d;
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { cnf: { jwk: { ...c.alice.jwk, d } } } })), 2, 'claims');
  });

  it('26. a jti that is not 128 bits', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 0, { claims: { jti: 'short' } })), 0, 'claims');
  });

  it('27. the payload is a JSON array', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { payloadText: (j) => `[${j}]` })), 1, 'json');
  });

  it('28. a byte order mark before the payload JSON', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { payloadText: (j) => `\ufeff${j}` })), 1, 'json');
  });

  it('29. an unknown privilege string', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { priv: ['sliver.create', 'root.everything'] } })), 1, 'privilege');
  });
});

describe('adversarial: the clock', () => {
  it('30. expired leaf', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { exp: T0 - 3000 } })), 2, 'expired');
  });

  it('31. just outside the skew: now == exp + 60 s', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { exp: T0 - 60 } })), 2, 'expired');
  });

  it('32. just inside the skew: now == exp + 59 s still verifies', () => {
    const c = cast();
    expect(verifyAs(c, chainWith(c, 2, { claims: { exp: T0 - 59 } })).exp).toBe(T0 - 59);
  });

  it('33. not yet valid', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { nbf: T0 + 3600 } })), 2, 'not-yet-valid');
  });

  it('34. just outside the skew: now == nbf - 60.001 s', () => {
    const c = cast();
    const chain = chainWith(c, 1, { claims: { nbf: T0 + 60 } });
    expectRule(() => verifyAs(c, chain, { now: new Date(NOW.getTime() - 1) }), 1, 'not-yet-valid');
  });

  it('35. just inside the skew: now == nbf - 60 s verifies', () => {
    const c = cast();
    const specs = standardSpecs(c);
    specs[1] = { ...(specs[1] as LinkSpec), claims: { nbf: T0 + 60 } };
    specs[2] = { ...(specs[2] as LinkSpec), claims: { nbf: T0 + 60 } };
    expect(verifyAs(c, forgeChain(specs)).nbf).toBe(T0 + 60);
  });
});

describe('adversarial: attenuation', () => {
  it('36. a privilege added by a child', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { priv: ['sliver.create', 'sliver.exec'] } })), 2, 'priv');
  });

  it('37. wildcard child of an exact parent target', () => {
    const c = cast();
    const specs = standardSpecs(c);
    specs[1] = { ...(specs[1] as LinkSpec), claims: { tgt: [NODE_N1] } };
    specs[2] = { ...(specs[2] as LinkSpec), claims: { tgt: [ALL_NODES] } };
    expectRule(() => verifyAs(c, forgeChain(specs)), 2, 'tgt');
  });

  it('38. a target in another domain', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { tgt: [ALL_NODES, 'urn:fedlab:emulab.test:node:*'] } })), 1, 'tgt');
  });

  it('39. plc.princeton under plc.prince (no string-prefix matching)', () => {
    const ma = principal('urn:fedlab:plc.prince:authority:ma');
    const sa = principal('urn:fedlab:plc.prince:authority:sa');
    const alice = principal('urn:fedlab:plc.test:user:alice');
    const trust = new TrustStore();
    trust.addBundle(fakeBundle('plc.prince', [ma]));
    const chain = forgeChain([
      { iss: ma, sub: sa, claims: { tgt: ['urn:fedlab:plc.prince:node:*'] } },
      { iss: sa, sub: alice, claims: { tgt: ['urn:fedlab:plc.princeton:node:*'] } },
    ]);
    expectRule(() => verifyAs({ ...cast(), trust, alice }, chain, { object: 'urn:fedlab:plc.princeton:node:n1' }), 1, 'tgt');
  });

  it('40. a plc.prince chain does not grant a plc.princeton object', () => {
    const ma = principal('urn:fedlab:plc.prince:authority:ma');
    const alice = principal('urn:fedlab:plc.test:user:alice');
    const trust = new TrustStore();
    trust.addBundle(fakeBundle('plc.prince', [ma]));
    const chain = forgeChain([{ iss: ma, sub: alice, claims: { tgt: ['urn:fedlab:plc.prince:*'] } }]);
    expectRule(
      () => verifyAs({ ...cast(), trust, alice }, chain, { object: 'urn:fedlab:plc.princeton:node:n1' }),
      0,
      'grant-object',
      'permission_denied',
    );
  });

  it('41. a domain-wide wildcard under a kind wildcard', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { tgt: ['urn:fedlab:plc.test:*'] } })), 2, 'tgt');
  });

  it('42. a kind wildcard of another kind', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { tgt: ['urn:fedlab:plc.test:slice:*'] } })), 1, 'tgt');
  });

  it('43. dlg exhausted (a child after dlg 0)', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { dlg: 0 } })), 2, 'dlg');
  });

  it('44. dlg not decreasing', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { dlg: 6 } })), 1, 'dlg');
  });

  it('45. a limit raised above the parent', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { lim: { slivers: 101 } } })), 1, 'lim');
  });

  it('46. a limit raised above a value inherited from the root', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { lim: { mem_mb: 1_000_000 } } })), 2, 'lim');
  });

  it('47. a limit dropped inherits the parent value (no dodge)', () => {
    const c = cast();
    const specs = standardSpecs(c);
    specs[1] = { ...(specs[1] as LinkSpec), claims: { lim: { slivers: 10 } } };
    specs[2] = { ...(specs[2] as LinkSpec), claims: { lim: {} } };
    const grant = verifyAs(c, forgeChain(specs));
    expect(grant.limits).toEqual({ slivers: 10, cpu_millis: 4000, mem_mb: 8192, disk_mb: 20480, ttl_s: 4838400 });
  });

  it('48. the lim claim dropped altogether', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { lim: undefined } })), 1, 'claims');
  });

  it('49. a limit dropped to null', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { lim: { slivers: null } } })), 1, 'claims');
  });

  it('50. a child outliving its parent', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { exp: T0 + 86401 } })), 1, 'exp');
  });

  it('51. a child nbf before its parent nbf', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { nbf: T0 - 3601 } })), 2, 'nbf');
  });
});

describe('adversarial: linkage and signatures', () => {
  it("52. a child signed by a key other than the parent's cnf.jwk", () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { signer: c.bob })), 2, 'signer');
  });

  it("53. a child claiming the parent's holder kid but signed by another key", () => {
    const c = cast();
    const mallory = principal('urn:fedlab:plc.test:sp:acme');
    expectRule(() => verifyAs(c, chainWith(c, 2, { signer: mallory, header: { kid: c.sp.kid } })), 2, 'signature');
  });

  it('54. an issuer that is not the previous subject', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 2, { claims: { iss: c.bob.urn } })), 2, 'issuer');
  });

  it('55. links reordered', () => {
    const c = cast();
    const [a, b, d] = forgeChain(standardSpecs(c)) as [string, string, string];
    expectRule(() => verifyAs(c, [a, d, b]), 1, 'prf');
  });

  it('56. a middle link dropped', () => {
    const c = cast();
    const [a, , d] = forgeChain(standardSpecs(c)) as [string, string, string];
    expectRule(() => verifyAs(c, [a, d]), 1, 'prf');
  });

  it('57. the root dropped', () => {
    const c = cast();
    const [, b, d] = forgeChain(standardSpecs(c)) as [string, string, string];
    expectRule(() => verifyAs(c, [b, d]), 0, 'prf');
  });

  it('58. a later link without prf', () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 1, { claims: { prf: undefined } })), 1, 'prf');
  });

  it('59. a link spliced from another chain between the same principals', () => {
    const c = cast();
    const one = forgeChain(standardSpecs(c));
    const two = forgeChain(standardSpecs(c));
    expectRule(() => verifyAs(c, [one[0] as string, one[1] as string, two[2] as string]), 2, 'prf');
  });

  it("60. a root signed by another domain's authority for this domain's object", () => {
    const c = cast();
    expectRule(() => verifyAs(c, chainWith(c, 0, { iss: c.otherMa })), 0, 'trust-anchor');
  });

  it('61. a peered root accepted only for the privileges local policy names', () => {
    const c = cast();
    c.trust.setPeeringPolicy((q) => q.anchorDomain === 'emulab.test' && q.privilege === 'node.read');
    const chain = chainWith(c, 0, { iss: c.otherMa });
    expect(verifyAs(c, chain, { privilege: 'node.read' }).root.issuer).toBe(c.otherMa.urn);
    expectRule(() => verifyAs(c, chain), 0, 'trust-anchor');
  });

  it('62. an empty trust store rejects (never fails open)', () => {
    const c = cast();
    expectRule(() => verifyAs(c, forgeChain(standardSpecs(c)), { trust: new TrustStore() }), 0, 'trust-anchor');
  });

  it("63. an anchor key presented under another issuer's URN", () => {
    const c = cast();
    // SA's key is an anchor of plc.test, but only as the SA.
    expectRule(() => verifyAs(c, chainWith(c, 0, { signer: c.sa, claims: { iss: c.ma.urn } })), 0, 'trust-anchor');
  });

  it('64. a flipped bit in an ES256 signature', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const sig = sigOf(chain[0] as string);
    sig[10] = (sig[10] as number) ^ 0x01;
    chain[0] = withPart(chain[0] as string, 2, b64(sig));
    expectRule(() => verifyAs(c, chain), 0, 'signature');
  });

  it('65. a flipped bit in an Ed25519 signature', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const sig = sigOf(chain[1] as string);
    sig[40] = (sig[40] as number) ^ 0x80;
    chain[1] = withPart(chain[1] as string, 2, b64(sig));
    expectRule(() => verifyAs(c, chain), 1, 'signature');
  });

  it('66. a flipped bit in the signed payload', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const payload = Buffer.from((chain[2] as string).split('.')[1] as string, 'base64url')
      .toString()
      .replace('"dlg":4', '"dlg":3');
    chain[2] = withPart(chain[2] as string, 1, b64(payload));
    expectRule(() => verifyAs(c, chain), 2, 'signature');
  });

  it('67. r = 0', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const sig = sigOf(chain[2] as string);
    sig.fill(0, 0, 32);
    chain[2] = withPart(chain[2] as string, 2, b64(sig));
    expectRule(() => verifyAs(c, chain), 2, 'signature');
  });

  it('68. s = 0', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const sig = sigOf(chain[0] as string);
    sig.fill(0, 32);
    chain[0] = withPart(chain[0] as string, 2, b64(sig));
    expectRule(() => verifyAs(c, chain), 0, 'signature');
  });

  it('69. a DER-encoded ES256 signature', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    chain[0] = withPart(chain[0] as string, 2, b64(toDer(sigOf(chain[0] as string))));
    expectRule(() => verifyAs(c, chain), 0, 'signature');
  });
});

describe('adversarial: encoding and sizes', () => {
  it("70. '+' in a base64url segment", () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const [h, p, s] = (chain[1] as string).split('.') as [string, string, string];
    chain[1] = `${h}.${p}.${s.replace(/[-_]/, '+').replace(/^[^+]*$/, `+${s.slice(1)}`)}`;
    expectRule(() => verifyAs(c, chain), 1, 'base64url');
  });

  it("71. '=' padding", () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    chain[0] = withPart(chain[0] as string, 0, `${(chain[0] as string).split('.')[0] as string}==`);
    expectRule(() => verifyAs(c, chain), 0, 'base64url');
  });

  it('72. non-canonical trailing bits', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    // A 64-byte signature is 86 characters; the last carries 4 spare bits that must be zero.
    const s = (chain[2] as string).split('.')[2] as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(s[s.length - 1] as string);
    const noisy = `${s.slice(0, -1)}${alphabet[last | 1] as string}`;
    expect(Buffer.from(noisy, 'base64url')).toEqual(Buffer.from(s, 'base64url'));
    chain[2] = withPart(chain[2] as string, 2, noisy);
    expectRule(() => verifyAs(c, chain), 2, 'base64url');
  });

  it('73. a truncated JWS (signature part cut off)', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    chain[1] = (chain[1] as string).split('.').slice(0, 2).join('.');
    expectRule(() => verifyAs(c, chain), 1, 'format');
  });

  it('74. a truncated JWS (cut inside the signature)', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    // 86 characters cut to 64: still canonical base64url, but 48 bytes.
    chain[2] = (chain[2] as string).slice(0, -22);
    expectRule(() => verifyAs(c, chain), 2, 'signature');
  });

  it('75. a malformed link (not a JWS at all)', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    chain[1] = 'hello world';
    expectRule(() => verifyAs(c, chain), 1, 'format');
  });

  it('76. a chain of 9 links', () => {
    const c = cast();
    const people = Array.from({ length: 9 }, (_, i) => principal(`urn:fedlab:plc.test:user:u${i}`));
    const specs: LinkSpec[] = [{ iss: c.ma, sub: people[0] as never, claims: { dlg: 8 } }];
    for (let i = 1; i < 9; i++) specs.push({ iss: people[i - 1] as never, sub: people[i] as never, claims: { dlg: 8 - i } });
    const chain = forgeChain(specs);
    expect(chain).toHaveLength(9);
    expectRule(() => verifyAs(c, chain), 8, 'size');
  });

  it('77. a chain over 16 KiB, refused before any parsing', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    chain.push('x'.repeat(16 * 1024));
    expectRule(() => verifyAs(c, chain), 3, 'size');
  });

  it('78. a chain over 16 KiB in UTF-8 bytes though not in characters', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    chain.splice(1, 0, '\u20ac'.repeat(6000)); // 6000 characters, 18 000 bytes
    expectRule(() => verifyAs(c, chain), 1, 'size');
  });

  it('79. no chain at all', () => {
    const c = cast();
    expectRule(() => verifyAs(c, []), 0, 'missing');
  });
});

describe('adversarial: revocation', () => {
  it('80. the root revoked by its issuer', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const jti = JSON.parse(Buffer.from((chain[0] as string).split('.')[1] as string, 'base64url').toString()).jti as string;
    expectRule(() => verifyAs(c, chain, { revocations: revoked(c.ma, [{ jti, reason: 'compromised', time: T0 }]) }), 0, 'revoked');
  });

  it('81. a middle link revoked by the root issuer', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const jti = JSON.parse(Buffer.from((chain[1] as string).split('.')[1] as string, 'base64url').toString()).jti as string;
    expectRule(() => verifyAs(c, chain, { revocations: revoked(c.ma, [{ jti, reason: 'provider left', time: T0 }]) }), 1, 'revoked');
  });

  it('82. the leaf revoked by its own issuer', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const jti = JSON.parse(Buffer.from((chain[2] as string).split('.')[1] as string, 'base64url').toString()).jti as string;
    expectRule(() => verifyAs(c, chain, { revocations: revoked(c.sp, [{ jti, reason: 'member left', time: T0 }]) }), 2, 'revoked');
  });

  it("83. a revoked key (the SA's key, revoked by the MA)", () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    expectRule(
      () => verifyAs(c, chain, { revocations: revoked(c.ma, [{ kid: c.sa.kid, reason: 'key lost', time: T0 }]) }),
      0,
      'revoked-key',
    );
  });

  it('84. a list of a key outside the chain is not consulted', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const jti = JSON.parse(Buffer.from((chain[2] as string).split('.')[1] as string, 'base64url').toString()).jti as string;
    expect(verifyAs(c, chain, { revocations: revoked(c.otherMa, [{ jti, reason: 'not mine to revoke', time: T0 }]) }).jtis[2]).toBe(jti);
  });
});

describe('adversarial: the caller', () => {
  it("85. a valid chain presented by a peer whose key is not the leaf holder's", () => {
    const c = cast();
    expectRule(() => verifyAs(c, forgeChain(standardSpecs(c)), { holder: { urn: c.alice.urn, thumbprint: c.bob.kid } }), 2, 'holder-key');
  });

  it('86. a peer whose URI SAN is not the leaf sub', () => {
    const c = cast();
    expectRule(
      () => verifyAs(c, forgeChain(standardSpecs(c)), { holder: { urn: 'urn:fedlab:plc.test:user:mallory', jwk: c.alice.jwk } }),
      2,
      'holder-urn',
    );
  });

  it('87. a valid chain without the needed privilege', () => {
    const c = cast();
    expectRule(() => verifyAs(c, forgeChain(standardSpecs(c)), { privilege: 'sliver.exec' }), 2, 'grant-privilege', 'permission_denied');
  });

  it('88. a valid chain on another object', () => {
    const c = cast();
    expectRule(
      () => verifyAs(c, forgeChain(standardSpecs(c)), { object: 'urn:fedlab:plc.test:slice:s1' }),
      2,
      'grant-object',
      'permission_denied',
    );
  });

  it('89. a correctly forged single link does not help an outsider', () => {
    const c = cast();
    const mallory = principal('urn:fedlab:plc.test:user:alice');
    const chain = [forgeLink({ iss: mallory, sub: c.alice }, 0)];
    expectRule(() => verifyAs(c, chain), 0, 'trust-anchor');
  });
});
