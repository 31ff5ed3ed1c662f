// A node that held no list of an issuer and got only the first (unstamped) parts of a snapshot holds the
// list as incomplete: stamped long expired, so the verifier refuses that issuer's chains (UNAVAILABLE)
// until the stamped last part arrives — not a list without next_update, which would never go stale.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RevocationStore } from '../../services/core/credentials/index.js';
import { parseSignedRevocationUpdate, signRevocationDelta } from '../../services/core/credentials/revocation-delta.js';
import { UnavailableError } from '../../services/core/errors.js';
import { Store } from '../../services/core/store/store.js';
import { T0, cast, forgeChain, standardSpecs, testJti, verifyAs } from './credentials-fixtures.js';

describe('a partly delivered snapshot', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-incomplete-'));
    store = await Store.open(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is held as stale until its stamped last part arrives', async () => {
    const c = cast();
    const chain = forgeChain(standardSpecs(c));
    const rs = await RevocationStore.open(store, { cache: null });
    verifyAs(c, chain, { revocations: rs.set });
    const entry = () => ({ jti: testJti(), reason: 'x', time: T0 });
    const first = signRevocationDelta(c.sa.privateKey, { iss: c.sa.urn, base: 0, version: 1, entries: [entry()] });
    const last = signRevocationDelta(c.sa.privateKey, {
      iss: c.sa.urn,
      base: 1,
      version: 2,
      entries: [entry()],
      validity: { iat: T0, nextUpdate: T0 + 600 },
    });
    expect(await rs.importUpdate(parseSignedRevocationUpdate(first), T0)).toBe('installed');
    expect(rs.listFor(c.sa.kid)?.freshness?.refuseAfter).toBeLessThan(T0);
    expect(() => verifyAs(c, chain, { revocations: rs.set })).toThrow(UnavailableError);
    // Kept so across a reload.
    const reopened = await RevocationStore.open(store, { cache: null });
    expect(() => verifyAs(c, chain, { revocations: reopened.set })).toThrow(UnavailableError);
    expect(await rs.importUpdate(parseSignedRevocationUpdate(last), T0)).toBe('installed');
    expect(rs.listFor(c.sa.kid)?.freshness).toMatchObject({ version: 2, nextUpdate: T0 + 600 });
    verifyAs(c, chain, { revocations: rs.set });
  });
});
