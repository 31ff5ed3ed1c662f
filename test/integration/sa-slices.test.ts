// The slice authority with real management authorities of two domains and styles (planetlab plc.test,
// protogeni pg.test) and real node managers (process driver: control-plane tests, not isolation), plus two
// configured sites that do not work (a closed port; a server that never answers). Slices are created across
// sites, read, listed, watched, renewed (each site granting what it can), deleted; all or nothing rolls back
// every site and answers within the deadline naming the failed site; best effort keeps the rest; quotas,
// unknown and revoked providers, request ids; a slice credential works on a node manager and does not delete.
import { createServer, type Server, type Socket } from 'node:net';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delegate, signRevocationList, thumbprintOf, toPublicJwk, type PublicJwk } from '../../services/core/credentials/index.js';
import { AllocationState, OperationalState, SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceState, type WatchSliceResponse } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { TestIdentity } from '../helpers/pki.js';
import { disposeParties, freePort, until, type TestNode } from '../helpers/ma-harness.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';

let fed: Federation;
let hang: Server;
const sockets = new Set<Socket>();
let beta: TestIdentity;
let stranger: TestIdentity;
let member: TestIdentity;
const DEADLINE_MS = 6000;

const code = (e: unknown): number | undefined => (e as { code?: number }).code;

beforeAll(async () => {
  // A "site" that accepts connections and never says anything.
  hang = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  const hangPort = (hang.address() as { port: number }).port;
  const closedPort = await freePort();
  fed = await startFederation({
    sites: [
      { domain: 'plc.test', style: 'planetlab', nodes: 2 },
      { domain: 'pg.test', style: 'protogeni', nodes: 2, config: { max_sliver_lifetime_s: 3 * 86_400, default_sliver_lifetime_s: 86_400 } },
    ],
    deadSites: [
      { domain: 'down.test', endpoint: `127.0.0.1:${closedPort}` },
      { domain: 'hang.test', endpoint: `127.0.0.1:${hangPort}` },
    ],
    quotas: { slices: 6, slivers: 12 },
    saConfig: {
      providers: [
        { urn: 'urn:fedlab:plc.test:sp:acme', quotas: { slices: 6, slivers: 12 } },
        { urn: 'urn:fedlab:plc.test:sp:beta', quotas: {} },
      ],
      limits: { site_deadline_ms: DEADLINE_MS },
    },
  });
  beta = await fed.home.pki.issue('urn:fedlab:plc.test:sp:beta');
  stranger = await fed.home.pki.issue('urn:fedlab:plc.test:sp:stranger');
  member = await fed.home.pki.issue('urn:fedlab:plc.test:user:bob');
}, 120_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  hang?.close();
  await fed?.destroy();
  await disposeParties();
});

const plcNodes = (): readonly TestNode[] => fed.nodes.get('plc.test') ?? [];

describe('slice authority across sites', () => {
  it('creates a slice on two sites, shows it, lists it, renews it per site, and deletes it everywhere', async () => {
    const sa = fed.saClient();
    const res = await sa.createSlice({
      users: [],
      requestId: 'r-two',
      name: 'two',
      description: 'two sites',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest('plc.test', { count: 2 }), siteRequest('pg.test', { count: 1 })],
      start: true,
      wait: true,
    });
    const slice = res.slice!;
    expect(slice.urn).toBe('urn:fedlab:plc.test:slice:two');
    expect(slice.state).toBe(SliceState.SLICE_STATE_READY);
    expect(slice.sites.map((s) => [s.site, s.status?.code])).toEqual([
      ['plc.test', 0],
      ['pg.test', 0],
    ]);
    expect(slice.slivers).toHaveLength(3);
    for (const s of slice.slivers) {
      expect(s.allocationState).toBe(AllocationState.ALLOCATION_STATE_PROVISIONED);
      expect([OperationalState.OPERATIONAL_STATE_READY, OperationalState.OPERATIONAL_STATE_CONFIGURING]).toContain(s.operationalState);
      expect(s.sliceAuthorityUrn).toBe(fed.home.sa.urn);
    }
    // What the SA says is what the nodes have.
    const on = (await fed.sliversOnNodes()).filter(([, sl]) => sl === slice.urn);
    expect(on.map(([, , s]) => s).sort()).toEqual(slice.slivers.map((s) => s.urn).sort());

    const got = await sa.getSlice({ sliceUrn: slice.urn });
    expect(got.slice?.slivers.map((s) => s.urn).sort()).toEqual(slice.slivers.map((s) => s.urn).sort());
    const listed = await sa.listSlices({ pageSize: 0, pageToken: '', state: 0 });
    expect(listed.slices.map((s) => s.urn)).toContain(slice.urn);
    // Pages.
    const urns: string[] = [];
    let token = '';
    do {
      const page = await sa.listSlices({ pageSize: 1, pageToken: token, state: 0 });
      expect(page.slices.length).toBeLessThanOrEqual(1);
      urns.push(...page.slices.map((s) => s.urn));
      token = page.nextPageToken;
    } while (token);
    expect(urns).toEqual(listed.slices.map((s) => s.urn));
    // Another provider does not see it.
    const other = await fed
      .saClient(beta)
      .getSlice({ sliceUrn: slice.urn })
      .catch((e: unknown) => e);
    expect(code(other)).toBe(Status.NOT_FOUND);
    expect((await fed.saClient(beta).listSlices({ pageSize: 0, pageToken: '', state: 0 })).slices).toHaveLength(0);
    // Administrators see every slice.
    expect((await fed.saClient(fed.home.admin).listSlices({ pageSize: 0, pageToken: '', state: 0 })).slices.map((s) => s.urn)).toContain(
      slice.urn,
    );

    // Renew to 10 days: plc grants it, pg (3-day maximum) grants at most 3 days; the slice expires with the earliest.
    const asked = Date.now() + 10 * 86_400_000;
    const renewed = await sa.renewSlice({ sliceUrn: slice.urn, expiresAt: new Date(asked), bestEffort: false });
    expect(renewed.results.map((r) => [r.site, r.status?.code])).toEqual([
      ['plc.test', 0],
      ['pg.test', 0],
    ]);
    const plcExp = renewed.slice?.sites.find((s) => s.site === 'plc.test')?.expiresAt?.getTime() ?? 0;
    const pgExp = renewed.slice?.sites.find((s) => s.site === 'pg.test')?.expiresAt?.getTime() ?? 0;
    expect(Math.abs(plcExp - asked)).toBeLessThan(2000);
    expect(pgExp).toBeLessThanOrEqual(Date.now() + 3 * 86_400_000);
    expect(pgExp).toBeGreaterThan(Date.now() + 3 * 86_400_000 - 60_000);
    expect(renewed.slice?.expiresAt?.getTime()).toBe(pgExp);

    const del = await sa.deleteSlice({ sliceUrn: slice.urn });
    expect(del.slice?.state).toBe(SliceState.SLICE_STATE_DELETED);
    expect(del.results.every((r) => r.status?.code === 0)).toBe(true);
    expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === slice.urn)).toEqual([]);
    // Idempotent.
    const again = await sa.deleteSlice({ sliceUrn: slice.urn });
    expect(again.slice?.state).toBe(SliceState.SLICE_STATE_DELETED);
    // Deleted slices leave the default listing.
    expect((await sa.listSlices({ pageSize: 0, pageToken: '', state: 0 })).slices.map((s) => s.urn)).not.toContain(slice.urn);
  });

  it('GetSlice shows each sliver as its site reports it now (and tells watchers); DeleteSlice then removes what the site holds', async () => {
    const sa = fed.saClient();
    const res = await sa.createSlice({
      users: [],
      requestId: 'r-live',
      name: 'live',
      description: '',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest('plc.test', { count: 2 })],
      start: true,
      wait: true,
    });
    const slice = res.slice!;
    expect(slice.state).toBe(SliceState.SLICE_STATE_READY);
    const [a, b] = slice.slivers;
    const nodeOf = (urn: string): TestNode => plcNodes().find((n) => n.urn === urn)!;
    // Behind the SA's back: the owner stops one sliver and deletes the other on their nodes.
    await nodeOf(a!.nodeUrn)
      .client()
      .controlSliver({ sliverUrn: a!.urn, action: 2 }, { chain: nodeOf(a!.nodeUrn).ownerChain as string[] });
    await nodeOf(b!.nodeUrn)
      .client()
      .deleteSliver({ sliverUrn: b!.urn }, { chain: nodeOf(b!.nodeUrn).ownerChain as string[] });
    const watched: WatchSliceResponse[] = [];
    const watch = (async () => {
      for await (const e of sa.watchSlice({ sliceUrn: slice.urn, afterSequence: 0, follow: true }, { deadlineMs: 10_000 })) {
        watched.push(e);
        if (watched.filter((x) => x.sliverUrn).length >= 2) return;
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    const got = (await sa.getSlice({ sliceUrn: slice.urn })).slice!;
    const byUrn = new Map(got.slivers.map((s) => [s.urn, s]));
    expect(byUrn.get(a!.urn)?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_STOPPED);
    expect(byUrn.get(a!.urn)?.error).toBe('');
    expect(byUrn.get(b!.urn)?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_FAILED);
    expect(byUrn.get(b!.urn)?.error).toMatch(/no longer has this sliver/);
    await watch;
    expect(watched.filter((e) => e.sliverUrn).map((e) => [e.sliverUrn, e.message.split(':')[0]])).toEqual(
      expect.arrayContaining([
        [a!.urn, 'now stopped'],
        [b!.urn, 'now failed'],
      ]),
    );
    // The slice itself is as it was made; deleting it removes what the site still holds.
    expect(got.state).toBe(SliceState.SLICE_STATE_READY);
    const del = await sa.deleteSlice({ sliceUrn: slice.urn });
    expect(del.slice?.state).toBe(SliceState.SLICE_STATE_DELETED);
    expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === slice.urn)).toEqual([]);
  });

  it('streams per-node progress with increasing sequence numbers (wait = false, WatchSlice)', async () => {
    const sa = fed.saClient();
    const res = await sa.createSlice({
      users: [],
      requestId: 'r-watch',
      name: 'watched',
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test', { count: 2 })],
      start: true,
      wait: false,
    });
    expect(res.slice?.state).toBe(SliceState.SLICE_STATE_PENDING);
    const events: WatchSliceResponse[] = [];
    for await (const e of sa.watchSlice({ sliceUrn: res.slice!.urn, afterSequence: 0, follow: false })) events.push(e);
    expect(events[0]?.slice).toBeDefined();
    const last = events[events.length - 1]!;
    expect(last.state).toBe(SliceState.SLICE_STATE_READY);
    expect(last.slice?.slivers).toHaveLength(2);
    for (let i = 1; i < events.length; i++) expect(events[i]!.sequence).toBeGreaterThan(events[i - 1]!.sequence);
    // Unless the snapshot came after the work, every node's steps are there.
    if (events[0]!.state === SliceState.SLICE_STATE_PENDING) {
      const perNode = events.filter((e) => e.nodeUrn);
      expect(new Set(perNode.map((e) => e.nodeUrn)).size).toBe(2);
      expect(perNode.map((e) => e.message)).toEqual(expect.arrayContaining(['allocated', 'provisioned', 'started']));
    }
    // Replays from a sequence.
    const replay: WatchSliceResponse[] = [];
    for await (const e of sa.watchSlice({ sliceUrn: res.slice!.urn, afterSequence: events[0]!.sequence, follow: false })) replay.push(e);
    expect(replay.map((e) => e.sequence)).toEqual(events.slice(1).map((e) => e.sequence));
    await sa.deleteSlice({ sliceUrn: res.slice!.urn });
  });

  it('all or nothing: a site that is down rolls back every other site, within the deadline, naming the site', async () => {
    const sa = fed.saClient();
    for (const down of ['down.test', 'hang.test']) {
      const started = Date.now();
      const res = await sa.createSlice({
        users: [],
        requestId: `r-aon-${down}`,
        name: `aon-${down.split('.')[0]}`,
        description: '',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: [siteRequest('plc.test', { count: 2 }), siteRequest('pg.test', { count: 1 }), siteRequest(down)],
        start: false,
        wait: true,
      });
      const took = Date.now() - started;
      // The down site costs at most its deadline; the answer follows once the other sites are rolled back.
      expect(took).toBeLessThan(DEADLINE_MS + 6000);
      const slice = res.slice!;
      expect(slice.state).toBe(SliceState.SLICE_STATE_FAILED);
      const bad = slice.sites.find((s) => s.site === down)!;
      expect([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]).toContain(bad.status?.code);
      expect(bad.status?.reason).toContain(down);
      for (const s of slice.sites.filter((x) => x.site !== down)) {
        expect(s.status?.code).toBe(Status.ABORTED);
        expect(s.status?.reason).toContain(down);
      }
      // Every node's outcome is reported, none is left allocated, and nothing is left on any node.
      expect(slice.slivers.length).toBe(3);
      expect(slice.slivers.every((s) => s.allocationState === AllocationState.ALLOCATION_STATE_UNALLOCATED && s.error !== '')).toBe(true);
      expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === slice.urn)).toEqual([]);
      // The name is free again once nothing is left anywhere.
      expect(
        (await sa.listSlices({ pageSize: 0, pageToken: '', state: SliceState.SLICE_STATE_FAILED })).slices.map((s) => s.urn),
      ).toContain(slice.urn);
    }
  });

  it('best effort keeps the sites that worked', async () => {
    const sa = fed.saClient();
    const res = await sa.createSlice({
      users: [],
      requestId: 'r-be',
      name: 'besteffort',
      description: '',
      mode: SliceMode.SLICE_MODE_BEST_EFFORT,
      sites: [siteRequest('plc.test', { count: 1 }), siteRequest('down.test')],
      start: true,
      wait: true,
    });
    const slice = res.slice!;
    expect(slice.state).toBe(SliceState.SLICE_STATE_PARTIAL);
    expect(slice.sites.find((s) => s.site === 'plc.test')?.status?.code).toBe(0);
    expect(slice.sites.find((s) => s.site === 'down.test')?.status?.reason).toContain('down.test');
    const live = slice.slivers.filter((s) => s.allocationState === AllocationState.ALLOCATION_STATE_PROVISIONED);
    expect(live).toHaveLength(1);
    expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === slice.urn).map(([, , s]) => s)).toEqual([live[0]!.urn]);
    // A best-effort slice whose down site is configured still deletes (the down site is retried in the background).
    const del = await sa.deleteSlice({ sliceUrn: slice.urn });
    expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === slice.urn)).toEqual([]);
    expect([SliceState.SLICE_STATE_DELETED, SliceState.SLICE_STATE_DELETING]).toContain(del.slice?.state);
  });

  it('refuses what it must: quotas, unknown and revoked providers, request ids, names, bad input', async () => {
    const sa = fed.saClient();
    // Quotas: 12 slivers at most.
    const tooMany = await sa
      .createSlice({
        users: [],
        requestId: 'r-q',
        name: 'big',
        description: '',
        mode: 0,
        sites: [siteRequest('plc.test', { count: 13 })],
        start: false,
        wait: true,
      })
      .catch((e: unknown) => e);
    expect(code(tooMany)).toBe(Status.RESOURCE_EXHAUSTED);
    expect((tooMany as Error).message).toMatch(/quota slivers.*left/);
    // Unknown provider.
    const unknown = await fed
      .saClient(stranger)
      .listSlices({ pageSize: 0, pageToken: '', state: 0 })
      .catch((e: unknown) => e);
    expect(code(unknown)).toBe(Status.PERMISSION_DENIED);
    expect((unknown as Error).message).toMatch(/no provider account/);
    // Request ids: a retry returns the same slice; the same id with other arguments is ALREADY_EXISTS.
    const first = await sa.createSlice({
      users: [],
      requestId: 'r-idem',
      name: 'idem',
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test')],
      start: false,
      wait: true,
    });
    const retry = await sa.createSlice({
      users: [],
      requestId: 'r-idem',
      name: 'idem',
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test')],
      start: false,
      wait: true,
    });
    expect(retry.slice?.urn).toBe(first.slice?.urn);
    expect(retry.slice?.slivers.map((s) => s.urn)).toEqual(first.slice?.slivers.map((s) => s.urn));
    expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === first.slice?.urn)).toHaveLength(1);
    const reused = await sa
      .createSlice({
        users: [],
        requestId: 'r-idem',
        name: 'idem',
        description: 'other',
        mode: 0,
        sites: [siteRequest('plc.test')],
        start: false,
        wait: true,
      })
      .catch((e: unknown) => e);
    expect(code(reused)).toBe(Status.ALREADY_EXISTS);
    const taken = await sa
      .createSlice({
        users: [],
        requestId: 'r-idem2',
        name: 'idem',
        description: '',
        mode: 0,
        sites: [siteRequest('plc.test')],
        start: false,
        wait: true,
      })
      .catch((e: unknown) => e);
    expect(code(taken)).toBe(Status.ALREADY_EXISTS);
    expect((taken as Error).message).toMatch(/taken/);
    // Bad input changes nothing.
    const before = (await sa.listSlices({ pageSize: 0, pageToken: '', state: 0 })).slices.length;
    for (const bad of [
      { name: 'Bad Name', sites: [siteRequest('plc.test')] },
      { name: 'x', sites: [siteRequest('nowhere.test')] },
      { name: 'x', sites: [] },
      { name: 'x', sites: [siteRequest('plc.test', { nodeUrns: ['urn:fedlab:pg.test:node:n1'] })] },
    ]) {
      const e = await sa
        .createSlice({
          users: [],
          requestId: `r-bad-${Math.random().toString(36).slice(2)}`,
          description: '',
          mode: 0,
          start: false,
          wait: true,
          ...bad,
        })
        .catch((x: unknown) => x);
      expect(code(e)).toBe(Status.INVALID_ARGUMENT);
    }
    expect((await sa.listSlices({ pageSize: 0, pageToken: '', state: 0 })).slices.length).toBe(before);
    // A node that does not exist: the site says so, the slice FAILED, nothing is left on any node.
    const ghost = await sa.createSlice({
      users: [],
      requestId: 'r-ghost',
      name: 'ghost',
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test', { nodeUrns: ['urn:fedlab:plc.test:node:nope'] })],
      start: false,
      wait: true,
    });
    expect(ghost.slice?.state).toBe(SliceState.SLICE_STATE_FAILED);
    expect(ghost.slice?.sites[0]?.status?.code).toBe(Status.NOT_FOUND);
    expect(ghost.slice?.sites[0]?.status?.reason).toContain('nope');
    expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === ghost.slice?.urn)).toEqual([]);
    // A revoked provider is refused.
    await fed.saClient(beta).listSlices({ pageSize: 0, pageToken: '', state: 0 });
    const revoked = await fed.saClient(fed.home.admin).revoke({ jti: '', keyThumbprint: beta.kid, reason: 'left the federation' });
    expect(revoked.version).toBeGreaterThan(0);
    const refused = await fed
      .saClient(beta)
      .listSlices({ pageSize: 0, pageToken: '', state: 0 })
      .catch((e: unknown) => e);
    expect(code(refused)).toBe(Status.PERMISSION_DENIED);
    expect((refused as Error).message).toMatch(/revoked/);
    const list = await fed.saClient(fed.home.admin).listRevocations({ pageSize: 0, pageToken: '', sinceVersion: 0 });
    expect(list.entries.map((e) => e.keyThumbprint)).toContain(beta.kid);
    // Providers may not revoke others' keys.
    const notAdmin = await sa.revoke({ jti: '', keyThumbprint: stranger.kid, reason: '' }).catch((e: unknown) => e);
    expect(code(notAdmin)).toBe(Status.PERMISSION_DENIED);
    await sa.deleteSlice({ sliceUrn: first.slice!.urn });
  });

  it('a slice credential, delegated to a member, execs and reads on node managers of both domains and cannot delete', async () => {
    const sa = fed.saClient();
    const res = await sa.createSlice({
      users: [],
      requestId: 'r-cred',
      name: 'cred',
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test', { count: 1 }), siteRequest('pg.test', { count: 1 })],
      start: true,
      wait: true,
    });
    const slice = res.slice!;
    const sliver = slice.slivers.find((x) => x.nodeUrn.startsWith('urn:fedlab:plc.test:'))!;
    const node = plcNodes().find((n) => n.urn === sliver.nodeUrn)!;
    const issued = await sa.issueSliceCredential({
      requestId: 'c1',
      sliceUrn: slice.urn,
      holderCertificatePem: fed.home.sp.certPem,
      privileges: [],
      targets: [],
      maxDelegations: 1,
      ttlS: 0,
    });
    expect(issued.chain).toHaveLength(1);
    expect(issued.expiresAt?.getTime()).toBeLessThanOrEqual(slice.expiresAt!.getTime());
    // Idempotent on request id.
    expect(
      (
        await sa.issueSliceCredential({
          requestId: 'c1',
          sliceUrn: slice.urn,
          holderCertificatePem: fed.home.sp.certPem,
          privileges: [],
          targets: [],
          maxDelegations: 1,
          ttlS: 0,
        })
      ).jti,
    ).toBe(issued.jti);
    // The provider attenuates it for a member: exec and read only.
    const memberChain = (
      await delegate(issued.chain, {
        key: fed.home.sp.privateKey,
        subject: member.urn,
        subjectKey: member.jwk as Record<string, unknown>,
        privileges: ['sliver.exec', 'sliver.read'],
      })
    ).chain;
    const nm = fed.nodeClient(node, member);
    const got = await nm.getSliver({ sliverUrn: sliver.urn }, { chain: memberChain });
    expect(got.sliver?.sliceUrn).toBe(slice.urn);
    await until(
      async () =>
        (await nm.getSliver({ sliverUrn: sliver.urn }, { chain: memberChain })).sliver?.operationalState ===
        OperationalState.OPERATIONAL_STATE_READY,
      10_000,
      'sliver READY',
    );
    let out = '';
    let exit: unknown;
    for await (const chunk of nm.exec(
      { sliverUrn: sliver.urn, argv: ['echo', 'hello from the slice'], env: {}, timeoutMs: 5000 },
      { chain: memberChain },
    )) {
      if (chunk.chunk?.$case === 'stdout') out += chunk.chunk.stdout.toString();
      if (chunk.chunk?.$case === 'exit') exit = chunk.chunk.exit;
    }
    expect(out).toContain('hello from the slice');
    expect(exit).toBeDefined();
    // Not beyond its privileges: no control, and no delete (owner-rooted only).
    const control = await nm.controlSliver({ sliverUrn: sliver.urn, action: 2 }, { chain: memberChain }).catch((e: unknown) => e);
    expect(code(control)).toBe(Status.PERMISSION_DENIED);
    const del = await nm.deleteSliver({ sliverUrn: sliver.urn }, { chain: memberChain }).catch((e: unknown) => e);
    expect(code(del)).toBe(Status.PERMISSION_DENIED);
    expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === slice.urn)).toHaveLength(2);
    // The same chain works on the other domain's node (peered; the node trusts this SA for this slice only).
    const remote = slice.slivers.find((x) => x.nodeUrn.startsWith('urn:fedlab:pg.test:'))!;
    const pgNode = (fed.nodes.get('pg.test') ?? []).find((n) => n.urn === remote.nodeUrn)!;
    const pg = fed.nodeClient(pgNode, member);
    await until(
      async () =>
        (await pg.getSliver({ sliverUrn: remote.urn }, { chain: memberChain })).sliver?.operationalState ===
        OperationalState.OPERATIONAL_STATE_READY,
      10_000,
      'pg sliver READY',
    );
    let pgOut = '';
    for await (const chunk of pg.exec(
      { sliverUrn: remote.urn, argv: ['echo', 'hello from pg'], env: {}, timeoutMs: 5000 },
      { chain: memberChain },
    )) {
      if (chunk.chunk?.$case === 'stdout') pgOut += chunk.chunk.stdout.toString();
    }
    expect(pgOut).toContain('hello from pg');
    // A credential for a slice of another provider is not issued; a wider target is refused.
    const foreign = await fed
      .saClient(beta)
      .issueSliceCredential({
        requestId: 'c2',
        sliceUrn: slice.urn,
        holderCertificatePem: beta.certPem,
        privileges: [],
        targets: [],
        maxDelegations: 0,
        ttlS: 0,
      })
      .catch((e: unknown) => e);
    expect([Status.NOT_FOUND, Status.PERMISSION_DENIED]).toContain(code(foreign));
    const wide = await sa
      .issueSliceCredential({
        requestId: 'c3',
        sliceUrn: slice.urn,
        holderCertificatePem: fed.home.sp.certPem,
        privileges: [],
        targets: ['urn:fedlab:plc.test:node:*'],
        maxDelegations: 0,
        ttlS: 0,
      })
      .catch((e: unknown) => e);
    expect(code(wide)).toBe(Status.INVALID_ARGUMENT);
    // The provider revokes what it was issued: the SA hands its list to both sites, they pass it to the
    // nodes holding the slice, and the member's chain (rooted in the revoked credential) stops working there.
    const r = await sa.revoke({ jti: issued.jti, keyThumbprint: '', reason: 'member left' });
    expect(r.entry?.jti).toBe(issued.jti);
    for (const [client, urn] of [
      [nm, sliver.urn],
      [pg, remote.urn],
    ] as const) {
      await until(
        async () =>
          code(await client.getSliver({ sliverUrn: urn }, { chain: memberChain }).catch((e: unknown) => e)) === Status.UNAUTHENTICATED,
        15_000,
        `revoked chain refused for ${urn}`,
      );
      const refusedExec = await (async () => {
        for await (const _ of client.exec({ sliverUrn: urn, argv: ['true'], env: {}, timeoutMs: 5000 }, { chain: memberChain })) void _;
      })().catch((e: unknown) => e);
      expect(code(refusedExec)).toBe(Status.UNAUTHENTICATED);
      expect(String((refusedExec as Error).message)).toMatch(/revoked/);
    }
    await sa.deleteSlice({ sliceUrn: slice.urn });
  });

  it("a key the SA revoked stops working on its slices' nodes, also on a node that gets a slice of it later", async () => {
    const sa = fed.saClient();
    const carol = await fed.home.pki.issue('urn:fedlab:plc.test:user:carol');
    const [n1, n2] = plcNodes();
    const make = async (name: string, node: TestNode) => {
      const slice = (
        await sa.createSlice({
          users: [],
          requestId: `r-${name}`,
          name,
          description: '',
          mode: 0,
          sites: [siteRequest('plc.test', { nodeUrns: [node.urn] })],
          start: true,
          wait: true,
        })
      ).slice!;
      expect(slice.state).toBe(SliceState.SLICE_STATE_READY);
      const issued = await sa.issueSliceCredential({
        requestId: `c-${name}`,
        sliceUrn: slice.urn,
        holderCertificatePem: fed.home.sp.certPem,
        privileges: [],
        targets: [],
        maxDelegations: 1,
        ttlS: 0,
      });
      const chain = (
        await delegate(issued.chain, {
          key: fed.home.sp.privateKey,
          subject: carol.urn,
          subjectKey: carol.jwk as Record<string, unknown>,
          privileges: ['sliver.read'],
        })
      ).chain;
      return { slice, sliver: slice.slivers[0]!, chain, nm: fed.nodeClient(node, carol) };
    };
    const first = await make('rk-one', n1!);
    await first.nm.getSliver({ sliverUrn: first.sliver.urn }, { chain: first.chain });
    // An administrator revokes carol's key: every chain carol holds for this SA's slices stops working.
    await fed.saClient(fed.home.admin).revoke({ jti: '', keyThumbprint: thumbprintOf(carol.jwk as PublicJwk), reason: 'key lost' });
    await until(
      async () =>
        code(await first.nm.getSliver({ sliverUrn: first.sliver.urn }, { chain: first.chain }).catch((e: unknown) => e)) ===
        Status.UNAUTHENTICATED,
      15_000,
      'revoked key refused on the first node',
    );
    // A node that held nothing of this SA when the list went out gets it with its first sliver of it.
    const second = await make('rk-two', n2!);
    const err = await second.nm.getSliver({ sliverUrn: second.sliver.urn }, { chain: second.chain }).catch((e: unknown) => e);
    expect(code(err)).toBe(Status.UNAUTHENTICATED);
    expect(String((err as Error).message)).toMatch(/revoked/);
    for (const x of [first, second]) await sa.deleteSlice({ sliceUrn: x.slice.urn });
  });

  it("reports each node deleted also when its site had already let the slice go; a site takes only a slice authority's own well-signed list", async () => {
    const sa = fed.saClient();
    const slice = (
      await sa.createSlice({
        users: [],
        requestId: 'r-gone',
        name: 'gone',
        description: '',
        mode: 0,
        sites: [siteRequest('plc.test', { count: 2 })],
        start: true,
        wait: true,
      })
    ).slice!;
    const site = fed.sites[0]!;
    const agg = site.aggClient(fed.home.sa);
    const chain = await site.saChain({ sa: fed.home.sa });
    // Behind the SA's back (as the site's own expiry sweep may do first), the site deletes the slice.
    await agg.delete({ urns: [slice.urn], bestEffort: false }, { chain });
    const watched: WatchSliceResponse[] = [];
    const watch = (async () => {
      for await (const e of sa.watchSlice({ sliceUrn: slice.urn, afterSequence: 0, follow: true }, { deadlineMs: 10_000 })) watched.push(e);
    })();
    await new Promise((r) => setTimeout(r, 200));
    expect((await sa.deleteSlice({ sliceUrn: slice.urn })).slice?.state).toBe(SliceState.SLICE_STATE_DELETED);
    await watch;
    expect(
      watched
        .filter((e) => e.message === 'deleted')
        .map((e) => e.sliverUrn)
        .sort(),
    ).toEqual(slice.slivers.map((x) => x.urn).sort());

    // UpdateRevocations at the site: a list that is not a signed list, or is not the caller's own, is refused.
    const garbage = await agg.updateRevocations({ signedList: 'not a list' }, { chain }).catch((e: unknown) => e);
    expect(code(garbage)).toBe(Status.INVALID_ARGUMENT);
    const other = await fed.home.pki.issue('urn:fedlab:plc.test:authority:other');
    const jwk = toPublicJwk(other.privateKey);
    const foreign = signRevocationList({ v: 1, jwk, kid: thumbprintOf(jwk), version: 1, entries: [] }, other.privateKey);
    const notOwn = await agg.updateRevocations({ signedList: foreign }, { chain }).catch((e: unknown) => e);
    expect(code(notOwn)).toBe(Status.PERMISSION_DENIED);
    expect(String((notOwn as Error).message)).toMatch(/only its own revocation list/);
  });

  it('expires slices: a short-lived slice is deleted at every site and its slivers vanish from the nodes', async () => {
    const sa = fed.saClient();
    const res = await sa.createSlice({
      users: [],
      requestId: 'r-exp',
      name: 'shortlived',
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test', { count: 1 }), siteRequest('pg.test', { count: 1 })],
      expiresAt: new Date(Date.now() + 4000),
      start: true,
      wait: true,
    });
    expect(res.slice?.state).toBe(SliceState.SLICE_STATE_READY);
    expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === res.slice?.urn)).toHaveLength(2);
    // A follower sees the expiry through to its end.
    const followed: WatchSliceResponse[] = [];
    const follow = (async () => {
      for await (const e of sa.watchSlice({ sliceUrn: res.slice!.urn, afterSequence: 0, follow: true })) followed.push(e);
    })();
    await until(
      async () => (await sa.getSlice({ sliceUrn: res.slice!.urn })).slice?.state === SliceState.SLICE_STATE_EXPIRED,
      15_000,
      'slice EXPIRED',
    );
    await follow;
    expect(followed[followed.length - 1]?.state).toBe(SliceState.SLICE_STATE_EXPIRED);
    expect(followed.filter((e) => e.message === 'deleted').map((e) => e.nodeUrn)).toHaveLength(2);
    await until(
      async () => (await fed.sliversOnNodes()).filter(([, sl]) => sl === res.slice?.urn).length === 0,
      10_000,
      'slivers gone from the nodes',
    );
  });
});
