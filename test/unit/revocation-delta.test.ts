// Compact revocation lists and their delivery in bounded messages: entries carry their credential's exp
// and leave after it (compaction, with who revoked them); caps in all and per revoker refuse
// RESOURCE_EXHAUSTED naming the cap; signed deltas apply from their base only, never roll back, and only
// a stamped part moves freshness on; an update plan is the whole list when small, else deltas from the
// version held or a snapshot in parts, every message under the bound, and applying the parts in order
// gives the issuer's live entries.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RevocationLedger, RevocationStore } from '../../services/core/credentials/index.js';
import {
  applyRevocationDelta,
  parseSignedRevocationUpdate,
  signRevocationDelta,
} from '../../services/core/credentials/revocation-delta.js';
import { groupForCalls, MAX_CALL_BYTES, planUpdates } from '../../services/core/credentials/revocation-plan.js';
import { EXPIRED_ENTRY_MARGIN_S, type RevocationEntry } from '../../services/core/credentials/revocation.js';
import { FedlabError, InvalidArgumentError, ResourceExhaustedError } from '../../services/core/errors.js';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { T0, principal, testJti } from './credentials-fixtures.js';

const issuer = principal('urn:fedlab:plc.test:authority:sa');
const provider = 'urn:fedlab:plc.test:sp:acme';
const validity = { iat: T0, nextUpdate: T0 + 600 };

function entries(n: number, exp?: number): RevocationEntry[] {
  return Array.from({ length: n }, () => ({ jti: testJti(), reason: 'gone', time: T0, ...(exp !== undefined ? { exp } : {}) }));
}

describe('compact revocation lists and deltas', () => {
  let dir: string;
  let store: Store;
  let now: number;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-delta-'));
    store = await Store.open(dir);
    now = T0 * 1000;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ledgerOn = (rs: RevocationStore, caps = { maxEntries: 5, maxEntriesPerRevoker: 2 }) =>
    new RevocationLedger({
      store,
      revocations: rs,
      issuerKey: issuer.privateKey,
      issuerUrn: issuer.urn,
      metaTable: 'meta',
      now: () => now,
      log: silentLogger(),
      caps,
    });

  it('caps live entries per revoker and in all (RESOURCE_EXHAUSTED naming the cap); expired entries leave and free the caps', async () => {
    const rs = await RevocationStore.open(store, { cache: null });
    const ledger = ledgerOn(rs);
    await ledger.revoke({ jti: testJti() }, 'a', provider, { exp: T0 + 60, capRevoker: true });
    await ledger.revoke({ jti: testJti() }, 'b', provider, { exp: T0 + 60, capRevoker: true });
    const third = await ledger.revoke({ jti: testJti() }, 'c', provider, { exp: T0 + 60, capRevoker: true }).catch((e: unknown) => e);
    expect(third).toBeInstanceOf(ResourceExhaustedError);
    expect((third as FedlabError).details).toMatchObject({ rule: 'revocation-cap', limit: 'max_entries_per_revoker' });
    expect((third as Error).message).toMatch(/revocation\.max_entries_per_revoker = 2/);
    // Administrators are not counted per revoker, but the list's own cap holds for everyone.
    for (let i = 0; i < 3; i++) await ledger.revoke({ jti: testJti() }, 'admin', 'urn:fedlab:plc.test:user:root');
    const full = await ledger
      .revoke({ kid: principal('urn:fedlab:plc.test:sp:x').kid }, 'k', 'urn:fedlab:plc.test:user:root')
      .catch((e: unknown) => e);
    expect((full as FedlabError).details).toMatchObject({ limit: 'max_entries' });
    expect(ledger.version).toBe(5);

    // Past exp + margin the provider's two entries leave with their "revoked by" records.
    now = (T0 + 60 + EXPIRED_ENTRY_MARGIN_S + 1) * 1000;
    expect(await ledger.compact()).toBe(2);
    expect(ledger.size).toBe(3);
    expect(ledger.version).toBe(5);
    expect(await ledger.liveBy(provider)).toBe(0);
    expect(await store.table('meta').count()).toBe(3);
    await ledger.revoke({ jti: testJti() }, 'd', provider, { exp: T0 + 9_999, capRevoker: true });
    const page = await ledger.page({ sinceVersion: 0, pageToken: '', pageSize: 2 });
    expect(page.entries.map((e) => e.version)).toEqual([3, 4]);
    const next = await ledger.page({ sinceVersion: 0, pageToken: page.nextPageToken, pageSize: 10 });
    expect(next.entries.map((e) => e.version)).toEqual([5, 6]);
    expect(next.nextPageToken).toBe('');

    // After a reopen the versions and the counts are the same.
    const again = ledgerOn(await RevocationStore.open(store, { cache: null }));
    expect((await again.page({ sinceVersion: 4, pageToken: '', pageSize: 10 })).entries.map((e) => e.version)).toEqual([5, 6]);
    expect(await again.liveBy(provider)).toBe(1);
  });

  it('applies a delta from its base only, never rolls back, and moves freshness only with a stamped part', async () => {
    const rs = await RevocationStore.open(store, { cache: null });
    const [a, b, c] = entries(3);
    const d1 = parseSignedRevocationUpdate(signRevocationDelta(issuer.privateKey, { base: 0, version: 2, entries: [a!, b!] }));
    const d2 = parseSignedRevocationUpdate(
      signRevocationDelta(issuer.privateKey, { iss: issuer.urn, base: 2, version: 3, entries: [c!], validity }),
    );
    expect(d1.kind).toBe('delta');
    expect(await rs.importUpdate(d2, T0)).toBe('gap');
    expect(await rs.importUpdate(d1, T0)).toBe('installed');
    // An unstamped part brings no freshness: begun from nothing, the list is held as long expired.
    expect(rs.listFor(issuer.kid)?.freshness).toMatchObject({ version: 2, nextUpdate: 1 });
    expect(await rs.importUpdate(d2, T0)).toBe('installed');
    expect(rs.listFor(issuer.kid)?.freshness).toMatchObject({ version: 3, nextUpdate: T0 + 600 });
    expect(await rs.importUpdate(d1, T0)).toBe('current');
    expect(rs.list(issuer.kid)?.entries.map((e) => e.jti)).toEqual([a!.jti, b!.jti, c!.jti]);
    // A re-stamp of the same version only moves next_update on.
    const restamp = signRevocationDelta(issuer.privateKey, {
      base: 3,
      version: 3,
      entries: [],
      validity: { iat: T0 + 10, nextUpdate: T0 + 700 },
    });
    expect(await rs.importUpdate(parseSignedRevocationUpdate(restamp), T0)).toBe('installed');
    expect(rs.listFor(issuer.kid)?.freshness?.nextUpdate).toBe(T0 + 700);
    // Kept on disk, reloaded whole.
    const reopened = await RevocationStore.open(store, { cache: null });
    expect(reopened.listFor(issuer.kid)?.jtis.has(c!.jti as string)).toBe(true);
    expect(reopened.list(issuer.kid)?.version).toBe(3);
  });

  it('a holder fed deltas drops the entries that expired with the next stamped part', async () => {
    const rs = await RevocationStore.open(store, { cache: null });
    const [soon, later] = [entries(1, T0 + 60)[0]!, entries(1, T0 + 86_400)[0]!];
    const d1 = signRevocationDelta(issuer.privateKey, { base: 0, version: 2, entries: [soon, later], validity });
    expect(await rs.importUpdate(parseSignedRevocationUpdate(d1), T0)).toBe('installed');
    expect(rs.list(issuer.kid)?.entries).toHaveLength(2);
    const nowS = T0 + 60 + EXPIRED_ENTRY_MARGIN_S + 1;
    const d2 = signRevocationDelta(issuer.privateKey, {
      base: 2,
      version: 2,
      entries: [],
      validity: { iat: nowS, nextUpdate: nowS + 600 },
    });
    expect(await rs.importUpdate(parseSignedRevocationUpdate(d2), nowS)).toBe('installed');
    expect(rs.list(issuer.kid)?.entries.map((e) => e.jti)).toEqual([later.jti]);
    expect(rs.listFor(issuer.kid)?.jtis.has(soon.jti as string)).toBe(false);
    const reopened = await RevocationStore.open(store, { cache: null });
    expect(reopened.list(issuer.kid)?.entries).toHaveLength(1);
  });

  it('refuses altered or ill-formed deltas', () => {
    const jws = signRevocationDelta(issuer.privateKey, { base: 0, version: 1, entries: entries(1) });
    const [h, p, s] = jws.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, version: 9 })).toString('base64url')}.${s}`;
    expect(() => parseSignedRevocationUpdate(forged)).toThrow(/signature does not verify/);
    expect(() => signRevocationDelta(issuer.privateKey, { base: 0, version: 1, entries: entries(2) })).toThrow(InvalidArgumentError);
    expect(() => signRevocationDelta(issuer.privateKey, { base: 2, version: 1, entries: [] })).toThrow(InvalidArgumentError);
    const other = principal('urn:fedlab:plc.test:authority:other');
    const held = { v: 1 as const, jwk: other.jwk, kid: other.kid, version: 0, entries: [] };
    const u = parseSignedRevocationUpdate(jws);
    if (u.kind !== 'delta') throw new Error('expected a delta');
    expect(() => applyRevocationDelta(held, u.delta, T0)).toThrow(TypeError);
  });

  it('plans the whole list when small, else deltas from the version held or a snapshot in bounded parts', async () => {
    const rs = await RevocationStore.open(store, { cache: null });
    await rs.revokeMany(issuer.privateKey, entries(3, T0 + 3600), issuer.urn);
    const small = planUpdates({ revocations: rs, privateKey: issuer.privateKey, iss: issuer.urn, from: 1, validity });
    expect(small).toMatchObject({ kind: 'list', version: 3 });
    await rs.revokeMany(issuer.privateKey, entries(3_000, T0 + 3600), issuer.urn);
    const maxBytes = 64 * 1024;
    const snap = planUpdates({ revocations: rs, privateKey: issuer.privateKey, iss: issuer.urn, validity, maxBytes });
    expect(snap.kind).toBe('snapshot');
    expect(snap.messages.length).toBeGreaterThan(3);
    for (const m of snap.messages) expect(m.length).toBeLessThanOrEqual(maxBytes);
    for (const call of groupForCalls(snap.messages)) expect(call.join('').length).toBeLessThanOrEqual(MAX_CALL_BYTES);
    // A receiver taking the parts in order holds the issuer's entries, fresh only after the last.
    const theirs = await RevocationStore.open(await Store.open(join(dir, 'r')), { cache: null });
    for (const [i, m] of snap.messages.entries()) {
      expect(await theirs.importUpdate(parseSignedRevocationUpdate(m), T0)).toBe('installed');
      expect((theirs.listFor(issuer.kid)?.freshness?.nextUpdate ?? 0) > T0).toBe(i === snap.messages.length - 1);
    }
    expect(theirs.list(issuer.kid)?.entries.length).toBe(3_003);
    // One more revocation: one small delta from the version held.
    await rs.revokeMany(issuer.privateKey, entries(1, T0 + 3600), issuer.urn);
    const delta = planUpdates({ revocations: rs, privateKey: issuer.privateKey, iss: issuer.urn, from: 3_003, validity, maxBytes });
    expect(delta).toMatchObject({ kind: 'delta', version: 3_004 });
    expect(delta.messages).toHaveLength(1);
    expect(delta.messages[0]!.length).toBeLessThan(2_000);
    expect(await theirs.importUpdate(parseSignedRevocationUpdate(delta.messages[0]!), T0)).toBe('installed');
    expect(theirs.list(issuer.kid)?.version).toBe(3_004);
    await theirs.store.close();
  });
});
