// Issuing and delegating: defaults inherited from the parent, and every delegation wider than its parent
// refused before signing, naming the rule.
import { describe, expect, it } from 'vitest';
import {
  DelegationRefusedError,
  delegate,
  issueRoot,
  newJti,
  parseCredential,
  type IssuedCredential,
} from '../../services/core/credentials/index.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { ALL_NODES, NODE_N1, NOW, SLIVER_PRIVS, T0, cast, verifyAs, type Cast } from './credentials-fixtures.js';

async function root(c: Cast, over: Partial<Parameters<typeof issueRoot>[0]> = {}): Promise<IssuedCredential> {
  return issueRoot({
    key: c.ma.privateKey,
    issuer: c.ma.urn,
    subject: c.sa.urn,
    subjectKey: c.sa.publicKey,
    targets: [ALL_NODES],
    privileges: SLIVER_PRIVS,
    dlg: 3,
    limits: { slivers: 100, mem_mb: 8192 },
    ttlSeconds: 86400,
    now: NOW,
    ...over,
  });
}

async function refused(p: Promise<unknown>, link: number, rule: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DelegationRefusedError);
  expect({
    link: (err as DelegationRefusedError).link,
    rule: (err as DelegationRefusedError).rule,
    kind: (err as DelegationRefusedError).kind,
  }).toEqual({
    link,
    rule,
    kind: 'permission_denied',
  });
}

describe('issueRoot', () => {
  it('issues a root that verifies', async () => {
    const c = cast();
    const r = await root(c, { subject: c.alice.urn, subjectKey: c.alice.jwk });
    const g = verifyAs(c, r.chain);
    expect(g).toMatchObject({
      privileges: SLIVER_PRIVS,
      targets: [ALL_NODES],
      limits: { slivers: 100, mem_mb: 8192 },
      delegationsLeft: 3,
      exp: T0 + 86400,
    });
    expect(g.root).toEqual({ issuer: c.ma.urn, kid: c.ma.kid });
  });

  it('rejects bad input as InvalidArgumentError (unknown privilege, bad target, bad URN, bad limit, no ttl)', async () => {
    const c = cast();
    await expect(root(c, { privileges: ['sliver.fly'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(root(c, { privileges: [] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(root(c, { targets: ['urn:fedlab:PLC:node:*'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(root(c, { targets: [] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(root(c, { subject: 'urn:fedlab:plc.test:robot:r' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(root(c, { limits: { slivers: -1 } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(root(c, { limits: { gpus: 1 } as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(root(c, { ttlSeconds: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('delegate', () => {
  it('inherits privileges, targets and expiry, and lowers dlg by one', async () => {
    const c = cast();
    const r = await root(c);
    const d = await delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, now: NOW });
    expect(d.chain).toEqual([r.token, d.token]);
    expect(d.claims).toMatchObject({
      iss: c.sa.urn,
      sub: c.sp.urn,
      priv: SLIVER_PRIVS,
      tgt: [ALL_NODES],
      dlg: 2,
      exp: r.claims.exp,
      prf: r.hash,
      lim: {},
    });
    const e = await delegate(d.chain, {
      key: c.sp.privateKey,
      subject: c.alice.urn,
      subjectKey: c.alice.jwk,
      privileges: ['sliver.create'],
      targets: [NODE_N1],
      limits: { slivers: 5 },
      ttlSeconds: 600,
      now: NOW,
    });
    const g = verifyAs(c, e.chain);
    expect(g).toMatchObject({
      privileges: ['sliver.create'],
      targets: [NODE_N1],
      limits: { slivers: 5, mem_mb: 8192 },
      delegationsLeft: 1,
      exp: T0 + 600,
    });
    expect(g.hashes).toHaveLength(3);
  });

  it('starts no earlier than the parent', async () => {
    const c = cast();
    const r = await root(c, { notBefore: new Date((T0 + 100) * 1000) });
    const d = await delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, now: NOW });
    expect(d.claims.nbf).toBe(T0 + 100);
  });

  it('refuses a privilege the parent does not hold (rule priv)', async () => {
    const c = cast();
    const r = await root(c);
    await refused(
      delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, privileges: ['sliver.exec'], now: NOW }),
      1,
      'priv',
    );
  });

  it('refuses a wider target (rule tgt)', async () => {
    const c = cast();
    const r = await root(c, { targets: [NODE_N1] });
    await refused(
      delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, targets: [ALL_NODES], now: NOW }),
      1,
      'tgt',
    );
  });

  it('refuses when dlg is exhausted or not lowered (rule dlg)', async () => {
    const c = cast();
    const r0 = await root(c, { dlg: 0 });
    await refused(delegate(r0.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, now: NOW }), 1, 'dlg');
    const r = await root(c, { dlg: 2 });
    await refused(delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, dlg: 2, now: NOW }), 1, 'dlg');
  });

  it('refuses a raised limit, also against an inherited one (rule lim)', async () => {
    const c = cast();
    const r = await root(c);
    await refused(
      delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, limits: { slivers: 101 }, now: NOW }),
      1,
      'lim',
    );
    const d = await delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, now: NOW });
    await refused(
      delegate(d.chain, { key: c.sp.privateKey, subject: c.alice.urn, subjectKey: c.alice.jwk, limits: { mem_mb: 9000 }, now: NOW }),
      2,
      'lim',
    );
  });

  it('refuses to outlive the parent (rule exp) or start before it (rule nbf)', async () => {
    const c = cast();
    const r = await root(c);
    await refused(
      delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, ttlSeconds: 2 * 86400, now: NOW }),
      1,
      'exp',
    );
    await refused(
      delegate(r.chain, {
        key: c.sa.privateKey,
        subject: c.sp.urn,
        subjectKey: c.sp.publicKey,
        notBefore: new Date((T0 - 10) * 1000),
        now: NOW,
      }),
      1,
      'nbf',
    );
  });

  it('refuses a signer that does not hold the parent (rule signer)', async () => {
    const c = cast();
    const r = await root(c);
    await refused(delegate(r.chain, { key: c.bob.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, now: NOW }), 1, 'signer');
  });

  it('refuses an expired parent (rule expired) and a broken parent chain', async () => {
    const c = cast();
    const r = await root(c);
    await refused(
      delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, now: new Date((T0 + 2 * 86400) * 1000) }),
      0,
      'expired',
    );
    const d = await delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, now: NOW });
    await refused(delegate([d.token], { key: c.sp.privateKey, subject: c.alice.urn, subjectKey: c.alice.jwk, now: NOW }), 0, 'prf');
  });

  it('refuses a ninth link (rule size)', async () => {
    const c = cast();
    let chain = (await root(c, { dlg: 10, subject: c.alice.urn, subjectKey: c.alice.jwk })).chain;
    for (let i = 1; i < 8; i++)
      chain = (await delegate(chain, { key: c.alice.privateKey, subject: c.alice.urn, subjectKey: c.alice.jwk, now: NOW })).chain;
    expect(chain).toHaveLength(8);
    verifyAs(c, chain);
    await refused(delegate(chain, { key: c.alice.privateKey, subject: c.alice.urn, subjectKey: c.alice.jwk, now: NOW }), 8, 'size');
  });

  it('carries the prf of the exact parent text', async () => {
    const c = cast();
    const r = await root(c);
    const d = await delegate(r.chain, { key: c.sa.privateKey, subject: c.sp.urn, subjectKey: c.sp.publicKey, now: NOW });
    expect(parseCredential(d.token, 1).claims.prf).toBe(r.hash);
  });

  it('a jti is 22 base64url characters and never begins with - (people paste it into command lines)', () => {
    // One in 64 random ids began with '-': 10,000 draws would all but surely show one.
    const ids = Array.from({ length: 10_000 }, newJti);
    expect(ids.every((j) => /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/.test(j))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
