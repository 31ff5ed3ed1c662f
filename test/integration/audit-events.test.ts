// Admin.ListEvents on a real management authority: administrators page through the audit log newest
// first, filtered by time, caller, object and method; anyone else is refused; bad filters are
// INVALID_ARGUMENT naming the field; a walk that examines too many records returns an empty page with a
// token to go on. `fedlab audit ls --remote|--address` reads the same pages.
import { status, type ServiceError } from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditKey, chainRecord, GENESIS, type AuditRecord } from '../../services/core/audit/audit-chain.js';
import { AUDIT_TABLE } from '../../services/core/audit/audit-log.js';
import { AuditQuery } from '../../services/core/audit/audit-query.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { Store } from '../../services/core/store/store.js';
import { sleep } from '../../services/core/timing.js';
import { AdminService, type AuditEvent, type ListEventsRequest } from '../../services/generated/fedlab/v1/admin.js';
import type { TestIdentity } from '../helpers/pki.js';
import { runCli } from '../helpers/cli.js';
import { disposeParties, startSite, tlsOf, type Site } from '../helpers/ma-harness.js';

const TOKEN_PATH = '/fedlab.v1.ManagementAuthority/CreateEnrollmentToken';

let site: Site;
let midpoint: Date;
const clients: { close(): void }[] = [];

function admin(who?: TestIdentity): PromiseClient<typeof AdminService> {
  const c = createClient(AdminService, {
    address: site.address,
    tls: tlsOf(site.parties, who ?? site.parties.admin),
    serverUrn: site.parties.maUrn,
    deadlineMs: 30_000,
  });
  clients.push(c);
  return c;
}

const request = (r: Partial<ListEventsRequest> = {}): ListEventsRequest => ({
  pageSize: 0,
  pageToken: '',
  caller: '',
  object: '',
  method: '',
  ...r,
});

/** Every event of a filter, page by page. */
async function all(r: Partial<ListEventsRequest>, pageSize: number): Promise<{ events: AuditEvent[]; pages: number }> {
  const events: AuditEvent[] = [];
  let pageToken = '';
  let pages = 0;
  do {
    const res = await admin().listEvents(request({ ...r, pageSize, pageToken }));
    events.push(...res.events);
    pageToken = res.nextPageToken;
    pages++;
  } while (pageToken && pages < 100);
  return { events, pages };
}

beforeAll(async () => {
  site = await startSite();
  const { parties } = site;
  const token = (who: TestIdentity, n: number) =>
    site.maClient(who).createEnrollmentToken({ requestId: `ev-${n}`, nodeName: `n-ev-${n}`, ownerUrn: parties.owner.urn, ttlS: 0 });
  await token(parties.admin, 1);
  await token(parties.admin, 2);
  await expect(token(parties.sp, 3)).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
  await sleep(30);
  midpoint = new Date();
  await sleep(30);
  await token(parties.admin, 4);
  await expect(token(parties.sp, 5)).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
  await token(parties.admin, 6);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await site?.destroy();
  await disposeParties();
});

describe('Admin.ListEvents', () => {
  it('lists the audited calls newest first, each with its chain links', async () => {
    const res = await admin().listEvents(request({ method: 'CreateEnrollmentToken' }));
    expect(res.nextPageToken).toBe('');
    expect(res.events.map((e) => e.object)).toEqual(['n-ev-6', 'n-ev-5', 'n-ev-4', 'n-ev-3', 'n-ev-2', 'n-ev-1']);
    const seqs = res.events.map((e) => e.seq);
    expect([...seqs].sort((a, b) => b - a)).toEqual(seqs);
    const [six, five] = res.events as [AuditEvent, AuditEvent];
    expect(six).toMatchObject({ method: TOKEN_PATH, caller: site.parties.admin.urn, outcome: expect.stringMatching(/^(committed|OK)$/) });
    expect(five).toMatchObject({ caller: site.parties.sp.urn, outcome: 'PERMISSION_DENIED' });
    expect(six.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(six.time).toBeInstanceOf(Date);
  });

  it('filters by caller, object, method (name or full path) and time', async () => {
    const objects = async (r: Partial<ListEventsRequest>) => (await admin().listEvents(request(r))).events.map((e) => e.object);
    expect(await objects({ caller: site.parties.sp.urn })).toEqual(['n-ev-5', 'n-ev-3']);
    expect(await objects({ object: 'n-ev-2' })).toEqual(['n-ev-2']);
    expect(await objects({ method: TOKEN_PATH, caller: site.parties.admin.urn })).toEqual(['n-ev-6', 'n-ev-4', 'n-ev-2', 'n-ev-1']);
    expect(await objects({ method: 'DeleteNode' })).toEqual([]);
    expect(await objects({ method: 'CreateEnrollmentToken', since: midpoint })).toEqual(['n-ev-6', 'n-ev-5', 'n-ev-4']);
    expect(await objects({ method: 'CreateEnrollmentToken', until: midpoint })).toEqual(['n-ev-3', 'n-ev-2', 'n-ev-1']);
    expect(await objects({ caller: 'urn:fedlab:plc.test:user:nobody' })).toEqual([]);
  });

  it('pages across pages with the same events as one page, each once', async () => {
    const one = (await admin().listEvents(request({ pageSize: 1000 }))).events;
    expect(one.length).toBeGreaterThanOrEqual(6);
    const paged = await all({}, 2);
    expect(paged.pages).toBeGreaterThanOrEqual(3);
    expect(paged.events.map((e) => e.seq)).toEqual(one.map((e) => e.seq));
    const filtered = await all({ caller: site.parties.admin.urn, method: 'CreateEnrollmentToken' }, 3);
    expect(filtered.events.map((e) => e.object)).toEqual(['n-ev-6', 'n-ev-4', 'n-ev-2', 'n-ev-1']);
    expect(filtered.pages).toBe(2);
  });

  it('refuses every caller but an administrator and the service itself', async () => {
    for (const who of [site.parties.sp, site.parties.owner, site.parties.sa]) {
      const err = (await admin(who)
        .listEvents(request())
        .catch((e: unknown) => e)) as ServiceError;
      expect(err.code).toBe(status.PERMISSION_DENIED);
      expect(err.metadata.get('fedlab-rule')[0]).toBe('admin');
    }
    const self = await admin(site.parties.ma).listEvents(request({ pageSize: 1 }));
    expect(self.events).toHaveLength(1);
  });

  it('refuses bad filters, naming the field', async () => {
    const bad = async (r: Partial<ListEventsRequest>, field: string) => {
      const err = (await admin()
        .listEvents(request(r))
        .catch((e: unknown) => e)) as ServiceError;
      expect(err.code, `${field}: ${err.details}`).toBe(status.INVALID_ARGUMENT);
      expect(err.metadata.get('fedlab-field')[0]).toBe(field);
    };
    await bad({ caller: `urn:fedlab:plc.test:user:${'x'.repeat(600)}` }, 'caller');
    await bad({ object: 'o'.repeat(100_000) }, 'object');
    await bad({ method: 'm'.repeat(300) }, 'method');
    await bad({ method: 'Create Enrollment' }, 'method');
    await bad({ caller: 'a\u0000b' }, 'caller');
    await bad({ since: midpoint, until: new Date(midpoint.getTime() - 1) }, 'until');
    await bad({ pageToken: 'not-a-token' }, 'page_token');
    await bad({ pageToken: Buffer.from('audit-events\n../../x').toString('base64url') }, 'page_token');
    // A page larger than the largest is cut to it, not refused.
    expect((await admin().listEvents(request({ pageSize: 1_000_000 }))).events.length).toBeGreaterThan(0);
  });

  it('fedlab audit ls asks the running service as an administrator, and as the service itself with its config', async () => {
    const p = site.parties;
    const asAdmin = await runCli([
      'audit',
      'ls',
      '--address',
      site.address,
      '--service-urn',
      p.maUrn,
      '--tls-dir',
      p.admin.dir,
      '--caller',
      p.sp.urn,
      '--json',
    ]);
    expect(asAdmin.stderr).toBe('');
    expect(asAdmin.code).toBe(0);
    const lines = asAdmin.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);
    expect(lines.map((r) => [r.object, r.outcome])).toEqual([
      ['n-ev-5', 'PERMISSION_DENIED'],
      ['n-ev-3', 'PERMISSION_DENIED'],
    ]);
    expect(typeof lines[0]?.time).toBe('number');

    const table = await runCli([
      'audit',
      'ls',
      '--config',
      site.configFile,
      // The in-process MA listens on a port of its choosing (0 in its config): its address is given.
      '--address',
      site.address,
      '--method',
      'CreateEnrollmentToken',
      '--limit',
      '3',
    ]);
    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    const rows = table.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^SEQ +TIME +METHOD +CALLER +OBJECT +OUTCOME$/);
    expect(rows.slice(1).map((r) => r.split(/ +/)[4])).toEqual(['n-ev-6', 'n-ev-5', 'n-ev-4']);

    const denied = await runCli(['audit', 'ls', '--address', site.address, '--service-urn', p.maUrn, '--tls-dir', p.sp.dir]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/could not list the audit events .*(rule admin)/);
    const badFilter = await runCli(['audit', 'ls', '--address', site.address, '--tls-dir', p.admin.dir, '--method', 'a b']);
    expect(badFilter.code).toBe(2);
  });
});

describe('AuditQuery', () => {
  it('examines at most its budget per call: an empty page with a token, then the match', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlab-audit-query-'));
    const store = await Store.open(join(dir, 'data'));
    try {
      const t = store.table<AuditRecord>(AUDIT_TABLE);
      let prev = GENESIS;
      for (let seq = 0; seq < 25; seq++) {
        const r = chainRecord(
          {
            time: 1_000 + seq,
            method: TOKEN_PATH,
            caller: seq === 2 ? 'urn:fedlab:x.test:user:rare' : 'urn:fedlab:x.test:user:common',
            jtis: [],
            object: `o${seq}`,
            outcome: 'OK',
            rule: '',
          },
          seq,
          prev,
        );
        prev = r.hash;
        await t.put(auditKey(seq), r);
      }
      const q = new AuditQuery(store, { scanBudget: 10 });
      const rare = { caller: 'urn:fedlab:x.test:user:rare' };
      const p1 = await q.page(rare, 5, '');
      expect(p1.records).toEqual([]);
      expect(p1.nextPageToken).not.toBe('');
      const p2 = await q.page(rare, 5, p1.nextPageToken);
      expect(p2.records).toEqual([]);
      const p3 = await q.page(rare, 5, p2.nextPageToken);
      expect(p3.records.map((r) => r.seq)).toEqual([2]);
      expect(p3.nextPageToken).toBe('');
      // A full page at the oldest record has no token; a full page before it has one.
      const last = await q.page({ since: 1_000 + 20 }, 5, '');
      expect(last.records.map((r) => r.seq)).toEqual([24, 23, 22, 21, 20]);
      expect(last.nextPageToken).not.toBe('');
      let page = last;
      const firsts: number[] = [];
      while (page.nextPageToken) {
        page = await q.page({}, 5, page.nextPageToken);
        firsts.push(page.records[0]?.seq ?? -1);
      }
      expect(firsts).toEqual([19, 14, 9, 4]);
      expect(page.records.map((r) => r.seq)).toEqual([4, 3, 2, 1, 0]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
