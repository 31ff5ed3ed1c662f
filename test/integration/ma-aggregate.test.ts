// The aggregate's own books, without node managers: Allocate is all or nothing, idempotent on request_id and
// never over-commits a node under many concurrent calls; holds end after exactly ten minutes (also across a
// restart); chains must be rooted at this MA and grant the call; bad input gets a clear code naming the node or
// rule and changes nothing; delegation, revocation and provider registration follow the site's rules; a Delete
// of a slice leaves a tombstone that fences the calls that arrived before it.
import { Metadata, status as Status } from '@grpc/grpc-js';
import { CompactSign } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueRoot } from '../../services/core/credentials/index.js';
import { type ResourceRequest } from '../../services/generated/fedlab/v1/common.js';
import {
  ALLOCATE_REQUEST_RETENTION_MS,
  ALLOCATE_REQUEST_SCAN_MS,
  SliceLedger,
  TOMBSTONE_RETENTION_MS,
} from '../../services/management-authority/aggregate/index.js';
import { refuseSuperseded } from '../../services/management-authority/aggregate/tombstones.js';
import { ManualClock } from '../../services/core/clock.js';
import { termsDigest } from '../../services/management-authority/providers.js';
import { DEFAULT_TERMS } from '../../services/management-authority/config.js';
import { makeTestPki } from '../helpers/pki.js';
import {
  enrolFakeNode,
  siteParties,
  startSite,
  type FakeNode,
  type Site,
  type SiteParties,
  disposeParties,
} from '../helpers/ma-harness.js';

const clock = new ManualClock(Date.now());
let parties: SiteParties;
let site: Site;
let nodes: FakeNode[] = [];
let chain: string[];
const D = 'agg.test';
const sp = `urn:fedlab:${D}:sp:acme`;
const codeOf = (e: unknown) => (e as { code?: number }).code;

function req(nodeUrns: string[], o: Partial<ResourceRequest> & { count?: number; cpu?: number } = {}): ResourceRequest {
  return {
    nodes: { nodeUrns, count: o.count ?? 0, clientIds: [] },
    resources: { cpuMillis: o.cpu ?? 100, memMb: 64, diskMb: 64, pids: 32, bandwidthKbps: 0 },
    links: o.links ?? [],
    exclusive: o.exclusive ?? false,
    requestDocument: '',
    requestDocumentFormat: '',
  };
}

let n = 0;
async function allocate(slice: string, request: ResourceRequest, c: string[] = chain, requestId = `r${++n}`) {
  return site
    .aggClient()
    .allocate({ users: [], requestId, sliceUrn: `urn:fedlab:${D}:slice:${slice}`, providerUrn: sp, request }, { chain: c });
}

beforeAll(async () => {
  parties = await siteParties(D);
  site = await startSite({ parties, clock, manualTimers: true });
  nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await enrolFakeNode(site, `a${i}`));
  for (const node of nodes) await node.beat();
  chain = await site.saChain({ ttlS: 300 * 86_400 });
});
afterAll(async () => {
  for (const x of nodes) x.close();
  await site?.destroy();
  await disposeParties();
});

describe('Allocate', () => {
  it('holds all or nothing, naming the node that could not be satisfied', async () => {
    const before = site.ma!.aggregate.stats();
    const err = await allocate('aon', req([nodes[0]!.urn, nodes[1]!.urn], { cpu: 1001 })).catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Status.RESOURCE_EXHAUSTED);
    expect((err as Error).message).toMatch(nodes[0]!.urn);
    expect((err as Error).message).toMatch(/cpu_millis/);
    expect(site.ma!.aggregate.stats()).toEqual(before);
  });

  it('is idempotent on request_id, and refuses the same id with other arguments', async () => {
    const a = await allocate('idem', req([nodes[0]!.urn]), chain, 'same-id');
    const b = await allocate('idem', req([nodes[0]!.urn]), chain, 'same-id');
    expect(b.slivers.map((s) => s.urn)).toEqual(a.slivers.map((s) => s.urn));
    const c = await allocate('idem', req([nodes[1]!.urn]), chain, 'same-id').catch((e: unknown) => e);
    expect(codeOf(c)).toBe(Status.ALREADY_EXISTS);
    await site.aggClient().delete({ urns: [`urn:fedlab:${D}:slice:idem`], bestEffort: false }, { chain });
  });

  it('never over-commits a node under 50 concurrent Allocates', async () => {
    const node = nodes[2]!;
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => allocate(`race${i}`, req([node.urn], { cpu: 100 }))));
    const won = results.filter((r) => r.status === 'fulfilled').length;
    expect(won).toBe(10);
    for (const r of results) if (r.status === 'rejected') expect(codeOf(r.reason)).toBe(Status.RESOURCE_EXHAUSTED);
    expect(site.ma!.aggregate.committedOn(node.urn).committed.cpuMillis).toBe(1000);
    const listed = await site.aggClient().listResources({ pageSize: 0, pageToken: '', availableOnly: true, documentFormat: '' });
    expect(listed.nodes.map((x) => x.urn)).not.toContain(node.urn);
    for (let i = 0; i < 50; i++)
      await site
        .aggClient()
        .delete({ urns: [`urn:fedlab:${D}:slice:race${i}`], bestEffort: false }, { chain })
        .catch(() => undefined);
    expect(site.ma!.aggregate.committedOn(node.urn).committed.cpuMillis).toBe(0);
  });

  it('picks nodes for a count, most free first, and says when there are not enough', async () => {
    const got = await allocate('count', req([], { count: 3 }));
    expect(new Set(got.slivers.map((s) => s.nodeUrn)).size).toBe(3);
    expect(got.slivers.map((s) => s.clientId)).toEqual(['0', '1', '2']);
    const tooMany = await allocate('count2', req([], { count: 4 })).catch((e: unknown) => e);
    expect(codeOf(tooMany)).toBe(Status.RESOURCE_EXHAUSTED);
    expect((tooMany as Error).message).toMatch(/only 3/);
    await site.aggClient().delete({ urns: [`urn:fedlab:${D}:slice:count`], bestEffort: false }, { chain });
  });

  it('ends a hold after exactly ten minutes, and a late Provision gets a clear code', async () => {
    const a = await allocate('hold', req([nodes[0]!.urn]));
    const urn = a.slivers[0]!.urn;
    expect(a.slivers[0]!.expiresAt!.getTime()).toBe(clock.now() + 600_000);
    clock.advance(600_000 - 1);
    expect(await site.ma!.aggregate.sweep()).toBe(0);
    clock.advance(1);
    // Expired but not yet swept: FAILED_PRECONDITION saying so.
    const late = await site
      .aggClient()
      .provision({ urns: [urn], bestEffort: false, start: false }, { chain })
      .catch((e: unknown) => e);
    expect(codeOf(late)).toBe(Status.FAILED_PRECONDITION);
    expect((late as Error).message).toMatch(/hold on .* expired/);
    expect(await site.ma!.aggregate.sweep()).toBe(1);
    const gone = await site
      .aggClient()
      .provision({ urns: [urn], bestEffort: false, start: false }, { chain })
      .catch((e: unknown) => e);
    expect(codeOf(gone)).toBe(Status.NOT_FOUND);
    expect(site.ma!.aggregate.committedOn(nodes[0]!.urn).slivers).toBe(0);
  });

  it('refuses bad input with the node or rule named, changing nothing', async () => {
    const other = await makeTestPki('other.test');
    const foreignMa = await other.issue('urn:fedlab:other.test:authority:ma');
    const foreignChain = [
      await issueRoot({
        key: foreignMa.privateKey,
        issuer: foreignMa.urn,
        subject: parties.sa.urn,
        subjectKey: parties.sa.jwk as Record<string, unknown>,
        targets: [`urn:fedlab:${D}:node:*`],
        privileges: ['sliver.create'],
        ttlSeconds: 3600,
      }),
    ].flatMap((x) => x.chain);
    const readOnly = await site.saChain({ privileges: ['sliver.read'] });
    const before = site.ma!.aggregate.stats();
    const cases: [string, () => Promise<unknown>, number, RegExp][] = [
      ['an unknown node', () => allocate('bad', req([`urn:fedlab:${D}:node:nope`])), Status.NOT_FOUND, /node:nope/],
      [
        'a node of another site',
        () => allocate('bad', req(['urn:fedlab:other.test:node:n1'])),
        Status.INVALID_ARGUMENT,
        /not at this site/,
      ],
      ['more than a node has', () => allocate('bad', req([nodes[1]!.urn], { cpu: 5000 })), Status.RESOURCE_EXHAUSTED, /a1.*cpu_millis/],
      ['exclusive on planetlab', () => allocate('bad', req([nodes[1]!.urn], { exclusive: true })), Status.FAILED_PRECONDITION, /planetlab/],
      [
        'links on planetlab',
        () =>
          allocate(
            'bad',
            req([nodes[1]!.urn], { links: [{ name: 'l', endpoints: ['a', 'b'], bandwidthKbps: 1, delayMs: 0, lossPercent: 0 }] }),
          ),
        Status.FAILED_PRECONDITION,
        /links/,
      ],
      ['no nodes', () => allocate('bad', req([])), Status.INVALID_ARGUMENT, /count/],
      ['a chain rooted at another site', () => allocate('bad', req([nodes[1]!.urn]), foreignChain), Status.UNAUTHENTICATED, /trust-anchor/],
      ['no chain', () => allocate('bad', req([nodes[1]!.urn]), []), Status.UNAUTHENTICATED, /missing/],
      ['a chain without sliver.create', () => allocate('bad', req([nodes[1]!.urn]), readOnly), Status.PERMISSION_DENIED, /sliver\.create/],
      [
        "a slice outside the slice authority's domain",
        () =>
          site
            .aggClient()
            .allocate(
              { users: [], requestId: 'x', sliceUrn: 'urn:fedlab:other.test:slice:s', providerUrn: sp, request: req([nodes[1]!.urn]) },
              { chain },
            ),
        Status.PERMISSION_DENIED,
        /domain/,
      ],
      [
        'a Provision of something never allocated',
        () => site.aggClient().provision({ urns: [`urn:fedlab:${D}:slice:never`], bestEffort: false, start: false }, { chain }),
        Status.NOT_FOUND,
        /never/,
      ],
      ['a malformed URN', () => site.aggClient().status({ urns: ['urn:fedlab:x'] }, { chain }), Status.INVALID_ARGUMENT, /urns\[0\]/],
    ];
    for (const [what, call, code, msg] of cases) {
      const err = await call().catch((e: unknown) => e);
      expect(codeOf(err), what).toBe(code);
      expect((err as Error).message, what).toMatch(msg);
    }
    expect(site.ma!.aggregate.stats()).toEqual(before);
    await other.cleanup();
  });

  it("keeps other slice authorities off a slice, and caps what a chain's lim allows", async () => {
    const slice = `urn:fedlab:${D}:slice:owned`;
    await allocate('owned', req([nodes[0]!.urn]));
    const sa2 = await parties.pki.issue(`urn:fedlab:${D}:authority:sa2`);
    const res = await site.maClient().delegateToSliceAuthority({
      requestId: 'sa2',
      sliceAuthorityUrn: sa2.urn,
      sliceAuthorityJwk: JSON.stringify(sa2.jwk),
      sliceAuthorityCertificatePem: '',
      privileges: [],
      targets: [],
      limits: { slivers: 1 },
      ttlS: 0,
      maxDelegations: 0,
    });
    const agg2 = site.aggClient(sa2);
    const denied = await agg2.delete({ urns: [slice], bestEffort: false }, { chain: res.chain }).catch((e: unknown) => e);
    expect(codeOf(denied)).toBe(Status.PERMISSION_DENIED);
    expect((denied as Error).message).toMatch(/created here by/);
    await agg2.allocate(
      { users: [], requestId: 'q1', sliceUrn: `urn:fedlab:${D}:slice:q1`, providerUrn: sp, request: req([nodes[1]!.urn]) },
      { chain: res.chain },
    );
    const over = await agg2
      .allocate(
        { users: [], requestId: 'q2', sliceUrn: `urn:fedlab:${D}:slice:q2`, providerUrn: sp, request: req([nodes[1]!.urn]) },
        { chain: res.chain },
      )
      .catch((e: unknown) => e);
    expect(codeOf(over)).toBe(Status.RESOURCE_EXHAUSTED);
    expect((over as Error).message).toMatch(/allows 1 slivers/);
    await agg2.delete({ urns: [`urn:fedlab:${D}:slice:q1`], bestEffort: false }, { chain: res.chain });
    await site.aggClient().delete({ urns: [slice], bestEffort: false }, { chain });
  });

  it('refuses a DOWN node with UNAVAILABLE naming it', async () => {
    clock.advance(5000);
    site.ma!.registry.check();
    const err = await allocate('down', req([nodes[0]!.urn])).catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Status.UNAVAILABLE);
    expect((err as Error).message).toMatch(/a0 is DOWN/);
    const listed = await site
      .aggClient()
      .listResources({ pageSize: 0, pageToken: '', availableOnly: false, documentFormat: 'fedlab-rspec+json' });
    expect(listed.nodes).toHaveLength(0);
    for (const x of nodes) await x.beat();
    const again = await site
      .aggClient()
      .listResources({ pageSize: 2, pageToken: '', availableOnly: false, documentFormat: 'fedlab-rspec+json' });
    expect(again.nodes).toHaveLength(2);
    expect(again.nextPageToken).not.toBe('');
    expect(JSON.parse(again.advertisementDocument).nodes).toHaveLength(2);
  });
});

describe('Shutdown', () => {
  it('freezes a slice for administrators and its slice authority only', async () => {
    const slice = `urn:fedlab:${D}:slice:frozen`;
    await allocate('frozen', req([nodes[1]!.urn]));
    const stranger = await site
      .aggClient(parties.sp)
      .shutdown({ sliceUrn: slice, reason: 'x' })
      .catch((e: unknown) => e);
    expect(codeOf(stranger)).toBe(Status.PERMISSION_DENIED);
    await site.aggClient(parties.sa).shutdown({ sliceUrn: slice, reason: 'abuse report' });
    const byAdmin = await site.aggClient(parties.admin).shutdown({ sliceUrn: slice, reason: 'abuse report, confirmed' });
    expect(byAdmin.results).toEqual([]);
    const prov = await site
      .aggClient()
      .provision({ urns: [slice], bestEffort: false, start: false }, { chain })
      .catch((e: unknown) => e);
    expect(codeOf(prov)).toBe(Status.FAILED_PRECONDITION);
    expect((prov as Error).message).toMatch(/shut down .*confirmed/);
    const more = await allocate('frozen', req([nodes[2]!.urn])).catch((e: unknown) => e);
    expect(codeOf(more)).toBe(Status.FAILED_PRECONDITION);
    const st = await site.aggClient().status({ urns: [slice] }, { chain });
    expect(st.shutDown).toBe(true);
    await site.aggClient().delete({ urns: [slice], bestEffort: false }, { chain });
  });
});

describe('delegation, revocation, providers', () => {
  it('delegates only for administrators and only over this site', async () => {
    const mk = (who = parties.admin, targets: string[] = []) =>
      site
        .maClient(who)
        .delegateToSliceAuthority({
          requestId: `d${Math.random()}`,
          sliceAuthorityUrn: parties.sa.urn,
          sliceAuthorityJwk: '',
          sliceAuthorityCertificatePem: parties.sa.certPem,
          privileges: [],
          targets,
          limits: {},
          ttlS: 0,
          maxDelegations: 0,
        })
        .catch((e: unknown) => e);
    expect(codeOf(await mk(parties.sa))).toBe(Status.PERMISSION_DENIED);
    expect(codeOf(await mk(parties.admin, ['urn:fedlab:other.test:node:*']))).toBe(Status.INVALID_ARGUMENT);
    const ok = (await mk()) as { chain: string[]; jti: string };
    expect(ok.chain).toHaveLength(1);
  });

  it('revokes a delegation: the chain stops working, the list grows by one version', async () => {
    const res = await site.maClient().delegateToSliceAuthority({
      requestId: 'to-revoke',
      sliceAuthorityUrn: parties.sa.urn,
      sliceAuthorityJwk: '',
      sliceAuthorityCertificatePem: parties.sa.certPem,
      privileges: [],
      targets: [],
      limits: {},
      ttlS: 0,
      maxDelegations: 0,
    });
    await allocate('rev', req([nodes[1]!.urn]), res.chain);
    const notAdmin = await site
      .maClient(parties.sa)
      .revoke({ jti: res.jti, keyThumbprint: '', reason: 'x' })
      .catch((e: unknown) => e);
    expect(codeOf(notAdmin)).toBe(Status.PERMISSION_DENIED);
    const r1 = await site.maClient().revoke({ jti: res.jti, keyThumbprint: '', reason: 'compromised' });
    const r2 = await site.maClient().revoke({ jti: res.jti, keyThumbprint: '', reason: 'again' });
    expect(r2.entry).toEqual(r1.entry);
    expect(r1.entry?.revokedBy).toBe(parties.admin.urn);
    const refused = await allocate('rev2', req([nodes[1]!.urn]), res.chain).catch((e: unknown) => e);
    expect(codeOf(refused)).toBe(Status.UNAUTHENTICATED);
    expect((refused as Error).message).toMatch(/revoked/);
    const list = await site.maClient(parties.sp).listRevocations({ pageSize: 0, pageToken: '', sinceVersion: 0 });
    expect(list.version).toBe(r1.version);
    expect(list.entries.at(-1)?.jti).toBe(res.jti);
    expect((await site.maClient().listRevocations({ pageSize: 0, pageToken: '', sinceVersion: list.version })).entries).toHaveLength(0);
    // Heartbeats tell nodes the list's version.
    await site.aggClient().delete({ urns: [`urn:fedlab:${D}:slice:rev`], bestEffort: false }, { chain });
  });

  it('lets an owner withdraw its node by revoking its owner credential, and nothing else', async () => {
    const jti = site.ma!.registry.get(nodes[2]!.urn)!.record.ownerJtis[0]!;
    const stranger = await site
      .maClient(parties.sp)
      .revoke({ jti, keyThumbprint: '', reason: 'mine' })
      .catch((e: unknown) => e);
    expect(codeOf(stranger)).toBe(Status.PERMISSION_DENIED);
    await site.maClient(parties.owner).revoke({ jti, keyThumbprint: '', reason: 'withdrawn' });
    const err = await allocate('withdrawn', req([nodes[2]!.urn])).catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Status.FAILED_PRECONDITION);
    expect((err as Error).message).toMatch(/owner credential .* revoked/);
  });

  it('registers providers that accept the current terms, with their own certificate', async () => {
    const c = site.maClient(parties.sp);
    const base = {
      requestId: 'reg1',
      providerUrn: parties.sp.urn,
      certificatePem: parties.sp.certPem,
      contact: 'ops@acme.test',
      acceptedTermsDigest: termsDigest(DEFAULT_TERMS),
    };
    const wrongTerms = await c.registerServiceProvider({ ...base, acceptedTermsDigest: 'sha256:00' }).catch((e: unknown) => e);
    expect(codeOf(wrongTerms)).toBe(Status.FAILED_PRECONDITION);
    const notMe = await site
      .maClient(parties.sa)
      .registerServiceProvider(base)
      .catch((e: unknown) => e);
    expect(codeOf(notMe)).toBe(Status.PERMISSION_DENIED);
    const reg = await c.registerServiceProvider(base);
    expect(reg.provider?.urn).toBe(parties.sp.urn);
    expect((await c.registerServiceProvider(base)).provider).toEqual(reg.provider);
    expect(site.ma!.providers.isRegistered(parties.sp.urn)).toBe(true);
    // With a signed statement of acceptance (metadata), checked against the provider's key.
    const digest = termsDigest(DEFAULT_TERMS);
    const sign = (payload: object, key = parties.sp.privateKey) =>
      new CompactSign(Buffer.from(JSON.stringify(payload)))
        .setProtectedHeader({ alg: 'ES256', typ: 'fedlab-terms+jwt', kid: parties.sp.kid })
        .sign(key);
    const md = (v: string) => {
      const m = new Metadata();
      m.set('fedlab-terms-statement', v);
      return m;
    };
    const good = await sign({ sub: parties.sp.urn, terms: digest, iat: Math.floor(Date.now() / 1000) });
    await c.registerServiceProvider({ ...base, requestId: 'reg2' }, { metadata: md(good) });
    const forged = await sign({ sub: parties.sp.urn, terms: digest, iat: 1 }, parties.sa.privateKey);
    const bad = await c.registerServiceProvider({ ...base, requestId: 'reg3' }, { metadata: md(forged) }).catch((e: unknown) => e);
    expect(codeOf(bad)).toBe(Status.INVALID_ARGUMENT);
    expect((bad as Error).message).toMatch(/does not verify/);
  });

  it('refuses unregistered providers where the site requires registration', async () => {
    const strict = await startSite({ parties, clock, manualTimers: true, config: { policy: { require_registered_providers: true } } });
    try {
      const node = await enrolFakeNode(strict, 'strict0');
      await node.beat();
      const c = await strict.saChain();
      const err = await strict
        .aggClient()
        .allocate(
          {
            users: [],
            requestId: 's1',
            sliceUrn: `urn:fedlab:${D}:slice:s`,
            providerUrn: `urn:fedlab:${D}:sp:nobody`,
            request: req([node.urn]),
          },
          { chain: c },
        )
        .catch((e: unknown) => e);
      expect(codeOf(err)).toBe(Status.PERMISSION_DENIED);
      expect((err as Error).message).toMatch(/has not registered/);
      node.close();
    } finally {
      await strict.destroy();
    }
  });
});

describe('restart', () => {
  it('releases on start-up every hold that ended while the MA was down', async () => {
    const p = await siteParties('restart.test');
    const c2 = new ManualClock(Date.now());
    const first = await startSite({ parties: p, clock: c2, manualTimers: true });
    const node = await enrolFakeNode(first, 'r0');
    await node.beat();
    const ch = await first.saChain();
    await first.aggClient().allocate(
      {
        users: [],
        requestId: 'h',
        sliceUrn: 'urn:fedlab:restart.test:slice:s',
        providerUrn: 'urn:fedlab:restart.test:sp:acme',
        request: req([node.urn]),
      },
      { chain: ch },
    );
    node.close();
    await first.stop();
    c2.advance(600_000);
    const second = await startSite({ parties: p, clock: c2, manualTimers: true, dataDir: first.dataDir });
    try {
      expect(second.ma!.aggregate.stats()).toMatchObject({ holds: 0, slivers: 0, slices: 0 });
      expect(second.ma!.registry.size).toBe(1);
    } finally {
      await second.stop();
      await first.destroy();
    }
  });
});

describe("the site's revocation list", () => {
  it('drops a revoked delegation once it has expired, and caps the live entries', async () => {
    const p = await siteParties('compact.test');
    const c = new ManualClock(Date.now());
    const s = await startSite({ parties: p, clock: c, manualTimers: true, config: { revocation: { max_entries: 2 } } });
    try {
      const delegate = (requestId: string) =>
        s.maClient().delegateToSliceAuthority({
          requestId,
          sliceAuthorityUrn: p.sa.urn,
          sliceAuthorityJwk: '',
          sliceAuthorityCertificatePem: p.sa.certPem,
          privileges: [],
          targets: [],
          limits: {},
          ttlS: 3600,
          maxDelegations: 0,
        });
      const revoke = (jti: string) => s.maClient().revoke({ jti, keyThumbprint: '', reason: 'test' });
      const live = async () =>
        (await s.maClient().listRevocations({ pageSize: 0, pageToken: '', sinceVersion: 0 })).entries.map((e) => e.jti);
      const d1 = await delegate('c1');
      const d2 = await delegate('c2');
      await revoke(d1.jti);
      // A credential that is not one of the site's delegations: its expiry is not known, so it stays.
      await revoke('bm90LWEtZGVsZWdhdGlvbg');
      // The cap: a third live entry is refused, naming it.
      const full = await revoke(d2.jti).catch((e: unknown) => e);
      expect(codeOf(full)).toBe(Status.RESOURCE_EXHAUSTED);
      expect((full as Error).message).toMatch(/revocation\.max_entries = 2/);
      expect(await s.ma!.delegations.compact()).toBe(0);
      expect(await live()).toEqual([d1.jti, 'bm90LWEtZGVsZWdhdGlvbg']);
      // Past the delegation's expiry (and the margin), its entry leaves the list, which makes room.
      c.advance(3600_000 + 3600_000);
      expect(await s.ma!.delegations.compact()).toBe(1);
      expect(await live()).toEqual(['bm90LWEtZGVsZWdhdGlvbg']);
      await revoke(d2.jti);
      expect(await live()).toEqual(['bm90LWEtZGVsZWdhdGlvbg', d2.jti]);
    } finally {
      await s.destroy();
    }
  });
});

describe('Allocate request ids', () => {
  it('are remembered for a day after their slice is gone, then forgotten', async () => {
    const p = await siteParties('gc.test');
    const c = new ManualClock(Date.now());
    const s = await startSite({ parties: p, clock: c, manualTimers: true });
    const node = await enrolFakeNode(s, 'g0');
    try {
      await node.beat();
      const ch = await s.saChain({ ttlS: 30 * 86_400 });
      const args = {
        users: [],
        requestId: 'gc-1',
        sliceUrn: 'urn:fedlab:gc.test:slice:g',
        providerUrn: 'urn:fedlab:gc.test:sp:acme',
        request: req([node.urn]),
      };
      const first = await s.aggClient().allocate(args, { chain: ch });
      await s.aggClient().delete({ urns: [args.sliceUrn], bestEffort: false }, { chain: ch });
      // A retry soon after answers as the first call did (its slivers now gone), allocating nothing.
      const retry = await s.aggClient().allocate(args, { chain: ch });
      expect(retry.slivers.map((x) => x.urn)).toEqual(first.slivers.map((x) => x.urn));
      expect(s.ma!.aggregate.stats().slivers).toBe(0);
      c.advance(ALLOCATE_REQUEST_RETENTION_MS - ALLOCATE_REQUEST_SCAN_MS);
      expect(await s.ma!.aggregate.forgetAllocateRequests()).toBe(0);
      c.advance(ALLOCATE_REQUEST_SCAN_MS);
      expect(await s.ma!.aggregate.forgetAllocateRequests()).toBe(1);
      // Forgotten: the same request id now makes a new allocation.
      await node.beat();
      const late = await s.aggClient().allocate(args, { chain: ch });
      expect(late.slivers.map((x) => x.urn)).not.toEqual(first.slivers.map((x) => x.urn));
      expect(s.ma!.aggregate.stats().slivers).toBe(1);
    } finally {
      node.close();
      await s.destroy();
    }
  });
});

describe('tombstones', () => {
  it('a Delete of a slice fences the calls that arrived before it, is kept across a restart, and is swept after a day', async () => {
    const p = await siteParties('tomb.test');
    const c = new ManualClock(Date.now());
    const s = await startSite({ parties: p, clock: c, manualTimers: true });
    const node = await enrolFakeNode(s, 't0');
    const slice = 'urn:fedlab:tomb.test:slice:t';
    const args = (requestId: string) => ({
      users: [],
      requestId,
      sliceUrn: slice,
      providerUrn: 'urn:fedlab:tomb.test:sp:acme',
      request: req([node.urn]),
    });
    let second: Site | undefined;
    try {
      await node.beat();
      const ch = await s.saChain({ ttlS: 30 * 86_400 });
      // The aggregate numbers calls as they arrive; a call numbered before the Delete stands for a stale
      // Allocate still in the MA's socket (or waiting on the slice's lock) when the Delete came.
      const state = (s.ma!.aggregate as unknown as { state: { arrive(): number; ledger: SliceLedger } }).state;
      const stale = state.arrive();
      // The slice is not here at all: the Delete succeeds and still leaves a tombstone.
      expect((await s.aggClient().delete({ urns: [slice], bestEffort: false }, { chain: ch })).results).toEqual([]);
      expect(s.ma!.aggregate.tombstones().get(slice)).toMatchObject({ sliceAuthorityUrn: p.sa.urn });
      const fence = { sliceUrn: slice, sliceAuthorityUrn: p.sa.urn };
      expect(() => refuseSuperseded(state.ledger, { ...fence, arrival: stale }, 'Allocate request old')).toThrow(
        expect.objectContaining({ kind: 'aborted', message: expect.stringMatching(/superseded by a delete.*nothing was changed/) }),
      );
      // Another slice authority's calls, and calls that arrive after the Delete, are not fenced.
      expect(() =>
        refuseSuperseded(state.ledger, { ...fence, sliceAuthorityUrn: 'urn:fedlab:tomb.test:authority:other', arrival: stale }, 'x'),
      ).not.toThrow();
      const fresh = await s.aggClient().allocate(args('new-1'), { chain: ch });
      expect(fresh.slivers).toHaveLength(1);
      // A Delete of the slice with its holds: released at once, the tombstone renewed.
      const stale2 = state.arrive();
      await s.aggClient().delete({ urns: [slice], bestEffort: false }, { chain: ch });
      expect(s.ma!.aggregate.stats().holds).toBe(0);
      expect(() => refuseSuperseded(state.ledger, { ...fence, arrival: stale2 }, 'Provision')).toThrow(/superseded by a delete/);

      // Kept across a restart (calls of the new process all came after it), swept a day after the Delete.
      node.close();
      await s.stop();
      second = await startSite({ parties: p, clock: c, manualTimers: true, dataDir: s.dataDir });
      expect(second.ma!.aggregate.tombstones().has(slice)).toBe(true);
      c.advance(TOMBSTONE_RETENTION_MS - 1000);
      await second.ma!.aggregate.sweep();
      expect(second.ma!.aggregate.tombstones().has(slice)).toBe(true);
      c.advance(1000);
      await second.ma!.aggregate.sweep();
      expect(second.ma!.aggregate.tombstones().size).toBe(0);
    } finally {
      node.close();
      await second?.stop();
      await s.destroy();
    }
  });
});
