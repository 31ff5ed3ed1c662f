// The slice authority's read path (issue 19 target 5): ListSlices from the per-provider index pages
// exactly as a filter-and-sort of every slice would (a provider never sees another's slices, an
// administrator sees all), a slice's cached wire form changes when the slice does, and readers of a
// stale READY slice that come together share one Status call to its site instead of queueing to ask
// again. The store is a real LevelDB; the site's Aggregate client is a fake that counts its calls.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { AllocationState, OperationalState, Sliver } from '../../services/generated/fedlab/v1/common.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { Accounts } from '../../services/slice-authority/accounts.js';
import { EventHub } from '../../services/slice-authority/events.js';
import { NO_USE, TABLES, type SliceRecord } from '../../services/slice-authority/records.js';
import { Sites, type Site } from '../../services/slice-authority/sites.js';
import { REFRESH_AHEAD_MS } from '../../services/slice-authority/slices/read.js';
import { SliceBook, STATUS_FRESH_MS } from '../../services/slice-authority/slices/slice-book.js';
import { SliceIndex } from '../../services/slice-authority/slices/slice-index.js';

const DOMAIN = 'a.test';
const ACME = 'urn:fedlab:sa.test:sp:acme';
const BETA = 'urn:fedlab:sa.test:sp:beta';
const urnOf = (name: string): string => `urn:fedlab:sa.test:slice:${name}`;
const sliverUrn = (name: string): string => `urn:fedlab:${DOMAIN}:sliver:${name}`;

function sliver(name: string, op: OperationalState): Sliver {
  return Sliver.fromPartial({
    urn: sliverUrn(name),
    sliceUrn: urnOf(name),
    nodeUrn: `urn:fedlab:${DOMAIN}:node:n1`,
    allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
    operationalState: op,
  });
}

function slice(name: string, providerUrn: string, state: SliceRecord['state'] = 'ready'): SliceRecord {
  return {
    urn: urnOf(name),
    name,
    providerUrn,
    description: '',
    mode: 'all_or_nothing',
    state,
    start: true,
    requestId: name,
    createdAt: Date.now(),
    updatedAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    seq: 1,
    sites: [
      {
        site: DOMAIN,
        aggregateUrn: `urn:fedlab:${DOMAIN}:authority:ma`,
        style: 1,
        request: {},
        code: 0,
        reason: '',
        manifest: '',
        swappedOut: false,
        slivers: [Sliver.toJSON(sliver(name, OperationalState.OPERATIONAL_STATE_READY))],
        use: NO_USE,
      },
    ],
  };
}

/** The fake site: counts Status calls, answers after `release()` with the sliver in `op`. */
interface FakeSite {
  statusCalls: number;
  op: OperationalState;
  gate?: Promise<void>;
}

function fakeSite(f: FakeSite): Site {
  const client = {
    status: async (req: { urns: string[] }) => {
      f.statusCalls++;
      await f.gate;
      const name = (req.urns[0] as string).split(':').pop() as string;
      return { slivers: [sliver(name, f.op)] };
    },
    close: () => undefined,
  };
  return {
    domain: DOMAIN,
    endpoint: '127.0.0.1:1',
    maUrn: `urn:fedlab:${DOMAIN}:authority:ma`,
    chain: ['x'],
    chainExpiresAt: Date.now() + 86_400_000,
    limits: {},
    client: client as unknown as Site['client'],
  };
}

let dir: string;
let store: Store;
let site: FakeSite;

async function book(records: readonly SliceRecord[], now: () => number = Date.now): Promise<SliceBook> {
  let batch = store.batch();
  for (const r of records) batch = batch.put(store.table<SliceRecord>(TABLES.slices), r.urn, r);
  await batch.write({ sync: true });
  const bk = new SliceBook({
    store,
    sites: new Sites([fakeSite(site)], Date.now),
    accounts: new Accounts(
      [
        { urn: ACME, quotas: {} },
        { urn: BETA, quotas: {} },
      ],
      [],
      () => false,
    ),
    hub: new EventHub(),
    log: silentLogger(),
    now,
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

const acme = { urn: ACME, thumbprint: 'a', admin: false };
const beta = { urn: BETA, thumbprint: 'b', admin: false };
const admin = { urn: 'urn:fedlab:sa.test:user:admin', thumbprint: 'c', admin: true };

/** Every page of ListSlices, followed by token. */
function listAll(bk: SliceBook, who: typeof acme, pageSize: number, state = 0): string[] {
  const out: string[] = [];
  let pageToken = '';
  for (let i = 0; i < 100; i++) {
    const page = bk.list(who, { pageSize, pageToken, state });
    expect(page.slices.length).toBeLessThanOrEqual(pageSize);
    out.push(...page.slices.map((s) => s.urn));
    if (!page.nextPageToken) return out;
    pageToken = page.nextPageToken;
  }
  throw new Error('paging did not end');
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-sa-reads-'));
  store = await Store.open(dir);
  site = { statusCalls: 0, op: OperationalState.OPERATIONAL_STATE_READY };
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('slice authority reads', () => {
  it('pages ListSlices from the index as a filter and sort of every slice would, per provider', async () => {
    // Interleaved names, so each provider's slices sit between the other's in URN order.
    const recs = Array.from({ length: 23 }, (_, i) =>
      slice(`s${String(i).padStart(2, '0')}`, i % 3 ? ACME : BETA, i === 4 ? 'deleted' : i === 7 ? 'failed' : 'ready'),
    );
    const bk = await book([...recs].reverse());
    const expected = (p: string | undefined, keep: (r: SliceRecord) => boolean): string[] =>
      recs
        .filter((r) => (p === undefined || r.providerUrn === p) && keep(r))
        .map((r) => r.urn)
        .sort();
    const shown = (r: SliceRecord): boolean => r.state !== 'deleted' && r.state !== 'expired';
    for (const size of [1, 2, 5, 50]) {
      expect(listAll(bk, acme, size)).toEqual(expected(ACME, shown));
      expect(listAll(bk, beta, size)).toEqual(expected(BETA, shown));
      expect(listAll(bk, admin, size)).toEqual(expected(undefined, shown));
    }
    expect(listAll(bk, admin, 3, SliceState.SLICE_STATE_DELETED)).toEqual([urnOf('s04')]);
    expect(listAll(bk, acme, 3, SliceState.SLICE_STATE_FAILED)).toEqual([urnOf('s07')]);
    // A full last page says no more follow.
    expect(bk.list(beta, { pageSize: 8, pageToken: '', state: 0 }).nextPageToken).toBe('');
    // A slice removed from the book (retention) is gone from the pages; one added appears in order.
    bk.state.slices.delete(urnOf('s01'));
    bk.state.slices.set(urnOf('s015'), slice('s015', ACME));
    expect(listAll(bk, acme, 2)).toEqual([...expected(ACME, shown).filter((u) => u !== urnOf('s01')), urnOf('s015')].sort());
    expect(listAll(bk, beta, 2)).toEqual(expected(BETA, shown));
  });

  it('answers a slice from its cached wire form until the slice changes', async () => {
    const bk = await book([slice('one', ACME, 'pending')]);
    const first = bk.get(acme, urnOf('one'));
    expect(bk.get(acme, urnOf('one'))).toBe(first);
    expect(bk.list(acme, { pageSize: 5, pageToken: '', state: 0 }).slices[0]).toBe(first);
    const rec = bk.state.slices.get(urnOf('one')) as SliceRecord;
    bk.state.slices.set(rec.urn, { ...rec, state: 'ready', description: 'changed' });
    const second = bk.get(acme, urnOf('one'));
    expect(second).not.toBe(first);
    expect(second.state).toBe(SliceState.SLICE_STATE_READY);
    expect(second.description).toBe('changed');
    expect(bk.list(acme, { pageSize: 5, pageToken: '', state: 0 }).slices[0]?.description).toBe('changed');
    expect(() => bk.get(beta, urnOf('one'))).toThrow(/no slice/);
  });

  it('lets readers of a stale slice share one Status call to its site, and shows what the site said', async () => {
    const bk = await book([slice('live', ACME)]);
    let release = (): void => undefined;
    site.gate = new Promise<void>((r) => (release = r));
    site.op = OperationalState.OPERATIONAL_STATE_FAILED;
    const readers = Array.from({ length: 10 }, () => bk.getLive(acme, urnOf('live')));
    await new Promise((r) => setTimeout(r, 20));
    expect(site.statusCalls).toBe(1);
    release();
    const answers = await Promise.all(readers);
    expect(site.statusCalls).toBe(1);
    for (const a of answers) expect(a.slivers[0]?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_FAILED);
    // Fresh now: answered from the record, no call; and another provider still sees nothing.
    expect((await bk.getLive(acme, urnOf('live'))).slivers[0]?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_FAILED);
    expect(site.statusCalls).toBe(1);
    await expect(bk.getLive(beta, urnOf('live'))).rejects.toThrow(/no slice/);
    expect(bk.state.refreshing.size).toBe(0);
  });

  it('answers from the record while fresh, and refreshes a read slice in the background just before it goes stale', async () => {
    let t = Date.now();
    const bk = await book([slice('live', ACME)], () => t);
    expect((await bk.getLive(acme, urnOf('live'))).slivers[0]?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_READY);
    expect(site.statusCalls).toBe(1);
    t += STATUS_FRESH_MS - REFRESH_AHEAD_MS - 1;
    await bk.getLive(acme, urnOf('live'));
    expect(site.statusCalls).toBe(1);
    // In the last stretch of freshness: the record at once, and one refresh started behind it.
    let release = (): void => undefined;
    site.gate = new Promise<void>((r) => (release = r));
    site.op = OperationalState.OPERATIONAL_STATE_FAILED;
    t += 2;
    const early = await bk.getLive(acme, urnOf('live'));
    expect(early.slivers[0]?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_READY);
    await bk.getLive(acme, urnOf('live'));
    expect(site.statusCalls).toBe(2);
    // Gone stale before the site answered: a reader waits for that refresh rather than asking again.
    t += REFRESH_AHEAD_MS;
    const late = bk.getLive(acme, urnOf('live'));
    release();
    expect((await late).slivers[0]?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_FAILED);
    expect(site.statusCalls).toBe(2);
    expect((await bk.getLive(acme, urnOf('live'))).slivers[0]?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_FAILED);
    expect(site.statusCalls).toBe(2);
  });

  it('keeps its indexes right when a slice changes provider or the book is cleared', () => {
    const index = new SliceIndex();
    index.set(urnOf('x'), slice('x', ACME));
    index.set(urnOf('x'), slice('x', BETA));
    expect(index.after(ACME, '', 10, () => true)).toEqual([]);
    expect(index.after(BETA, '', 10, () => true).map((r) => r.urn)).toEqual([urnOf('x')]);
    index.clear();
    expect(index.after(undefined, '', 10, () => true)).toEqual([]);
    index.set(urnOf('y'), slice('y', ACME));
    expect(index.after(undefined, '', 10, () => true).map((r) => r.urn)).toEqual([urnOf('y')]);
    expect(index.after(ACME, '', 10, () => true).map((r) => r.urn)).toEqual([urnOf('y')]);
  });
});
