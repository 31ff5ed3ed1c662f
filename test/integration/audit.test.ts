// The audit log of a real management authority: a call that changed state and a refused one are
// recorded with who, what and how it ended; `fedlab audit ls|verify` read it with the service stopped;
// a one-byte edit or a deleted record makes verify fail naming the record, and the MA still starts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../services/core/store/store.js';
import { AUDIT_TABLE } from '../../services/core/audit/audit-log.js';
import { auditKey, type AuditRecord } from '../../services/core/audit/audit-chain.js';
import { runCli } from '../helpers/cli.js';
import { capturingLogger, waitFor } from '../helpers/servers.js';
import { disposeParties, startSite, type Site } from '../helpers/ma-harness.js';

let site: Site;

beforeAll(async () => {
  site = await startSite();
}, 60_000);

afterAll(async () => {
  await site?.destroy();
  await disposeParties();
});

const records = async (): Promise<AuditRecord[]> => {
  const store = await Store.open(site.dataDir);
  try {
    return await store.table<AuditRecord>(AUDIT_TABLE).values();
  } finally {
    await store.close();
  }
};

describe('audit log', () => {
  it('records allowed and refused calls that change state, and fedlab audit reads and verifies them', async () => {
    const { parties } = site;
    await site.maClient().createEnrollmentToken({ requestId: 'audit-1', nodeName: 'n-audit', ownerUrn: parties.owner.urn, ttlS: 0 });
    await expect(
      site.maClient(parties.sp).createEnrollmentToken({ requestId: 'audit-2', nodeName: 'n-evil', ownerUrn: parties.owner.urn, ttlS: 0 }),
    ).rejects.toMatchObject({ code: 7 });
    await site.maClient().listNodes({ pageSize: 10, pageToken: '', health: 0 }); // a read: not recorded
    await site.stop();

    const all = await records();
    const tokens = all.filter((r) => r.method.endsWith('/CreateEnrollmentToken'));
    expect(tokens.map((r) => [r.caller, r.object, r.outcome])).toEqual([
      [parties.admin.urn, 'n-audit', expect.stringMatching(/^(committed|OK)$/)],
      [parties.sp.urn, 'n-evil', 'PERMISSION_DENIED'],
    ]);
    expect(all.some((r) => r.method.endsWith('/ListNodes'))).toBe(false);

    const ls = await runCli(['audit', 'ls', '--config', site.configFile, '--method', 'CreateEnrollmentToken']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/CreateEnrollmentToken .*n-evil {2}PERMISSION_DENIED/);
    const ok = await runCli(['audit', 'verify', '--config', site.configFile]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/the audit log verifies: \d+ record\(s\)/);
  });

  it('a one-byte edit of a stored record fails verify naming the record; a deleted record too; the MA still starts', async () => {
    const target = (await records()).find((r) => r.outcome === 'PERMISSION_DENIED') as AuditRecord;
    // Change one byte of the stored record, offline, leaving its hash as it was.
    const store0 = await Store.open(site.dataDir);
    const table = store0.table<AuditRecord>(AUDIT_TABLE);
    const stored = (await table.get(auditKey(target.seq))) as AuditRecord;
    const text = JSON.stringify(stored);
    const at = text.indexOf(':sp:') + 1;
    await table.put(auditKey(target.seq), JSON.parse(`${text.slice(0, at)}t${text.slice(at + 1)}`) as AuditRecord);
    await store0.close();
    const bad = await runCli(['audit', 'verify', '--config', site.configFile]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`does not verify at record ${target.seq} .*changed after it was written`));

    const store = await Store.open(site.dataDir);
    await store.table<AuditRecord>(AUDIT_TABLE).del(auditKey(0));
    await store.close();
    const gone = await runCli(['audit', 'verify', '--config', site.configFile, '--json']);
    expect(gone.code).toBe(1);
    expect(JSON.parse(gone.stdout)).toMatchObject({ ok: false, seq: 0 });

    const logs = capturingLogger();
    const again = await startSite({ parties: site.parties, dataDir: site.dataDir, log: logs.log });
    try {
      expect((await again.maClient().listNodes({ pageSize: 10, pageToken: '', health: 0 })).nodes).toBeDefined();
      // The walk runs after the service answers, and says where the chain breaks.
      await waitFor(
        () => logs.lines().some((l) => String(l.msg).startsWith('the audit log does not verify') && l.record === 0),
        10_000,
        'the log line',
      );
    } finally {
      await again.stop();
    }
  });
});
