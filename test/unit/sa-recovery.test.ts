// The slice authority's intents, unit by unit: a create intent left by a process that died is rolled back
// (Delete by slice URN at every one of its sites, the slice FAILED), a delete intent is finished (the slice
// DELETED); a site that does not confirm stays in the intent until a retry succeeds; slivers a site reports
// as not deleted yet keep it there too. The store is a real LevelDB; the sites' Aggregate clients are fakes
// that record what they are asked.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { Accounts } from '../../services/slice-authority/accounts.js';
import { EventHub } from '../../services/slice-authority/events.js';
import { NO_USE, TABLES, type IntentRecord, type SliceRecord } from '../../services/slice-authority/records.js';
import { Sites, type Site } from '../../services/slice-authority/sites.js';
import { SliceBook } from '../../services/slice-authority/slices/slice-book.js';

const SLICE = 'urn:fedlab:sa.test:slice:s1';
const PROVIDER = 'urn:fedlab:sa.test:sp:acme';

interface FakeSite {
  deletes: string[][];
  /** What the next Delete does: answer, fail with a code, or report slivers not deleted yet. */
  mode: 'ok' | 'down' | 'busy';
}

function fakeSite(domain: string, f: FakeSite): Site {
  const client = {
    delete: async (req: { urns: string[] }) => {
      f.deletes.push(req.urns);
      if (f.mode === 'down') {
        const err = Object.assign(new Error('14 UNAVAILABLE: connect ECONNREFUSED'), {
          code: Status.UNAVAILABLE,
          details: 'connect ECONNREFUSED',
          metadata: new Metadata(),
        });
        throw err as ServiceError;
      }
      if (f.mode === 'busy')
        return {
          results: [
            {
              sliverUrn: `urn:fedlab:${domain}:sliver:x`,
              nodeUrn: `urn:fedlab:${domain}:node:n1`,
              status: { code: Status.UNAVAILABLE, reason: 'being provisioned' },
            },
          ],
        };
      return { results: [] };
    },
    close: () => undefined,
  };
  return {
    domain,
    endpoint: '127.0.0.1:1',
    maUrn: `urn:fedlab:${domain}:authority:ma`,
    chain: ['x'],
    chainExpiresAt: Date.now() + 86_400_000,
    limits: {},
    client: client as unknown as Site['client'],
  };
}

let dir: string;
let store: Store;
let a: FakeSite;
let b: FakeSite;

function slice(state: SliceRecord['state']): SliceRecord {
  const site = (d: string) => ({
    site: d,
    aggregateUrn: `urn:fedlab:${d}:authority:ma`,
    style: 1,
    request: {},
    code: 0,
    reason: '',
    manifest: '',
    swappedOut: false,
    slivers: [],
    use: NO_USE,
  });
  return {
    urn: SLICE,
    name: 's1',
    providerUrn: PROVIDER,
    description: '',
    mode: 'all_or_nothing',
    state,
    start: true,
    requestId: 'r1',
    createdAt: Date.now(),
    updatedAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    seq: 7,
    sites: [site('a.test'), site('b.test')],
  };
}

async function book(): Promise<SliceBook> {
  const sites = new Sites([fakeSite('a.test', a), fakeSite('b.test', b)], Date.now);
  const bk = new SliceBook({
    store,
    sites,
    accounts: new Accounts([{ urn: PROVIDER, quotas: {} }], [], () => false),
    hub: new EventHub(),
    log: silentLogger(),
    now: Date.now,
    saUrn: 'urn:fedlab:sa.test:authority:sa',
    limits: {
      default_slice_lifetime_s: 3600,
      max_slice_lifetime_s: 86_400,
      site_deadline_ms: 1000,
      status_deadline_ms: 1000,
      max_sites_per_slice: 8,
      max_nodes_per_site: 100,
      watch_queue_events: 1024,
    },
    quotaDefaults: { cpu_millis: 100, mem_mb: 64, disk_mb: 64 },
  });
  await bk.load();
  return bk;
}

const caller = { urn: PROVIDER, thumbprint: 'x', admin: false };

async function seed(rec: SliceRecord, intent: IntentRecord): Promise<void> {
  await store
    .batch()
    .put(store.table<SliceRecord>(TABLES.slices), rec.urn, rec)
    .put(store.table<IntentRecord>(TABLES.intents), intent.id, intent)
    .write({ sync: true });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-sa-unit-'));
  store = await Store.open(dir);
  a = { deletes: [], mode: 'ok' };
  b = { deletes: [], mode: 'ok' };
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('slice authority intent recovery', () => {
  it('rolls back an interrupted create at every site: Delete by slice URN, slice FAILED, intent gone', async () => {
    await seed(slice('pending'), { id: 'int-1', kind: 'create', sliceUrn: SLICE, sites: ['a.test', 'b.test'], createdAt: Date.now() });
    const bk = await book();
    const r = await bk.recover();
    expect(r).toEqual({ rolledBack: 1, finished: 1, pending: 0 });
    expect(a.deletes).toEqual([[SLICE]]);
    expect(b.deletes).toEqual([[SLICE]]);
    const s = bk.get(caller, SLICE);
    expect(s.state).toBe(SliceState.SLICE_STATE_FAILED);
    expect(s.sites.every((x) => x.status?.code === Status.ABORTED && /restarted/.test(x.status.reason))).toBe(true);
    expect(await store.table(TABLES.intents).count()).toBe(0);
    // Written, not only in memory: a second start finds nothing to do.
    const again = await book();
    expect(await again.recover()).toEqual({ rolledBack: 0, finished: 0, pending: 0 });
    expect(again.get(caller, SLICE).state).toBe(SliceState.SLICE_STATE_FAILED);
  });

  it('keeps a site that does not answer in the intent, and retries it until it confirms', async () => {
    b.mode = 'down';
    await seed(slice('pending'), { id: 'int-1', kind: 'create', sliceUrn: SLICE, sites: ['a.test', 'b.test'], createdAt: Date.now() });
    const bk = await book();
    expect(await bk.recover()).toEqual({ rolledBack: 1, finished: 0, pending: 1 });
    const left = await store.table<IntentRecord>(TABLES.intents).values();
    expect(left.map((i) => [i.kind, i.sites, i.final])).toEqual([['delete', ['b.test'], 'failed']]);
    expect(bk.get(caller, SLICE).sites.find((s) => s.site === 'b.test')?.status?.reason).toMatch(/retrying/);
    // A site that reports slivers still being provisioned is not done either.
    b.mode = 'busy';
    await bk.retryIntents();
    expect(await store.table(TABLES.intents).count()).toBe(1);
    b.mode = 'ok';
    await bk.retryIntents();
    expect(await store.table(TABLES.intents).count()).toBe(0);
    expect(a.deletes).toHaveLength(1);
    expect(b.deletes).toHaveLength(3);
    expect(bk.get(caller, SLICE).state).toBe(SliceState.SLICE_STATE_FAILED);
  });

  it('finishes an interrupted delete: the slice becomes DELETED', async () => {
    await seed(slice('deleting'), {
      id: 'int-2',
      kind: 'delete',
      sliceUrn: SLICE,
      sites: ['a.test', 'b.test'],
      final: 'deleted',
      createdAt: Date.now(),
    });
    const bk = await book();
    expect(await bk.recover()).toEqual({ rolledBack: 0, finished: 1, pending: 0 });
    expect(bk.get(caller, SLICE).state).toBe(SliceState.SLICE_STATE_DELETED);
    expect(a.deletes).toEqual([[SLICE]]);
  });

  it('numbers events above anything given out before a restart', async () => {
    await seed(slice('ready'), {
      id: 'int-3',
      kind: 'delete',
      sliceUrn: SLICE,
      sites: ['a.test'],
      final: 'deleted',
      createdAt: Date.now(),
    });
    const bk = await book();
    const ctrl = new AbortController();
    const events = bk.watch(caller, { sliceUrn: SLICE, afterSequence: 0, follow: true }, ctrl.signal);
    const first = await events.next();
    expect(first.value?.sequence).toBeGreaterThan(7);
    ctrl.abort();
    await events.return(undefined);
  });
});
