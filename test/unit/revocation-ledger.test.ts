// RevocationLedger over a real LevelDB: idempotent revoke, who revoked what written in the same batch
// as the entry (one LevelDB write, present together after a reopen, absent together when the write
// fails), paged listing with `v<N>` tokens, and bad input refused with nothing changed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REVOCATION_TABLES, RevocationLedger, RevocationStore, revocationTarget } from '../../services/core/credentials/index.js';
import { FedlabError, InvalidArgumentError } from '../../services/core/errors.js';
import { silentLogger } from '../../services/core/log.js';
import { Store, type WrittenOp } from '../../services/core/store/store.js';
import { encodePageToken } from '../../services/core/paging.js';
import { T0, principal, testJti } from './credentials-fixtures.js';

const META = 'test-revocation-meta';
const issuer = principal('urn:fedlab:plc.test:authority:ma');
const admin = 'urn:fedlab:plc.test:user:admin';
const other = 'urn:fedlab:plc.test:user:other';

function fieldOf(err: unknown): unknown {
  return err instanceof FedlabError ? err.details.field : undefined;
}

describe('RevocationLedger', () => {
  let dir: string;
  let store: Store;
  let now: number;

  const open = async (s: Store): Promise<{ rs: RevocationStore; ledger: RevocationLedger }> => {
    const rs = await RevocationStore.open(s, { cache: null });
    const ledger = new RevocationLedger({
      store: s,
      revocations: rs,
      issuerKey: issuer.privateKey,
      issuerUrn: issuer.urn,
      metaTable: META,
      now: () => now,
      log: silentLogger(),
    });
    return { rs, ledger };
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-ledger-'));
    store = await Store.open(dir);
    now = T0 * 1000;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('revokes once: a repeat returns the existing entry and does not raise the version', async () => {
    const { ledger } = await open(store);
    const jti = testJti();
    const first = await ledger.revoke({ jti }, 'compromised', admin);
    expect(first).toEqual({ version: 1, entry: { item: { jti, reason: 'compromised', time: T0 }, revokedBy: admin, version: 1 } });
    now += 60_000;
    const again = await ledger.revoke({ jti }, 'again', other);
    expect(again).toEqual(first);
    const key = await ledger.revoke({ kid: principal('urn:fedlab:plc.test:sp:x').kid }, 'lost', other);
    expect(key.version).toBe(2);
    expect(key.entry).toMatchObject({ revokedBy: other, version: 2, item: { time: T0 + 60 } });
    expect(ledger.version).toBe(2);
  });

  it('writes the entry and who revoked it in one LevelDB batch; both are there after a reopen', async () => {
    const { ledger } = await open(store);
    const writes: (readonly WrittenOp[])[] = [];
    const stop = store.onWrite((ops) => void writes.push(ops));
    const jti = testJti();
    await ledger.revoke({ jti }, 'member left', admin);
    await ledger.revoke({ jti }, 'repeat', other);
    stop();
    expect(writes).toHaveLength(1);
    const tables = (writes[0] ?? []).map((op) => op.table);
    expect(tables.sort()).toEqual([META, REVOCATION_TABLES.entries, REVOCATION_TABLES.lists].sort());

    await store.close();
    store = await Store.open(dir);
    const reopened = await open(store);
    expect(reopened.ledger.version).toBe(1);
    const page = await reopened.ledger.page({ sinceVersion: 0, pageToken: '', pageSize: 10 });
    expect(page.entries).toEqual([{ item: { jti, reason: 'member left', time: T0 }, revokedBy: admin, version: 1 }]);
    expect(await store.table(META).get(`jti:${jti}`)).toEqual({ revokedBy: admin, version: 1 });
  });

  it('leaves neither the entry nor who revoked it when the write fails', async () => {
    const { ledger } = await open(store);
    await store.close();
    await expect(ledger.revoke({ jti: testJti() }, 'x', admin)).rejects.toThrow();
    expect(ledger.version).toBe(0);
    store = await Store.open(dir);
    expect(await store.table(REVOCATION_TABLES.entries).count()).toBe(0);
    expect(await store.table(REVOCATION_TABLES.lists).count()).toBe(0);
    expect(await store.table(META).count()).toBe(0);
  });

  it('reads who revoked what again after a failed read, rather than refusing every later Revoke', async () => {
    const { ledger } = await open(store);
    await ledger.revoke({ jti: testJti() }, 'first', admin);
    // The per-revoker counts are read from the store once; that read fails once here.
    const meta = store.table(META);
    const getMany = meta.getMany.bind(meta);
    let failures = 1;
    meta.getMany = ((keys: string[]) =>
      failures-- > 0 ? Promise.reject(new Error('IO error: disk')) : getMany(keys)) as typeof meta.getMany;
    const fresh = new RevocationLedger({
      store,
      revocations: (await open(store)).rs,
      issuerKey: issuer.privateKey,
      issuerUrn: issuer.urn,
      metaTable: META,
      now: () => now,
      log: silentLogger(),
    });
    await expect(fresh.revoke({ jti: testJti() }, 'x', other, { capRevoker: true })).rejects.toThrow(/IO error/);
    const ok = await fresh.revoke({ jti: testJti() }, 'y', other, { capRevoker: true });
    expect(ok.entry.revokedBy).toBe(other);
    expect(await fresh.liveBy(other)).toBe(1);
  });

  it('names the issuer as revoker of an entry that has no record of who', async () => {
    const { rs, ledger } = await open(store);
    const jti = testJti();
    await rs.revoke(issuer.jwk, { jti, reason: 'imported', time: T0 }, issuer.urn);
    expect((await ledger.page({ sinceVersion: 0, pageToken: '', pageSize: 10 })).entries[0]?.revokedBy).toBe(issuer.urn);
    expect((await ledger.revoke({ jti }, 'again', admin)).entry.revokedBy).toBe(issuer.urn);
  });

  it('pages in version order with tokens naming the version a page ended at, after since_version', async () => {
    const { ledger } = await open(store);
    const jtis = Array.from({ length: 5 }, () => testJti());
    for (const [i, jti] of jtis.entries()) await ledger.revoke({ jti }, `r${i}`, i % 2 ? other : admin);
    const seen: string[] = [];
    const tokens: string[] = [];
    let token = '';
    do {
      const page = await ledger.page({ sinceVersion: 0, pageToken: token, pageSize: 2 });
      expect(page.version).toBe(5);
      seen.push(...page.entries.map((e) => `${e.version}:${e.item.jti}:${e.revokedBy}`));
      token = page.nextPageToken;
      tokens.push(token);
    } while (token);
    expect(seen).toEqual(jtis.map((j, i) => `${i + 1}:${j}:${i % 2 ? other : admin}`));
    expect(tokens.map((t) => Buffer.from(t, 'base64url').toString())).toEqual(['revocations\n2', 'revocations\n4', '']);
    const since = await ledger.page({ sinceVersion: 3, pageToken: '', pageSize: 10 });
    expect(since.entries.map((e) => e.version)).toEqual([4, 5]);
    expect(since.nextPageToken).toBe('');
    // The later of since_version and the token wins.
    const both = await ledger.page({ sinceVersion: 4, pageToken: encodePageToken('revocations', '1'), pageSize: 10 });
    expect(both.entries.map((e) => e.version)).toEqual([5]);
    expect((await ledger.page({ sinceVersion: 9, pageToken: '', pageSize: 10 })).entries).toEqual([]);
  });

  it('refuses bad input with a clear error and changes nothing', async () => {
    const { ledger } = await open(store);
    for (const pageToken of [
      'nope',
      Buffer.from('v1').toString('base64url'),
      encodePageToken('revocations', '-1'),
      encodePageToken('revocations', '1234567890123456'),
      encodePageToken('nodes', '1'),
    ]) {
      const err = await ledger.page({ sinceVersion: 0, pageToken, pageSize: 10 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(/^page_token is not one this server gave out.*; start again with an empty token$/);
      expect(fieldOf(err)).toBe('page_token');
    }
    const since = await ledger.page({ sinceVersion: -1, pageToken: '', pageSize: 10 }).catch((e: unknown) => e);
    expect([since instanceof InvalidArgumentError, (since as Error).message, fieldOf(since)]).toEqual([
      true,
      'since_version must be 0 or more',
      'since_version',
    ]);
    await expect(ledger.page({ sinceVersion: 0, pageToken: '', pageSize: 0 })).rejects.toThrow(RangeError);

    for (const [jti, kid] of [
      ['', ''],
      [testJti(), issuer.kid],
    ] as const) {
      let err: unknown;
      try {
        revocationTarget(jti, kid);
      } catch (e) {
        err = e;
      }
      expect([err instanceof InvalidArgumentError, (err as Error).message, fieldOf(err)]).toEqual([
        true,
        'give exactly one of jti and key_thumbprint',
        'jti',
      ]);
    }
    expect(revocationTarget('', issuer.kid)).toEqual({ kid: issuer.kid });

    await expect(ledger.revoke({ jti: 'not-a-jti' }, 'x', admin)).rejects.toThrow(InvalidArgumentError);
    await expect(ledger.revoke({ kid: 'short' }, 'x', admin)).rejects.toThrow(/kid must be a key thumbprint/);
    await expect(ledger.revoke({ jti: testJti() }, 'x'.repeat(201), admin)).rejects.toThrow(InvalidArgumentError);
    expect(ledger.version).toBe(0);
    expect(await store.table(META).count()).toBe(0);
    expect(await store.table(REVOCATION_TABLES.entries).count()).toBe(0);
  });
});
