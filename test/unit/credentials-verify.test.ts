// The chain verifier beyond single attacks: the grant it returns, the prefix cache (hits, partial reuse,
// the clock, anchors and revocations re-checked on every call), and the trust store's model.
import { describe, expect, it } from 'vitest';
import {
  ChainCache,
  CredentialDeniedError,
  CredentialInvalidError,
  RevocationSet,
  TrustStore,
  emptyRevocationList,
  parseCredential,
  verifyChain,
  withRevocation,
} from '../../services/core/credentials/index.js';
import { InvalidArgumentError, PermissionDeniedError, UnauthenticatedError } from '../../services/core/errors.js';
import {
  ALL_NODES,
  NODE_N1,
  NOW,
  T0,
  cast,
  expectRule,
  fakeBundle,
  forgeChain,
  forgeLink,
  principal,
  standardSpecs,
  verifyAs,
  type LinkSpec,
} from './credentials-fixtures.js';

describe('the grant', () => {
  it('gives the leaf privileges and targets, effective limits, validity, holder, root, root holder and hashes', () => {
    const c = cast();
    const specs = standardSpecs(c);
    specs[1] = { ...(specs[1] as LinkSpec), claims: { lim: { slivers: 10 }, exp: T0 + 7200 } };
    specs[2] = { ...(specs[2] as LinkSpec), claims: { priv: ['sliver.create', 'node.read'], tgt: [NODE_N1], dlg: 0, exp: T0 + 7200 } };
    const chain = forgeChain(specs);
    const g = verifyAs(c, chain);
    expect(g).toEqual({
      privileges: ['sliver.create', 'node.read'],
      targets: [NODE_N1],
      limits: { slivers: 10, cpu_millis: 4000, mem_mb: 8192, disk_mb: 20480, ttl_s: 4838400 },
      nbf: T0 - 3600,
      exp: T0 + 7200,
      holder: { urn: c.alice.urn, thumbprint: c.alice.kid },
      root: { issuer: c.ma.urn, kid: c.ma.kid },
      rootHolder: { urn: c.sa.urn, jwk: c.sa.jwk, kid: c.sa.kid },
      issuers: [c.ma.urn, c.sa.urn, c.sp.urn],
      hashes: chain.map((t, i) => parseCredential(t, i).hash),
      jtis: chain.map((t, i) => parseCredential(t, i).claims.jti),
      delegationsLeft: 0,
    });
    expect(Object.isFrozen(g)).toBe(true);
    // The root holder's key is frozen: the verifier's cached prefix cannot be changed through it.
    expect(Object.isFrozen(g.rootHolder.jwk)).toBe(true);
  });

  it('failures are typed: UNAUTHENTICATED for a bad chain, PERMISSION_DENIED for a grant that does not cover the call', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    let err: unknown;
    try {
      verifyAs(c, chain.slice(1));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CredentialInvalidError);
    expect(err).toBeInstanceOf(UnauthenticatedError);
    try {
      verifyAs(c, chain, { privilege: 'slice.delete' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CredentialDeniedError);
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect((err as Error).message).toMatch(/^credential link 2 fails rule grant-privilege: /);
  });

  it('never puts a whole credential or key into an error message', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    for (const over of [
      { privilege: 'slice.delete' as const },
      { holder: { urn: c.bob.urn, thumbprint: c.bob.kid } },
      { trust: new TrustStore() },
    ]) {
      try {
        verifyAs(c, chain, over);
      } catch (e) {
        const m = (e as Error).message;
        for (const t of chain) for (const part of t.split('.')) expect(m).not.toContain(part);
        expect(m).not.toContain(c.alice.jwk.x);
      }
    }
  });

  it('rejects a malformed call (unknown privilege, object not a URN) as InvalidArgumentError', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    expect(() => verifyAs(c, chain, { privilege: 'sliver.fly' as never })).toThrow(InvalidArgumentError);
    expect(() => verifyAs(c, chain, { object: 'node n1' })).toThrow(InvalidArgumentError);
  });

  it('a pattern as object must be covered whole', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    expect(verifyAs(c, chain, { object: ALL_NODES }).targets).toEqual([ALL_NODES]);
    expectRule(() => verifyAs(c, chain, { object: 'urn:fedlab:plc.test:*' }), 2, 'grant-object', 'permission_denied');
  });

  it('verifies a root alone, and Ed25519 roots', () => {
    const c = cast();
    const chain = forgeChain([{ iss: c.sa, sub: c.alice }]);
    expect(verifyAs(c, chain).root.issuer).toBe(c.sa.urn);
  });
});

describe('the prefix cache', () => {
  it('serves a re-verification from the cache and gives the same grant', () => {
    const c = cast();
    const cache = new ChainCache();
    const chain = forgeChain(standardSpecs(c));
    const first = verifyAs(c, chain, { cache });
    expect(cache.size).toBe(3);
    const again = verifyAs(c, [...chain.map((s) => `${s}`)], { cache });
    expect(again).toBe(first);
    expect(cache.stats.hits).toBe(1);
  });

  it('reuses a verified prefix for a new leaf', () => {
    const c = cast();
    const cache = new ChainCache();
    const specs = standardSpecs(c);
    const chain = forgeChain(specs);
    verifyAs(c, chain.slice(0, 2), { cache, holder: { urn: c.sp.urn, thumbprint: c.sp.kid } });
    verifyAs(c, chain, { cache });
    expect(cache.stats.partial).toBe(1);
    expect(cache.size).toBe(3);
  });

  it('re-checks the clock on cached entries, naming the first expired link', () => {
    const c = cast();
    const cache = new ChainCache();
    const chain = forgeChain(standardSpecs(c));
    verifyAs(c, chain, { cache });
    expectRule(() => verifyAs(c, chain, { cache, now: new Date((T0 + 86400 + 60) * 1000) }), 0, 'expired');
    expectRule(() => verifyAs(c, chain, { cache, now: new Date((T0 - 3600 - 61) * 1000) }), 0, 'not-yet-valid');
  });

  it('re-checks trust anchors on cached entries', () => {
    const c = cast();
    const cache = new ChainCache();
    const chain = forgeChain(standardSpecs(c));
    verifyAs(c, chain, { cache });
    c.trust.removeBundle('plc.test');
    expectRule(() => verifyAs(c, chain, { cache }), 0, 'trust-anchor');
  });

  it('re-checks holder and grant on cached entries', () => {
    const c = cast();
    const cache = new ChainCache();
    const chain = forgeChain(standardSpecs(c));
    verifyAs(c, chain, { cache });
    expectRule(() => verifyAs(c, chain, { cache, holder: { urn: c.alice.urn, thumbprint: c.bob.kid } }), 2, 'holder-key');
    expectRule(() => verifyAs(c, chain, { cache, privilege: 'sliver.exec' }), 2, 'grant-privilege', 'permission_denied');
  });

  it('a revocation clears the prefixes it touches, and revoked chains fail even when cached', () => {
    const c = cast();
    const cache = new ChainCache();
    const revocations = new RevocationSet({ cache });
    const chain = forgeChain(standardSpecs(c));
    const other = forgeChain([{ iss: c.ma, sub: c.alice }]);
    verifyAs(c, chain, { cache, revocations });
    verifyAs(c, other, { cache, revocations });
    expect(cache.size).toBe(4);
    const jti = parseCredential(chain[1] as string, 1).claims.jti;
    revocations.put(withRevocation(emptyRevocationList(c.ma.privateKey, c.ma.urn), { jti, reason: 'test', time: T0 }));
    // Link 1 and the leaf go; the root and the unrelated chain stay.
    expect(cache.size).toBe(2);
    expectRule(() => verifyAs(c, chain, { cache, revocations }), 1, 'revoked');
    expect(verifyAs(c, other, { cache, revocations }).jtis).toHaveLength(1);
  });

  it('a revoked key clears every prefix signed by or delegated to it', () => {
    const c = cast();
    const cache = new ChainCache();
    const revocations = new RevocationSet({ cache });
    const chain = forgeChain(standardSpecs(c));
    verifyAs(c, chain, { cache, revocations });
    revocations.put(withRevocation(emptyRevocationList(c.ma.privateKey), { kid: c.sp.kid, reason: 'lost', time: T0 }));
    expect(cache.size).toBe(1);
    expectRule(() => verifyAs(c, chain, { cache, revocations }), 1, 'revoked-key');
  });

  it('a tampered link after a cached prefix fails exactly as without the cache', () => {
    const c = cast();
    const cache = new ChainCache();
    const specs = standardSpecs(c);
    const chain = forgeChain(specs);
    verifyAs(c, chain, { cache });
    const bad = [
      chain[0] as string,
      chain[1] as string,
      forgeChain([
        specs[0] as LinkSpec,
        specs[1] as LinkSpec,
        { ...(specs[2] as LinkSpec), claims: { priv: ['sliver.exec'] } },
      ])[2] as string,
    ];
    expectRule(() => verifyAs(c, bad, { cache }), 2, 'prf');
    const widened = [
      chain[0] as string,
      chain[1] as string,
      forgeLink({ ...(specs[2] as LinkSpec), claims: { priv: ['sliver.exec'] } }, 2, chain[1]),
    ];
    expectRule(() => verifyAs(c, widened, { cache }), 2, 'priv');
  });

  it('stays within its bounds', () => {
    const c = cast();
    const cache = new ChainCache({ maxEntries: 5 });
    for (let i = 0; i < 10; i++) verifyAs(c, forgeChain([{ iss: c.ma, sub: c.alice }]), { cache });
    expect(cache.size).toBe(5);
  });
});

describe('the trust store', () => {
  it('roots only the domain of a bundle', () => {
    const c = cast();
    const chain = forgeChain([{ iss: c.ma, sub: c.alice, claims: { tgt: ['urn:fedlab:emulab.test:node:*'] } }]);
    expectRule(() => verifyAs(c, chain, { object: 'urn:fedlab:emulab.test:node:n1' }), 0, 'trust-anchor');
  });

  it('never merges bundles: replacing one domain leaves the other alone, and an older serial is refused', () => {
    const c = cast();
    const newMa = principal('urn:fedlab:emulab.test:authority:ma2');
    c.trust.addBundle(fakeBundle('emulab.test', [newMa], 2));
    expect(c.trust.anchorsFor(c.otherMa.kid)).toEqual([]);
    expect(c.trust.anchorsFor(c.ma.kid)).toHaveLength(1);
    expect(() => c.trust.addBundle(fakeBundle('emulab.test', [c.otherMa], 1))).toThrow(InvalidArgumentError);
    expect(c.trust.domains()).toEqual(['emulab.test', 'plc.test']);
  });

  it('an explicit anchor roots only its targets (a node owner for its node)', () => {
    const c = cast();
    const owner = principal('urn:fedlab:plc.test:owner:olivia');
    const trust = new TrustStore();
    trust.addAnchor({ urn: owner.urn, jwk: owner.jwk, targets: [NODE_N1] });
    const ok = forgeChain([{ iss: owner, sub: c.alice, claims: { tgt: [NODE_N1] } }]);
    expect(verifyAs(c, ok, { trust }).targets).toEqual([NODE_N1]);
    const wide = forgeChain([{ iss: owner, sub: c.alice, claims: { tgt: [ALL_NODES] } }]);
    expectRule(() => verifyAs(c, wide, { trust }), 0, 'trust-anchor');
    expect(trust.removeAnchor(owner.kid)).toBe(1);
    expectRule(() => verifyAs(c, ok, { trust }), 0, 'trust-anchor');
  });

  it('the slice authority that created a slice roots chains over that slice', () => {
    const c = cast();
    const peerSa = principal('urn:fedlab:emulab.test:authority:sa');
    const slice = 'urn:fedlab:emulab.test:slice:s1';
    const trust = new TrustStore();
    trust.addAnchor({ urn: peerSa.urn, jwk: peerSa.jwk, targets: [slice] });
    const chain = forgeChain([{ iss: peerSa, sub: c.alice, claims: { tgt: [slice], priv: ['sliver.exec', 'slice.read'] } }]);
    expect(verifyAs(c, chain, { trust, object: slice, privilege: 'sliver.exec' }).root.issuer).toBe(peerSa.urn);
  });

  it('asks the peering policy with the anchor, target and privilege', () => {
    const c = cast();
    const seen: unknown[] = [];
    c.trust.setPeeringPolicy((q) => {
      seen.push({
        anchor: q.anchor.urn,
        anchorDomain: q.anchorDomain,
        target: q.target,
        targetDomain: q.targetDomain,
        privilege: q.privilege,
      });
      return true;
    });
    const chain = forgeChain([{ iss: c.otherMa, sub: c.alice }]);
    verifyAs(c, chain);
    expect(seen).toEqual([
      { anchor: c.otherMa.urn, anchorDomain: 'emulab.test', target: ALL_NODES, targetDomain: 'plc.test', privilege: 'sliver.create' },
    ]);
  });

  it('refuses an anchor without scope', () => {
    const t = new TrustStore();
    expect(() => t.addAnchor({ urn: 'urn:fedlab:plc.test:owner:o', jwk: principal('urn:fedlab:plc.test:owner:o').jwk })).toThrow(
      InvalidArgumentError,
    );
    expect(t.isEmpty).toBe(true);
  });
});

describe('verifyChain input', () => {
  it('takes the holder by JWK as well as by thumbprint', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const g = verifyChain({
      chain,
      trust: c.trust,
      holder: { urn: c.alice.urn, jwk: c.alice.jwk },
      privilege: null,
      object: null,
      now: NOW,
      revocations: new RevocationSet({ cache: null }),
      cache: null,
    });
    expect(g.holder.thumbprint).toBe(c.alice.kid);
  });
});
