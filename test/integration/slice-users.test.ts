// A slice's users and their SSH keys travel with it: the slice authority checks and keeps them at
// CreateSlice and hands them to every site in Allocate, each management authority to every node in
// CreateSliver; UpdateSliceUsers hands the whole new list to every site (UPDATE_USERS) and each site
// to every node (UpdateSliverUsers). A bad key is INVALID_ARGUMENT naming it and leaves nothing; a site
// that did not take a list is handed it again, also by a slice authority that restarted meanwhile.
// Real slice authority, management authorities of two styles and node managers (process driver); the
// node managers' domain objects are wrapped to record what they got.
import { status as Status } from '@grpc/grpc-js';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../services/core/errors.js';
import { OperationalAction, type AggregatePerformOperationalActionRequest } from '../../services/generated/fedlab/v1/aggregate.js';
import { SliceMode, type SliceUser } from '../../services/generated/fedlab/v1/common.js';
import { SliceState, type Slice } from '../../services/generated/fedlab/v1/slice_authority.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, until, type Site, type TestNode } from '../helpers/ma-harness.js';
import { recordNodeCalls, startFederation, type Federation, type NodeCalls } from '../helpers/sa-harness.js';
import { newSshKeyPair } from '../../services/core/identity/ssh-keys.js';

let fed: Federation;
const calls = new Map<string, NodeCalls>();
const code = (e: unknown): number | undefined => (e as { code?: number }).code;
const key = (comment: string): string => `${newSshKeyPair({ comment }).public}`;
const ALICE = 'urn:fedlab:plc.test:user:alice';
const BOB = 'urn:fedlab:plc.test:user:bob';
const ACME = 'urn:fedlab:plc.test:sp:acme';
const aliceKey = key('alice@lab');
const bobKey = key('bob@lab');
const acmeKey = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256, comment: 'ops' }).public;
const weakRsa = ssh2.utils.generateKeyPairSync('rsa', { bits: 1024 }).public;

beforeAll(async () => {
  fed = await startFederation({
    sites: [
      { domain: 'plc.test', style: 'planetlab', nodes: 2 },
      { domain: 'pg.test', style: 'protogeni', nodes: 1 },
    ],
    quotas: { slices: 10, slivers: 20 },
    // Only a start-up (or a retried request id) works a pending users update here, not the timer.
    saConfig: {
      intent_retry_interval_ms: 3_600_000,
      providers: [
        { urn: ACME, quotas: { slices: 10, slivers: 20 } },
        { urn: 'urn:fedlab:plc.test:sp:beta', quotas: {} },
      ],
    },
  });
  for (const nodes of fed.nodes.values()) for (const n of nodes) calls.set(n.urn, recordNodeCalls(n));
}, 120_000);

afterAll(async () => {
  await fed?.destroy();
  await disposeParties();
});

const allNodes = (): TestNode[] => [...fed.nodes.values()].flat();
const siteOf = (domain: string): Site => fed.sites.find((s) => s.parties.domain === domain) as Site;

async function create(name: string, users: SliceUser[], requestId = `c-${name}`): Promise<Slice> {
  const res = await fed.saClient().createSlice({
    users,
    requestId,
    name,
    description: '',
    mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
    sites: [siteRequest('plc.test', { count: 2 }), siteRequest('pg.test', { count: 1 })],
    start: false,
    wait: true,
  });
  return res.slice as Slice;
}

/** The last users list each sliver's node got (from CreateSliver, then UpdateSliverUsers), by sliver URN. */
function usersOnNodes(slice: Slice): Map<string, SliceUser[] | undefined> {
  const out = new Map<string, SliceUser[] | undefined>();
  for (const s of slice.slivers) {
    const c = calls.get(s.nodeUrn) as NodeCalls;
    const got = [...c.creates, ...c.userUpdates].filter((x) => x.sliverUrn === s.urn && x.ok);
    out.set(s.urn, got.at(-1)?.users);
  }
  return out;
}

describe('slice users', () => {
  it("keeps a slice's users (checked, deduplicated, sorted) and hands them to every node in CreateSliver", async () => {
    const slice = await create('keys', [
      { urn: ALICE, sshKeys: [aliceKey, aliceKey.replace('alice@lab', 'another comment')] },
      { urn: ACME, sshKeys: [acmeKey] },
    ]);
    expect(slice.state).toBe(SliceState.SLICE_STATE_READY);
    const want = [
      { urn: ACME, sshKeys: [acmeKey] },
      { urn: ALICE, sshKeys: [aliceKey] },
    ];
    expect(slice.users).toEqual(want);
    expect(slice.slivers).toHaveLength(3);
    for (const [, users] of usersOnNodes(slice)) expect(users).toEqual(want);
    expect((await fed.saClient().getSlice({ sliceUrn: slice.urn })).slice?.users).toEqual(want);
  });

  it('UpdateSliceUsers replaces, adds and removes users and hands the whole list to every node; idempotent on request_id', async () => {
    const sa = fed.saClient();
    const slice = await create('upd', [{ urn: ALICE, sshKeys: [aliceKey] }]);
    const res = await sa.updateSliceUsers({
      requestId: 'u-1',
      sliceUrn: slice.urn,
      add: [
        { urn: BOB, sshKeys: [bobKey] },
        { urn: ACME, sshKeys: [acmeKey] },
      ],
      remove: [ALICE, 'urn:fedlab:plc.test:user:nobody'],
    });
    const want = [
      { urn: ACME, sshKeys: [acmeKey] },
      { urn: BOB, sshKeys: [bobKey] },
    ];
    expect(res.slice?.users).toEqual(want);
    expect(res.sites.map((s) => [s.site, s.status?.code])).toEqual([
      ['plc.test', Status.OK],
      ['pg.test', Status.OK],
    ]);
    for (const [, users] of usersOnNodes(slice)) expect(users).toEqual(want);

    // A listed user's keys are replaced by the ones added.
    const newer = key('bob@laptop');
    await sa.updateSliceUsers({ requestId: 'u-2', sliceUrn: slice.urn, add: [{ urn: BOB, sshKeys: [newer] }], remove: [] });
    const replaced = [
      { urn: ACME, sshKeys: [acmeKey] },
      { urn: BOB, sshKeys: [newer] },
    ];
    for (const [, users] of usersOnNodes(slice)) expect(users).toEqual(replaced);

    // The same request again changes nothing and asks no node; another request under its id is refused.
    const updates = allNodes().reduce((a, n) => a + (calls.get(n.urn) as NodeCalls).userUpdates.length, 0);
    const again = await sa.updateSliceUsers({
      requestId: 'u-1',
      sliceUrn: slice.urn,
      add: [
        { urn: ACME, sshKeys: [acmeKey] },
        { urn: BOB, sshKeys: [bobKey] },
      ],
      remove: ['urn:fedlab:plc.test:user:nobody', ALICE],
    });
    expect(again.slice?.users).toEqual(replaced);
    expect(allNodes().reduce((a, n) => a + (calls.get(n.urn) as NodeCalls).userUpdates.length, 0)).toBe(updates);
    const reused = await sa.updateSliceUsers({ requestId: 'u-1', sliceUrn: slice.urn, add: [], remove: [BOB] }).catch((e: unknown) => e);
    expect(code(reused)).toBe(Status.ALREADY_EXISTS);

    // Another provider does not see the slice.
    const beta = await fed.home.pki.issue('urn:fedlab:plc.test:sp:beta');
    const other = await fed
      .saClient(beta)
      .updateSliceUsers({ requestId: 'u-3', sliceUrn: slice.urn, add: [], remove: [BOB] })
      .catch((e: unknown) => e);
    expect(code(other)).toBe(Status.NOT_FOUND);
  });

  it('a bad key at CreateSlice or UpdateSliceUsers is INVALID_ARGUMENT naming it, and changes nothing', async () => {
    const sa = fed.saClient();
    const before = (await sa.listSlices({ pageSize: 0, pageToken: '', state: 0 })).slices.map((s) => s.urn);
    const creates = allNodes().reduce((a, n) => a + (calls.get(n.urn) as NodeCalls).creates.length, 0);
    const err = await create('weak', [{ urn: ALICE, sshKeys: [aliceKey, weakRsa] }]).catch((e: unknown) => e);
    expect(code(err)).toBe(Status.INVALID_ARGUMENT);
    expect((err as Error).message).toMatch(
      /users\[0\]\.ssh_keys\[1\] \(user urn:fedlab:plc\.test:user:alice\): the ssh-rsa key has 1024 bits/,
    );
    expect((err as Error).message).toMatch(/ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384 or ssh-rsa of 2048 bits or more/);
    const garbage = await create('junk', [{ urn: ALICE, sshKeys: ['ssh-ed25519 not-a-key'] }]).catch((e: unknown) => e);
    expect(code(garbage)).toBe(Status.INVALID_ARGUMENT);
    expect((await sa.listSlices({ pageSize: 0, pageToken: '', state: 0 })).slices.map((s) => s.urn)).toEqual(before);
    expect(allNodes().reduce((a, n) => a + (calls.get(n.urn) as NodeCalls).creates.length, 0)).toBe(creates);

    const slice = await create('stay', [{ urn: ALICE, sshKeys: [aliceKey] }]);
    const bad = await sa
      .updateSliceUsers({ requestId: 'u-bad', sliceUrn: slice.urn, add: [{ urn: BOB, sshKeys: [weakRsa] }], remove: [] })
      .catch((e: unknown) => e);
    expect(code(bad)).toBe(Status.INVALID_ARGUMENT);
    expect((bad as Error).message).toMatch(/INVALID_ARGUMENT: add\[0\]\.ssh_keys\[0\] \(user urn:fedlab:plc\.test:user:bob\)/);
    expect((await sa.getSlice({ sliceUrn: slice.urn })).slice?.users).toEqual([{ urn: ALICE, sshKeys: [aliceKey] }]);

    // A slice that is not READY or PARTIAL takes no users.
    await sa.deleteSlice({ sliceUrn: slice.urn });
    const gone = await sa
      .updateSliceUsers({ requestId: 'u-del', sliceUrn: slice.urn, add: [{ urn: BOB, sshKeys: [bobKey] }], remove: [] })
      .catch((e: unknown) => e);
    expect(code(gone)).toBe(Status.FAILED_PRECONDITION);
    expect((gone as Error).message).toMatch(/is deleted; users can be changed only on a READY or PARTIAL slice/);
  });

  it('a site that did not take the list is handed it by the slice authority after a restart', async () => {
    const sa = fed.saClient();
    const slice = await create('later', [{ urn: ALICE, sshKeys: [aliceKey] }]);
    const pg = siteOf('pg.test').ma!.aggregate;
    const act = pg.act.bind(pg);
    // pg.test refuses users updates for a while (a site that is busy, say).
    pg.act = (ctx, req: AggregatePerformOperationalActionRequest) =>
      req.action === OperationalAction.OPERATIONAL_ACTION_UPDATE_USERS
        ? Promise.reject(new UnavailableError('test: the site is busy'))
        : act(ctx, req);
    let res;
    try {
      res = await sa.updateSliceUsers({ requestId: 'u-later', sliceUrn: slice.urn, add: [{ urn: BOB, sshKeys: [bobKey] }], remove: [] });
    } finally {
      pg.act = act;
    }
    expect(res.sites.map((s) => [s.site, s.status?.code])).toEqual([
      ['plc.test', Status.OK],
      ['pg.test', Status.UNAVAILABLE],
    ]);
    expect(res.sites[1]?.status?.reason).toMatch(/busy/);
    const want = [
      { urn: ALICE, sshKeys: [aliceKey] },
      { urn: BOB, sshKeys: [bobKey] },
    ];
    const pgSliver = slice.slivers.find((s) => s.nodeUrn.includes(':pg.test:'))!;
    expect(usersOnNodes(slice).get(pgSliver.urn)).toEqual([{ urn: ALICE, sshKeys: [aliceKey] }]);

    await fed.stopSa();
    await fed.startSa();
    await until(
      async () => JSON.stringify(usersOnNodes(slice).get(pgSliver.urn)) === JSON.stringify(want),
      20_000,
      'pg.test has the users',
    );
    for (const [, users] of usersOnNodes(slice)) expect(users).toEqual(want);
    expect((await fed.saClient().getSlice({ sliceUrn: slice.urn })).slice?.users).toEqual(want);
  });
});
