// The slice incarnation claim `inc` (docs/credentials.md): optional and well formed, inherited by links
// that leave it out, never changed by a later link (rule inc), exposed on the grant, and checked against
// the object's incarnation when the call names one (rule grant-incarnation, PERMISSION_DENIED).
import { describe, expect, it } from 'vitest';
import { ChainCache, delegate, issueRoot, parseCredential, TrustStore } from '../../services/core/credentials/index.js';
import { cast, expectRule, forgeChain, NOW, standardSpecs, verifyAs, type LinkSpec } from './credentials-fixtures.js';

const INC_A = 'AAAAAAAAAAAAAAAAAAAAAA';
const INC_B = 'BBBBBBBBBBBBBBBBBBBBBB';

/** The standard chain with `inc` set on some links. */
function withInc(over: Record<number, unknown>) {
  const c = cast();
  const specs = standardSpecs(c).map((s, i) => (i in over ? { ...s, claims: { inc: over[i] } } : s)) as LinkSpec[];
  return { c, chain: forgeChain(specs) };
}

describe('the inc claim', () => {
  it('is optional: a chain without it verifies as before, bound to no incarnation', () => {
    const { c, chain } = withInc({});
    expect(verifyAs(c, chain).incarnation).toBeUndefined();
    expect(verifyAs(c, chain, { incarnation: null }).privileges).toContain('sliver.create');
  });

  it('must be 1 to 64 base64url characters', () => {
    for (const bad of ['', 'a b', 'x'.repeat(65), 7, null]) {
      const { c, chain } = withInc({ 1: bad });
      expectRule(() => verifyAs(c, chain), 1, 'claims');
    }
  });

  it('is inherited by later links that leave it out, and may be repeated', () => {
    const a = withInc({ 0: INC_A });
    expect(verifyAs(a.c, a.chain).incarnation).toBe(INC_A);
    const b = withInc({ 0: INC_A, 2: INC_A });
    expect(verifyAs(b.c, b.chain, { incarnation: INC_A }).incarnation).toBe(INC_A);
  });

  it('may bind a chain bound to none (a narrowing), but never change the incarnation (rule inc)', () => {
    const bind = withInc({ 1: INC_A });
    expect(verifyAs(bind.c, bind.chain).incarnation).toBe(INC_A);
    const change = withInc({ 0: INC_A, 2: INC_B });
    expectRule(() => verifyAs(change.c, change.chain), 2, 'inc');
    const later = withInc({ 1: INC_A, 2: INC_B });
    expectRule(() => verifyAs(later.c, later.chain), 2, 'inc');
  });

  it('a call that names an incarnation gets PERMISSION_DENIED (grant-incarnation) for any other, or for none', () => {
    const a = withInc({ 1: INC_A });
    expect(verifyAs(a.c, a.chain, { incarnation: INC_A }).incarnation).toBe(INC_A);
    expectRule(() => verifyAs(a.c, a.chain, { incarnation: INC_B }), 1, 'grant-incarnation', 'permission_denied');
    expectRule(() => verifyAs(a.c, a.chain, { incarnation: null }), 1, 'grant-incarnation', 'permission_denied');
    const none = withInc({});
    expectRule(() => verifyAs(none.c, none.chain, { incarnation: INC_A }), 0, 'grant-incarnation', 'permission_denied');
    try {
      verifyAs(a.c, a.chain, { incarnation: INC_B });
    } catch (err) {
      expect((err as Error).message).toContain(`incarnation ${INC_A}`);
      expect((err as Error).message).toContain('has ended');
    }
  });

  it('the prefix cache keeps the answer: a cached prefix still yields its incarnation and still refuses another', () => {
    const a = withInc({ 0: INC_A });
    const cache = new ChainCache();
    expect(verifyAs(a.c, a.chain, { cache }).incarnation).toBe(INC_A);
    expect(verifyAs(a.c, a.chain, { cache, incarnation: INC_A }).incarnation).toBe(INC_A);
    expectRule(() => verifyAs(a.c, a.chain, { cache, incarnation: INC_B }), 0, 'grant-incarnation', 'permission_denied');
  });
});

describe('issuing with an incarnation', () => {
  it('issueRoot writes inc only when given; delegate inherits it, may repeat it and refuses another', async () => {
    const c = cast();
    const slice = 'urn:fedlab:plc.test:slice:s1';
    const trust = new TrustStore();
    trust.addAnchor({ urn: c.sa.urn, jwk: c.sa.jwk, targets: [slice] });
    const plain = await issueRoot({
      key: c.sa.privateKey,
      issuer: c.sa.urn,
      subject: c.sp.urn,
      subjectKey: c.sp.jwk,
      targets: [slice],
      privileges: ['sliver.exec'],
      dlg: 2,
      now: NOW,
    });
    expect('inc' in parseCredential(plain.token, 0).claims).toBe(false);
    const root = await issueRoot({
      key: c.sa.privateKey,
      issuer: c.sa.urn,
      subject: c.sp.urn,
      subjectKey: c.sp.jwk,
      targets: [slice],
      privileges: ['sliver.exec'],
      dlg: 2,
      now: NOW,
      incarnation: INC_A,
    });
    expect(root.claims.inc).toBe(INC_A);
    const member = await delegate(root.chain, { key: c.sp.privateKey, subject: c.alice.urn, subjectKey: c.alice.jwk, now: NOW });
    expect(member.claims.inc).toBeUndefined();
    const g = verifyAs({ ...c, trust }, member.chain, { privilege: 'sliver.exec', object: slice, incarnation: INC_A });
    expect(g.incarnation).toBe(INC_A);
    await expect(
      delegate(root.chain, { key: c.sp.privateKey, subject: c.alice.urn, subjectKey: c.alice.jwk, now: NOW, incarnation: INC_B }),
    ).rejects.toMatchObject({ rule: 'inc' });
    const same = await delegate(root.chain, {
      key: c.sp.privateKey,
      subject: c.alice.urn,
      subjectKey: c.alice.jwk,
      now: NOW,
      incarnation: INC_A,
    });
    expect(same.claims.inc).toBe(INC_A);
    await expect(
      issueRoot({
        key: c.sa.privateKey,
        issuer: c.sa.urn,
        subject: c.sp.urn,
        subjectKey: c.sp.jwk,
        targets: [slice],
        privileges: ['sliver.exec'],
        incarnation: 'not valid!',
      }),
    ).rejects.toMatchObject({ details: { rule: 'inc' } });
  });
});
