// A full disk loses nothing acknowledged: the store refuses writes after the first error (UNAVAILABLE
// naming the cause), keeps reads, recovers by itself once space is freed, and a restart finds every
// acknowledged write and none of the refused ones. Without the fail-safe store, LevelDB's log writer
// misframes every record written after a failed append and the reopen drops them.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../services/core/errors.js';
import { Store } from '../../services/core/store/store.js';
import { waitFor } from '../helpers/servers.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../helpers/tmpfs.js';

const skip = tmpfsUnavailable();
if (skip) console.warn(`skipping store disk-full tests: ${skip}`);

describe.skipIf(skip !== undefined)('store on a full disk', () => {
  let fs: Tmpfs | undefined;
  afterEach(() => fs?.unmount());

  it('refuses writes after the first error, recovers after space is freed, and a restart finds exactly the acknowledged writes', async () => {
    fs = mountTmpfs(2048);
    const dir = join(fs.dir, 'db');
    const store = await Store.open(dir, { retryMs: 20, maxRetryMs: 100 });
    const t = store.table<{ n: number; pad: string }>('records');
    const acked = new Set<string>();
    const refused = new Set<string>();
    const pad = 'x'.repeat(900);
    const attempt = async (key: string, n: number, viaBatch: boolean): Promise<void> => {
      try {
        if (viaBatch) await store.batch().put(t, key, { n, pad }).put(t, `${key}.b`, { n, pad }).write();
        else await t.put(key, { n, pad });
        acked.add(key);
      } catch (err) {
        expect(err).toBeInstanceOf(UnavailableError);
        expect((err as Error).message).toMatch(/refuses writes since .*disk full .*nothing was changed/);
        refused.add(key);
      }
    };
    for (let i = 0; i < 20; i++) await attempt(`before.${i}`, i, i % 2 === 0);
    expect(acked.size).toBe(20);

    fs.fill(16 * 1024);
    // Many writes at once, so some are queued behind the one that fails.
    for (let round = 0; round < 10; round++)
      await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(`full.${round}.${i}`, i, i % 3 === 0)));
    expect(refused.size).toBeGreaterThan(0);
    expect(store.failure?.cause).toMatch(/disk full/);
    // Reads go on while writes are refused.
    expect((await t.get('before.1'))?.n).toBe(1);

    fs.free();
    await waitFor(() => store.failure === undefined, 10_000, 'the store to recover');
    for (let i = 0; i < 200; i++) await attempt(`after.${i}`, i, i % 2 === 0);
    expect([...acked].filter((k) => k.startsWith('after.'))).toHaveLength(200);
    await store.close();

    const reopened = await Store.open(dir);
    try {
      const rt = reopened.table<{ n: number }>('records');
      const missing: string[] = [];
      for (const k of acked) if ((await rt.get(k)) === undefined) missing.push(k);
      expect(missing).toEqual([]);
      const present: string[] = [];
      for (const k of refused) if ((await rt.get(k)) !== undefined || (await rt.get(`${k}.b`)) !== undefined) present.push(k);
      expect(present).toEqual([]);
    } finally {
      await reopened.close();
    }
  });

  it('a store that cannot recover keeps refusing and closes cleanly', async () => {
    fs = mountTmpfs(1024);
    const store = await Store.open(join(fs.dir, 'db'), { retryMs: 20, maxRetryMs: 40 });
    const t = store.table<string>('t');
    await t.put('a', 'kept');
    fs.fill(0);
    let refusedOnce = false;
    for (let i = 0; i < 400 && !refusedOnce; i++)
      refusedOnce = await t.put(`k${i}`, 'y'.repeat(2000)).then(
        () => false,
        () => true,
      );
    expect(refusedOnce).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    await expect(t.put('later', 'no')).rejects.toThrow(/refuses writes/);
    expect(await t.get('a')).toBe('kept');
    await store.close();
  });
});
