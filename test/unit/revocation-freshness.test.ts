// Revocation list freshness in services/core: iat/next_update checked and signed, which copy is
// fresher, persisted by the store, and the verifier failing closed past next_update + grace.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  RevocationSet,
  RevocationStore,
  checkRevocationList,
  emptyRevocationList,
  isFresherList,
  parseSignedRevocationList,
  revocationConfigSchema,
  signRevocationList,
  withRevocation,
} from '../../services/core/credentials/index.js';
import { InvalidArgumentError, UnavailableError } from '../../services/core/errors.js';
import { Store } from '../../services/core/store/store.js';
import { T0, cast, forgeChain, principal, standardSpecs, testJti, verifyAs } from './credentials-fixtures.js';

describe('revocation list freshness', () => {
  it('checks iat and next_update: both or neither, whole seconds, next_update after iat', () => {
    const l = emptyRevocationList(principal('urn:fedlab:plc.test:authority:sa').privateKey);
    expect(checkRevocationList({ ...l, iat: T0, next_update: T0 + 60 })).toMatchObject({ iat: T0, next_update: T0 + 60 });
    for (const bad of [
      { iat: T0 },
      { next_update: T0 },
      { iat: T0, next_update: T0 },
      { iat: 1.5, next_update: 9 },
      { iat: -1, next_update: 9 },
    ])
      expect(() => checkRevocationList({ ...l, ...bad })).toThrow(InvalidArgumentError);
  });

  it('signs them with the list and a new entry does not carry them over', () => {
    const sa = principal('urn:fedlab:plc.test:authority:sa');
    const l = emptyRevocationList(sa.privateKey, sa.urn);
    const read = parseSignedRevocationList(signRevocationList(l, sa.privateKey, { iat: T0, nextUpdate: T0 + 60 }));
    expect(read).toMatchObject({ version: 0, iat: T0, next_update: T0 + 60 });
    const next = withRevocation(read, { jti: testJti(), reason: 'r', time: T0 });
    expect(next.iat).toBeUndefined();
    expect(next.next_update).toBeUndefined();
    expect(parseSignedRevocationList(signRevocationList(l, sa.privateKey)).iat).toBeUndefined();
  });

  it('orders copies: a higher version, or the same version signed later; never a rollback', () => {
    const l = emptyRevocationList(principal('urn:fedlab:plc.test:authority:sa').privateKey);
    const at = (iat: number, list = l) => ({ ...list, iat, next_update: iat + 60 });
    const v1 = withRevocation(l, { jti: testJti(), reason: 'r', time: T0 });
    expect(isFresherList(at(T0 + 1), at(T0))).toBe(true);
    expect(isFresherList(at(T0), at(T0))).toBe(false);
    expect(isFresherList(at(T0 - 1), at(T0))).toBe(false);
    expect(isFresherList(l, at(T0))).toBe(false);
    expect(isFresherList(at(T0), l)).toBe(true);
    expect(isFresherList(at(T0 - 100, v1), at(T0))).toBe(true);
    expect(isFresherList(at(T0 + 100), at(T0, v1))).toBe(false);
  });

  it('makes the verifier refuse a chain signed by an issuer whose list is past next_update + grace (UNAVAILABLE)', () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const set = new RevocationSet({ cache: null, graceS: 30 });
    set.put({ ...emptyRevocationList(c.sa.privateKey, c.sa.urn), iat: T0 - 100, next_update: T0 - 20 });
    verifyAs(c, chain, { revocations: set });
    set.put({ ...emptyRevocationList(c.sa.privateKey, c.sa.urn), iat: T0 - 99, next_update: T0 - 31 });
    expect(() => verifyAs(c, chain, { revocations: set })).toThrow(UnavailableError);
    expect(() => verifyAs(c, chain, { revocations: set })).toThrow(
      new RegExp(`revocation list of ${c.sa.urn} version 0 expired at .+; refusing its chains until a fresher list arrives`),
    );
    // A list of a key that signed no link of the chain changes nothing.
    const other = principal('urn:fedlab:plc.test:authority:other');
    set.put({ ...emptyRevocationList(other.privateKey), iat: 1, next_update: 2 });
    set.put({ ...emptyRevocationList(c.sa.privateKey, c.sa.urn), iat: T0, next_update: T0 + 60 });
    verifyAs(c, chain, { revocations: set });
  });

  it('has a config section with defaults', () => {
    expect(revocationConfigSchema.parse({})).toEqual({ next_update_s: 3600, grace_s: 900 });
    expect(() => revocationConfigSchema.parse({ next_update_s: 1 })).toThrow();
  });
});

describe('RevocationStore keeps iat / next_update', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-revocation-fresh-'));
    store = await Store.open(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports a re-publication of the same version, keeps entries, and reloads the freshness', async () => {
    const sa = principal('urn:fedlab:plc.test:authority:sa');
    const jti = testJti();
    const v1 = withRevocation(emptyRevocationList(sa.privateKey, sa.urn), { jti, reason: 'r', time: T0 });
    const rs = await RevocationStore.open(store, { cache: null, graceS: 10 });
    expect(await rs.importList({ ...v1, iat: T0, next_update: T0 + 60 })).toBe(true);
    expect(await rs.importList({ ...v1, iat: T0, next_update: T0 + 60 })).toBe(false);
    expect(await rs.importList({ ...v1, iat: T0 + 30, next_update: T0 + 90 })).toBe(true);
    expect(rs.listFor(sa.kid)?.freshness).toEqual({ issuer: sa.urn, version: 1, nextUpdate: T0 + 90, refuseAfter: T0 + 100 });
    const again = await RevocationStore.open(store, { cache: null, graceS: 10 });
    expect(again.list(sa.kid)).toMatchObject({ version: 1, iat: T0 + 30, next_update: T0 + 90, entries: [{ jti }] });
    expect(again.listFor(sa.kid)?.jtis.has(jti)).toBe(true);
  });
});
