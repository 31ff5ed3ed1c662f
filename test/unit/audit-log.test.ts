// The audit log over a real LevelDB: a call's record goes into the same atomic batch as its change,
// a call that wrote nothing gets a record of its own, the hash chain verifies and names the first
// record that was edited or removed, pruning keeps it verifiable, and a reopened log continues it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AUDIT_TABLE, AuditLog, verifyAuditStore } from '../../services/core/audit/audit-log.js';
import { auditKey, type AuditRecord } from '../../services/core/audit/audit-chain.js';
import { ManualClock } from '../../services/core/clock.js';
import { silentLogger } from '../../services/core/log.js';
import { Store, type WrittenOp } from '../../services/core/store/store.js';

const call = (object: string) => ({
  method: '/fedlab.v1.Aggregate/Allocate',
  caller: 'urn:fedlab:a.test:authority:sa',
  jtis: ['j1', 'j2'],
  object,
});

describe('AuditLog', () => {
  let dir: string;
  let store: Store;
  const clock = new ManualClock();
  const open = (retentionMs = 0) => AuditLog.open(store, { now: () => clock.now(), log: silentLogger(), retentionMs });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-audit-'));
    store = await Store.open(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the record in the batch of the change it records, and a record of its own for a call that wrote nothing', async () => {
    const audit = await open();
    const slices = store.table<{ n: number }>('slices');
    const writes: (readonly WrittenOp[])[] = [];
    const stop = store.onWrite((ops) => void writes.push(ops));
    const ac = new AbortController();
    audit.begin(ac.signal, call('urn:fedlab:a.test:slice:s1'));
    await store.batch().put(slices, 's1', { n: 1 }).write({ signal: ac.signal });
    await slices.put('s1b', { n: 2 }, { signal: ac.signal }); // a second write of the same call carries nothing more
    await audit.finish(ac.signal, 'OK');
    const refused = new AbortController();
    audit.begin(refused.signal, call('urn:fedlab:a.test:slice:s2'));
    await audit.finish(refused.signal, 'PERMISSION_DENIED', 'grant-privilege');
    stop();
    expect(writes.map((w) => w.map((op) => op.table))).toEqual([['slices', AUDIT_TABLE], ['slices'], [AUDIT_TABLE]]);
    const records = await store.table<AuditRecord>(AUDIT_TABLE).values();
    expect(records.map((r) => [r.seq, r.object, r.outcome, r.rule])).toEqual([
      [0, 'urn:fedlab:a.test:slice:s1', 'committed', ''],
      [1, 'urn:fedlab:a.test:slice:s2', 'PERMISSION_DENIED', 'grant-privilege'],
    ]);
    expect(records[1]?.prev).toBe(records[0]?.hash);
    expect(await audit.verify()).toEqual({ ok: true, records: 2, head: records[1]?.hash });
  });

  it('names the first record that was edited or removed', async () => {
    const audit = await open();
    for (let i = 0; i < 5; i++) {
      const ac = new AbortController();
      audit.begin(ac.signal, call(`o${i}`));
      await audit.finish(ac.signal, 'OK');
    }
    const table = store.table<AuditRecord>(AUDIT_TABLE);
    const third = (await table.get(auditKey(2))) as AuditRecord;
    await table.put(auditKey(2), { ...third, caller: 'urn:fedlab:a.test:user:mallory' });
    expect(await verifyAuditStore(store)).toMatchObject({ ok: false, seq: 2, why: expect.stringMatching(/changed after it was written/) });
    await table.put(auditKey(2), third);
    expect((await verifyAuditStore(store)).ok).toBe(true);
    await table.del(auditKey(3));
    expect(await verifyAuditStore(store)).toMatchObject({ ok: false, seq: 3, why: expect.stringMatching(/record 3 is missing/) });
  });

  it('prunes by age keeping the chain verifiable, and a reopened log continues the chain', async () => {
    const audit = await open(60_000);
    for (let i = 0; i < 4; i++) {
      const ac = new AbortController();
      audit.begin(ac.signal, call(`o${i}`));
      await audit.finish(ac.signal, 'OK');
      clock.advance(30_000);
    }
    // Now: records at t0, +30 s, +60 s, +90 s; the clock is at +120 s, so the first two are past 60 s.
    expect(await audit.prune()).toBe(2);
    expect(await verifyAuditStore(store)).toMatchObject({ ok: true, records: 2 });
    const again = await open(60_000);
    const ac = new AbortController();
    again.begin(ac.signal, call('after-reopen'));
    await again.finish(ac.signal, 'OK');
    const check = await verifyAuditStore(store);
    expect(check).toMatchObject({ ok: true, records: 3 });
    expect((await store.table<AuditRecord>(AUDIT_TABLE).get(auditKey(4)))?.object).toBe('after-reopen');
  });

  it('leaves no record of a call whose write was refused as late, and the chain stays whole', async () => {
    const audit = await open();
    const t = store.table<number>('t');
    const ended = new AbortController();
    audit.begin(ended.signal, call('late'));
    ended.abort();
    await expect(t.put('k', 1, { signal: ended.signal })).rejects.toThrow(/before its change was committed/);
    await audit.finish(ended.signal, 'DEADLINE_EXCEEDED');
    const records = await store.table<AuditRecord>(AUDIT_TABLE).values();
    expect(records.map((r) => r.outcome)).toEqual(['DEADLINE_EXCEEDED']);
    expect(await t.get('k')).toBeUndefined();
    expect((await verifyAuditStore(store)).ok).toBe(true);
  });
});
