// The slice authority's books and a slice's users, against a fake site whose node serves SSH: the
// sites' slivers — with how to log in to them (Sliver.ssh) — pass through into Slice.slivers, at
// CreateSlice and when GetSlice asks the site again; a slice recorded before users loads with none and
// takes users; a users update left pending by a process that died is handed on at the next start (a
// site that is down stays in the intent until a retry reaches it); a delete drops a pending update.
// The store is a real LevelDB; the site's Aggregate client is a fake that records what it is asked.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sshFingerprint, newSshKeyPair } from '../../services/core/identity/ssh-keys.js';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { OperationalAction } from '../../services/generated/fedlab/v1/aggregate.js';
import {
  AllocationState,
  OperationalState,
  SliceMode,
  Sliver,
  type SliceUser,
  type SshLogin,
} from '../../services/generated/fedlab/v1/common.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { Accounts } from '../../services/slice-authority/accounts.js';
import { EventHub } from '../../services/slice-authority/events.js';
import { NO_USE, TABLES, type IntentRecord, type SliceRecord } from '../../services/slice-authority/records.js';
import { Sites, type Site } from '../../services/slice-authority/sites.js';
import { SliceBook } from '../../services/slice-authority/slices/slice-book.js';

const D = 'a.test';
const PROVIDER = 'urn:fedlab:sa.test:sp:acme';
const ALICE = 'urn:fedlab:sa.test:user:alice';
const hostKey = newSshKeyPair().public;
const LOGIN: SshLogin = {
  username: 'web',
  endpoint: { address: 'n1.a.test:2222', hostKey, hostKeyFingerprint: sshFingerprint(Buffer.from(hostKey.split(' ')[1]!, 'base64')) },
};
const aliceKey = newSshKeyPair({ comment: 'alice' }).public;

/** What the fake site was asked, and how it answers. */
interface FakeSite {
  allocations: SliceUser[][];
  updates: SliceUser[][];
  down: boolean;
}

function sliver(sliceUrn: string, provisioned: boolean): Sliver {
  return {
    urn: `urn:fedlab:${D}:sliver:x1`,
    sliceUrn,
    nodeUrn: `urn:fedlab:${D}:node:n1`,
    aggregateUrn: `urn:fedlab:${D}:authority:ma`,
    clientId: 'x1',
    allocationState: provisioned ? AllocationState.ALLOCATION_STATE_PROVISIONED : AllocationState.ALLOCATION_STATE_ALLOCATED,
    operationalState: provisioned ? OperationalState.OPERATIONAL_STATE_READY : OperationalState.OPERATIONAL_STATE_PENDING,
    isolation: 0,
    exclusive: false,
    interfaces: [],
    error: '',
    sliceAuthorityUrn: 'urn:fedlab:sa.test:authority:sa',
    providerUrn: PROVIDER,
    workDir: '',
    expiresAt: new Date(Date.now() + 3_600_000),
    ...(provisioned ? { ssh: LOGIN } : {}),
  };
}

function fakeSite(f: FakeSite): Site {
  const refuse = (): never => {
    throw Object.assign(new Error('14 UNAVAILABLE: connect ECONNREFUSED'), {
      code: Status.UNAVAILABLE,
      details: 'connect ECONNREFUSED',
      metadata: new Metadata(),
    }) as ServiceError;
  };
  const client = {
    getVersion: async () => ({ maxSliverLifetimeS: 86_400, style: 1, operationalActions: [] }),
    allocate: async (req: { sliceUrn: string; users: SliceUser[] }) => {
      f.allocations.push(req.users);
      return { sliceUrn: req.sliceUrn, slivers: [sliver(req.sliceUrn, false)], manifestDocument: '' };
    },
    provision: async (req: { urns: string[] }) => {
      const s = sliver(req.urns[0]!, true);
      return { results: [{ sliverUrn: s.urn, nodeUrn: s.nodeUrn, status: { code: 0, reason: '' }, sliver: s }], manifestDocument: '' };
    },
    performOperationalAction: async (req: { urns: string[]; action: OperationalAction; users: SliceUser[] }) => {
      if (f.down) refuse();
      expect(req.action).toBe(OperationalAction.OPERATIONAL_ACTION_UPDATE_USERS);
      f.updates.push(req.users);
      const s = sliver(req.urns[0]!, true);
      return { results: [{ sliverUrn: s.urn, nodeUrn: s.nodeUrn, status: { code: 0, reason: '' }, sliver: s }] };
    },
    status: async (req: { urns: string[] }) => ({ sliceUrn: req.urns[0], slivers: [sliver(req.urns[0]!, true)] }),
    delete: async () => ({ results: [] }),
    close: () => undefined,
  };
  return {
    domain: D,
    endpoint: '127.0.0.1:1',
    maUrn: `urn:fedlab:${D}:authority:ma`,
    chain: ['x'],
    chainExpiresAt: Date.now() + 86_400_000,
    limits: {},
    client: client as unknown as Site['client'],
  };
}

let dir: string;
let store: Store;
let site: FakeSite;

async function book(): Promise<SliceBook> {
  const bk = new SliceBook({
    store,
    sites: new Sites([fakeSite(site)], Date.now),
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
const provider = { ...caller, account: { urn: PROVIDER, quotas: {} } };

/** A READY slice with one sliver at the site, recorded as a slice authority before users did. */
function oldRecord(): SliceRecord {
  const urn = 'urn:fedlab:sa.test:slice:old';
  return {
    urn,
    name: 'old',
    providerUrn: PROVIDER,
    description: '',
    mode: 'all_or_nothing',
    state: 'ready',
    start: true,
    requestId: 'r-old',
    createdAt: Date.now(),
    updatedAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    seq: 3,
    sites: [
      {
        site: D,
        aggregateUrn: `urn:fedlab:${D}:authority:ma`,
        style: 1,
        request: {},
        code: 0,
        reason: '',
        manifest: '',
        swappedOut: false,
        slivers: [Sliver.toJSON(sliver(urn, true))],
        use: NO_USE,
      },
    ],
  };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-sa-users-'));
  store = await Store.open(dir);
  site = { allocations: [], updates: [], down: false };
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the slice authority's books and slice users", () => {
  it("passes the sites' slivers, with their SSH logins, through into Slice.slivers", async () => {
    const bk = await book();
    const slice = await bk.create(provider, {
      users: [{ urn: ALICE, sshKeys: [aliceKey] }],
      requestId: 'c1',
      name: 'web',
      description: '',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [
        {
          site: D,
          request: {
            nodes: { nodeUrns: [], count: 1, clientIds: [] },
            links: [],
            exclusive: false,
            requestDocument: '',
            requestDocumentFormat: '',
          },
        },
      ],
      start: false,
      wait: true,
    });
    expect(slice.state).toBe(SliceState.SLICE_STATE_READY);
    expect(site.allocations).toEqual([[{ urn: ALICE, sshKeys: [aliceKey] }]]);
    expect(slice.slivers.map((s) => s.ssh)).toEqual([LOGIN]);
    // Written as such, and again when the site is asked for its slivers.
    const again = await book();
    expect(again.get(caller, slice.urn).slivers.map((s) => s.ssh)).toEqual([LOGIN]);
    expect((await again.getLive(caller, slice.urn)).slivers.map((s) => s.ssh)).toEqual([LOGIN]);
  });

  it('loads a slice recorded before users with none, and gives it users', async () => {
    const rec = oldRecord();
    await store.table<SliceRecord>(TABLES.slices).put(rec.urn, rec, { sync: true });
    const bk = await book();
    expect(bk.get(caller, rec.urn).users).toEqual([]);
    const res = await bk.updateUsers(caller, {
      requestId: 'u1',
      sliceUrn: rec.urn,
      add: [{ urn: ALICE, sshKeys: [aliceKey] }],
      remove: [],
    });
    expect(res.slice.users).toEqual([{ urn: ALICE, sshKeys: [aliceKey] }]);
    expect(res.results.map((r) => [r.site, r.status?.code])).toEqual([[D, Status.OK]]);
    expect(site.updates).toEqual([[{ urn: ALICE, sshKeys: [aliceKey] }]]);
    expect(await store.table(TABLES.intents).count()).toBe(0);
  });

  it('hands on at start-up a users update a process left pending; a site that is down stays in it until a retry', async () => {
    const rec = { ...oldRecord(), users: [{ urn: ALICE, sshKeys: [aliceKey] }] };
    const intent: IntentRecord = { id: 'int-u', kind: 'users', sliceUrn: rec.urn, sites: [D], createdAt: Date.now() };
    await store
      .batch()
      .put(store.table<SliceRecord>(TABLES.slices), rec.urn, rec)
      .put(store.table<IntentRecord>(TABLES.intents), intent.id, intent)
      .write({ sync: true });
    site.down = true;
    const bk = await book();
    expect(await bk.recover()).toEqual({ rolledBack: 0, finished: 0, pending: 1 });
    expect(site.updates).toEqual([]);
    site.down = false;
    await bk.retryIntents();
    expect(site.updates).toEqual([[{ urn: ALICE, sshKeys: [aliceKey] }]]);
    expect(await store.table(TABLES.intents).count()).toBe(0);

    // A delete drops an update still pending.
    site.down = true;
    const res = await bk.updateUsers(caller, { requestId: 'u2', sliceUrn: rec.urn, add: [], remove: [ALICE] });
    expect(res.results.map((r) => [r.site, r.status?.code])).toEqual([[D, Status.UNAVAILABLE]]);
    expect((await store.table<IntentRecord>(TABLES.intents).values()).map((i) => i.kind)).toEqual(['users']);
    site.down = false;
    await bk.delete(caller, rec.urn);
    expect(await store.table(TABLES.intents).count()).toBe(0);
    expect(site.updates).toHaveLength(1);
  });
});
