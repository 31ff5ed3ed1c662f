// Revocation lists: the list type, signed list files (tamper-evident), version monotonicity, and the
// LevelDB-backed store services use (persisted, atomic, reloaded on open).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ChainCache,
  REVOCATION_TABLES,
  RevocationSet,
  RevocationStore,
  emptyRevocationList,
  parseCredential,
  parseSignedRevocationList,
  signRevocationList,
  withRevocation,
} from '../../services/core/credentials/index.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { Store } from '../../services/core/store/store.js';
import { T0, b64, cast, expectRule, forgeChain, principal, standardSpecs, testJti, verifyAs } from './credentials-fixtures.js';

describe('revocation lists', () => {
  it('raise their version by one per new entry; repeats change nothing', () => {
    const ma = principal('urn:fedlab:plc.test:authority:ma');
    const jti = testJti();
    const l0 = emptyRevocationList(ma.privateKey, ma.urn);
    expect(l0).toMatchObject({ v: 1, iss: ma.urn, kid: ma.kid, version: 0, entries: [] });
    const l1 = withRevocation(l0, { jti, reason: 'compromised', time: T0 });
    const l2 = withRevocation(l1, { kid: principal('urn:fedlab:plc.test:sp:x').kid, reason: 'lost', time: T0 });
    expect([l1.version, l2.version]).toEqual([1, 2]);
    expect(withRevocation(l2, { jti, reason: 'again', time: T0 + 1 })).toBe(l2);
  });

  it('reject malformed entries', () => {
    const l = emptyRevocationList(principal('urn:fedlab:plc.test:authority:ma').privateKey);
    expect(() => withRevocation(l, { jti: 'nope', reason: 'x', time: T0 })).toThrow(InvalidArgumentError);
    expect(() => withRevocation(l, { jti: testJti(), kid: 'x', reason: 'x', time: T0 } as never)).toThrow(InvalidArgumentError);
    expect(() => withRevocation(l, { jti: testJti(), reason: 'x'.repeat(201), time: T0 })).toThrow(InvalidArgumentError);
  });

  it('round-trip as signed files and refuse any alteration or another signer', () => {
    const ma = principal('urn:fedlab:plc.test:authority:ma', 'ed25519');
    const list = withRevocation(emptyRevocationList(ma.privateKey, ma.urn), { jti: testJti(), reason: 'r', time: T0 });
    const jws = signRevocationList(list, ma.privateKey);
    expect(parseSignedRevocationList(jws)).toEqual(list);
    const [h, , s] = jws.split('.');
    const forged = `${h}.${b64(JSON.stringify({ ...list, entries: [] }))}.${s}`;
    expect(() => parseSignedRevocationList(forged)).toThrow(/does not verify/);
    expect(() => signRevocationList(list, principal('urn:fedlab:plc.test:authority:ma').privateKey)).toThrow(InvalidArgumentError);
  });

  it('never roll back in a RevocationSet', () => {
    const ma = principal('urn:fedlab:plc.test:authority:ma');
    const set = new RevocationSet({ cache: null });
    const l1 = withRevocation(emptyRevocationList(ma.privateKey), { jti: testJti(), reason: 'r', time: T0 });
    const l2 = withRevocation(l1, { jti: testJti(), reason: 'r', time: T0 });
    expect(set.put(l2)).toBe(true);
    expect(set.put(l1)).toBe(false);
    expect(set.get(ma.kid)?.version).toBe(2);
    expect(set.listFor(ma.kid)?.jtis.size).toBe(2);
  });

  it('tell listeners what was newly revoked', () => {
    const ma = principal('urn:fedlab:plc.test:authority:ma');
    const set = new RevocationSet({ cache: null });
    const seen: unknown[] = [];
    set.onRevoke((i) => seen.push(i));
    const jti = testJti();
    const l1 = withRevocation(emptyRevocationList(ma.privateKey), { jti, reason: 'r', time: T0 });
    set.put(l1);
    set.put(withRevocation(l1, { kid: ma.kid, reason: 'r', time: T0 }));
    expect(seen).toEqual([
      { jti, issuerKid: ma.kid },
      { kid: ma.kid, issuerKid: ma.kid },
    ]);
  });
});

describe('RevocationStore (LevelDB)', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-revocations-'));
    store = await Store.open(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('persists revocations, reloads them on open, and the verifier sees them', async () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const jti = parseCredential(chain[2] as string, 2).claims.jti;
    const rs = await RevocationStore.open(store, { cache: null });
    const list = await rs.revoke(c.sa.privateKey, { jti, reason: 'member left', time: T0 }, c.sa.urn);
    expect(list.version).toBe(1);
    expect((await rs.revoke(c.sa.privateKey, { jti, reason: 'twice', time: T0 })).version).toBe(1);
    expectRule(() => verifyAs(c, chain, { revocations: rs }), 2, 'revoked');

    await store.close();
    store = await Store.open(dir);
    const reopened = await RevocationStore.open(store, { cache: null });
    expect(reopened.list(c.sa.kid)).toEqual(list);
    expectRule(() => verifyAs(c, chain, { revocations: reopened }), 2, 'revoked');
    expect(await store.table(REVOCATION_TABLES.entries).count()).toBe(1);
  });

  it('serialises concurrent revocations: every one lands, versions count them', async () => {
    const ma = principal('urn:fedlab:plc.test:authority:ma');
    const rs = await RevocationStore.open(store, { cache: null });
    await Promise.all(Array.from({ length: 20 }, () => rs.revoke(ma.privateKey, { jti: testJti(), reason: 'bulk', time: T0 })));
    expect(rs.list(ma.kid)?.version).toBe(20);
    expect(rs.list(ma.kid)?.entries).toHaveLength(20);
  });

  it("imports a peer's list only when newer, replacing its entries in one batch", async () => {
    const peer = principal('urn:fedlab:emulab.test:authority:ma');
    const rs = await RevocationStore.open(store, { cache: null });
    const a = testJti();
    const b = testJti();
    const v1 = withRevocation(emptyRevocationList(peer.privateKey, peer.urn), { jti: a, reason: 'r', time: T0 });
    const v2 = withRevocation(v1, { jti: b, reason: 'r', time: T0 });
    expect(await rs.importList(parseSignedRevocationList(signRevocationList(v2, peer.privateKey)))).toBe(true);
    expect(await rs.importList(v1)).toBe(false);
    expect(rs.listFor(peer.kid)?.jtis).toEqual(new Set([a, b]));
    const v3 = { ...v2, version: 3, entries: v2.entries.slice(1) };
    expect(await rs.importList(v3)).toBe(true);
    await store.close();
    store = await Store.open(dir);
    const reopened = await RevocationStore.open(store, { cache: null });
    expect(reopened.listFor(peer.kid)?.jtis).toEqual(new Set([b]));
  });

  it('exports its own list signed, and clears cached prefixes on revoke', async () => {
    const c = cast();
    const cache = new ChainCache();
    const rs = await RevocationStore.open(store, { cache });
    const chain = forgeChain(standardSpecs(c));
    verifyAs(c, chain, { cache, revocations: rs });
    expect(cache.size).toBe(3);
    await rs.revoke(c.ma.privateKey, { kid: c.sp.kid, reason: 'lost', time: T0 }, c.ma.urn);
    expect(cache.size).toBe(1);
    const exported = parseSignedRevocationList(rs.exportSigned(c.ma.privateKey));
    expect(exported).toMatchObject({ iss: c.ma.urn, kid: c.ma.kid, version: 1, entries: [{ kid: c.sp.kid, reason: 'lost', time: T0 }] });
    expect(parseSignedRevocationList(rs.exportSigned(c.bob.privateKey, c.bob.urn))).toMatchObject({ version: 0, entries: [] });
  });
});
