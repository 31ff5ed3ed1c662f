// The aggregate's admission rules as pure functions, without any server or store: a node fits a sliver
// only when it is enrolled, UP, usable under its owner's credential and has the resources free; the site
// picks the nodes with the most free CPU first; a sliver never outlives the site maximum, the chain or the
// node owner's credential; a slice authority never holds more than its MA → SA credential allows. Time
// comes from a manual clock.
import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ResourceExhaustedError } from '../../services/core/errors.js';
import {
  checkQuota,
  isAllocatable,
  lifetimeCap,
  nodeFit,
  pickNode,
  pickOrder,
  type AdmissionInputs,
  type CommittedAtSite,
} from '../../services/management-authority/aggregate/admission.js';
import { ManualClock } from '../../services/core/clock.js';
import type { LiveNode } from '../../services/management-authority/node-registry.js';
import { ZERO, type Resources } from '../../services/management-authority/records.js';
import type { WantedSliver } from '../../services/management-authority/requests.js';

const HOUR = 3_600_000;
const D = 'adm.test';
const urn = (name: string) => `urn:fedlab:${D}:node:${name}`;
const slice = (name: string) => `urn:fedlab:${D}:slice:${name}`;
const res = (cpuMillis: number, memMb = 64): Resources => ({ cpuMillis, memMb, diskMb: 64, pids: 32 });

function node(
  name: string,
  clock: ManualClock,
  o: { up?: boolean; cpu?: number; exclusive?: boolean; ownerExpiresInMs?: number; jtis?: string[]; ownerTtlS?: number } = {},
): LiveNode {
  const capacity: Resources = { cpuMillis: o.cpu ?? 1000, memMb: 1024, diskMb: 1024, pids: 1024 };
  return {
    record: {
      urn: urn(name),
      ownerUrn: `urn:fedlab:${D}:owner:alice`,
      ownerChain: [],
      ownerJtis: o.jtis ?? [`jti-${name}`],
      ownerLimits: o.ownerTtlS !== undefined ? { ttl_s: o.ownerTtlS } : {},
      ownerChainExpiresAt: clock.now() + (o.ownerExpiresInMs ?? 24 * HOUR),
      keyThumbprint: 'kid',
      certificatePem: '',
      enrolledAt: clock.now(),
      endpoint: '127.0.0.1:1',
      capacity,
      isolation: 0,
      version: 'test',
      netemAvailable: false,
      exclusive: o.exclusive ?? false,
    },
    up: o.up ?? true,
    lastHeartbeatAt: o.up === false ? undefined : clock.now(),
    sequence: 0,
    endpoint: '127.0.0.1:1',
    capacity,
    reportedAllocated: ZERO,
    usage: ZERO,
    reportedSlivers: 0,
    version: 'test',
    persistedAt: clock.now(),
  };
}

/** What is committed at a site, given per node: resources, and slivers per slice; `whole` holds nodes exclusively. */
function site(
  committed: Record<string, { resources: Resources; slices: Record<string, number> }> = {},
  whole: Record<string, string> = {},
): CommittedAtSite {
  return {
    use: (nodeUrn) => {
      const c = committed[nodeUrn];
      const slices = new Map(Object.entries(c?.slices ?? {}));
      return { committed: c?.resources ?? ZERO, slivers: [...slices.values()].reduce((a, b) => a + b, 0), slices };
    },
    exclusiveHolder: (nodeUrn) => whole[nodeUrn],
  };
}

const want = (cpu: number, o: Partial<WantedSliver> = {}): WantedSliver => ({
  clientId: 'c',
  resources: res(cpu),
  minFree: res(0, 0),
  exclusive: false,
  ...o,
});
const inputs = (clock: ManualClock, s: CommittedAtSite = site(), revoked?: ReadonlySet<string>): AdmissionInputs => ({
  site: s,
  revoked,
  now: clock.now(),
});

describe('nodeFit', () => {
  it('fits a sliver on an UP node with the resources free', () => {
    const clock = new ManualClock();
    expect(nodeFit(inputs(clock), node('a', clock), urn('a'), slice('s'), want(500))).toEqual({ ok: true });
  });

  it('refuses a node that is not enrolled (NOT_FOUND) or DOWN (UNAVAILABLE), naming it', () => {
    const clock = new ManualClock();
    const missing = nodeFit(inputs(clock), undefined, urn('x'), slice('s'), want(1));
    expect(missing).toMatchObject({ ok: false, code: Status.NOT_FOUND });
    expect(missing.ok ? '' : missing.reason).toContain(urn('x'));
    const down = nodeFit(inputs(clock), node('d', clock, { up: false }), urn('d'), slice('s'), want(1));
    expect(down).toMatchObject({ ok: false, code: Status.UNAVAILABLE });
    expect(down.ok ? '' : down.reason).toMatch(/DOWN \(last heartbeat: never\)/);
  });

  it("refuses a node once its owner's credential expired on the clock, or is revoked at this site", () => {
    const clock = new ManualClock();
    const n = node('o', clock, { ownerExpiresInMs: HOUR });
    expect(nodeFit(inputs(clock), n, urn('o'), slice('s'), want(1)).ok).toBe(true);
    clock.advance(HOUR);
    const expired = nodeFit(inputs(clock), n, urn('o'), slice('s'), want(1));
    expect(expired).toMatchObject({ ok: false, code: Status.FAILED_PRECONDITION });
    expect(expired.ok ? '' : expired.reason).toMatch(/owner credential .* expired/);
    const revoked = nodeFit(inputs(clock, site(), new Set(['jti-r'])), node('r', clock), urn('r'), slice('s'), want(1));
    expect(revoked).toMatchObject({ ok: false, code: Status.FAILED_PRECONDITION });
    expect(revoked.ok ? '' : revoked.reason).toMatch(/revoked at this site/);
  });

  it('counts what is committed and what this admission already placed, naming the field short', () => {
    const clock = new ManualClock();
    const s = site({ [urn('a')]: { resources: res(600), slices: { [slice('other')]: 1 } } });
    expect(nodeFit(inputs(clock, s), node('a', clock), urn('a'), slice('s'), want(400)).ok).toBe(true);
    const short = nodeFit(inputs(clock, s), node('a', clock), urn('a'), slice('s'), want(300), res(200));
    expect(short).toMatchObject({ ok: false, code: Status.RESOURCE_EXHAUSTED });
    expect(short.ok ? '' : short.reason).toBe(
      `node ${urn('a')} has 200 cpu_millis free, the sliver needs 300; ask for less or choose another node`,
    );
  });

  it('keeps nodes held whole to their slice, and gives a node whole only when no other slice uses it', () => {
    const clock = new ManualClock();
    const held = site({}, { [urn('a')]: slice('mine') });
    expect(nodeFit(inputs(clock, held), node('a', clock), urn('a'), slice('s'), want(1))).toMatchObject({
      ok: false,
      code: Status.RESOURCE_EXHAUSTED,
    });
    expect(nodeFit(inputs(clock, held), node('a', clock), urn('a'), slice('mine'), want(1)).ok).toBe(true);
    const shared = site({ [urn('b')]: { resources: res(1), slices: { [slice('other')]: 1 } } });
    const whole = nodeFit(inputs(clock, shared), node('b', clock), urn('b'), slice('s'), want(1, { exclusive: true }));
    expect(whole).toMatchObject({ ok: false, code: Status.RESOURCE_EXHAUSTED });
    expect(whole.ok ? '' : whole.reason).toMatch(/1 other slice\(s\) use it/);
    // An exclusive node (emulab) is given whole whatever the request says.
    expect(nodeFit(inputs(clock, shared), node('b', clock, { exclusive: true }), urn('b'), slice('s'), want(1)).ok).toBe(false);
  });

  it("checks a selector's min_free", () => {
    const clock = new ManualClock();
    const fit = nodeFit(inputs(clock), node('a', clock), urn('a'), slice('s'), want(1, { minFree: res(2000) }));
    expect(fit).toMatchObject({ ok: false, code: Status.RESOURCE_EXHAUSTED });
    expect(fit.ok ? '' : fit.reason).toMatch(/less than min_free 2000/);
  });
});

describe('isAllocatable', () => {
  it('advertises UP nodes with CPU and memory free, not exclusive nodes in use, nor nodes whose owner credential expired', () => {
    const clock = new ManualClock();
    expect(isAllocatable(inputs(clock), node('a', clock))).toBe(true);
    expect(isAllocatable(inputs(clock), node('d', clock, { up: false }))).toBe(false);
    const full = site({ [urn('f')]: { resources: res(1000), slices: { [slice('x')]: 1 } } });
    expect(isAllocatable(inputs(clock, full), node('f', clock))).toBe(false);
    const used = site({ [urn('e')]: { resources: res(1), slices: { [slice('x')]: 1 } } });
    expect(isAllocatable(inputs(clock, used), node('e', clock, { exclusive: true }))).toBe(false);
    const n = node('o', clock, { ownerExpiresInMs: HOUR });
    clock.advance(2 * HOUR);
    expect(isAllocatable(inputs(clock), n)).toBe(false);
  });
});

describe('pickOrder and pickNode', () => {
  it('orders covered nodes by free CPU, ties in the order given, and picks the first that fits and is not taken', () => {
    const clock = new ManualClock();
    const nodes = [node('a', clock), node('b', clock, { cpu: 4000 }), node('c', clock), node('u', clock, { cpu: 8000 })];
    const s = site({ [urn('a')]: { resources: res(500), slices: { [slice('x')]: 1 } } });
    const order = pickOrder(nodes, (n) => n !== urn('u'), s);
    expect(order.map((c) => c.urn)).toEqual([urn('b'), urn('c'), urn('a')]);
    expect(order.map((c) => c.cpu)).toEqual([4000, 1000, 500]);
    expect(pickNode(inputs(clock, s), order, slice('s'), want(600), new Set())).toBe(urn('b'));
    expect(pickNode(inputs(clock, s), order, slice('s'), want(600), new Set([urn('b')]))).toBe(urn('c'));
    expect(pickNode(inputs(clock, s), order, slice('s'), want(600), new Set([urn('b'), urn('c')]))).toBeUndefined();
  });
});

describe('lifetimeCap', () => {
  it('is the tightest of the site maximum, the chain expiry and ttl_s, and the node owner credential', () => {
    const clock = new ManualClock();
    const now = clock.now();
    const grant = { exp: (now + 30 * 24 * HOUR) / 1000, limits: {} };
    expect(lifetimeCap({ maxLifetimeS: 3600, grant, createdAt: now, now })).toEqual({
      at: now + HOUR,
      rule: 'the site maximum (3600 s from now)',
    });
    expect(lifetimeCap({ maxLifetimeS: 1e9, grant, createdAt: now, now }).rule).toBe('the expiry of the MA → SA chain');
    const ttl = lifetimeCap({ maxLifetimeS: 1e9, grant: { ...grant, limits: { ttl_s: 600 } }, createdAt: now - 60_000, now });
    expect(ttl).toEqual({ at: now + 540_000, rule: "the chain's ttl_s (600 s from creation)" });
    const n = node('a', clock, { ownerExpiresInMs: 2 * HOUR });
    expect(lifetimeCap({ maxLifetimeS: 1e9, grant, createdAt: now, now, node: n })).toEqual({
      at: now + 2 * HOUR,
      rule: `the expiry of ${urn('a')}'s owner credential`,
    });
    const owned = node('b', clock, { ownerTtlS: 60 });
    expect(lifetimeCap({ maxLifetimeS: 1e9, grant, createdAt: now, now, node: owned }).rule).toBe(
      `the ttl_s of ${urn('b')}'s owner credential`,
    );
    // The site maximum moves with the clock; a chain's ttl_s counts from the sliver's creation.
    clock.advance(HOUR);
    expect(lifetimeCap({ maxLifetimeS: 3600, grant, createdAt: now, now: clock.now() }).at).toBe(now + 2 * HOUR);
  });
});

describe('checkQuota', () => {
  const sa = `urn:fedlab:${D}:authority:sa`;
  it("lets a slice authority hold up to its credential's lim, and refuses more naming the resource", () => {
    const held = { committed: res(300), slivers: 3 };
    expect(() => checkQuota({ sliceAuthorityUrn: sa, limits: { slivers: 4, cpu_millis: 400 }, held, adding: [res(100)] })).not.toThrow();
    expect(() => checkQuota({ sliceAuthorityUrn: sa, limits: {}, held, adding: [res(1e6), res(1e6)] })).not.toThrow();
    const count = (() => {
      try {
        checkQuota({ sliceAuthorityUrn: sa, limits: { slivers: 4 }, held, adding: [res(1), res(1)] });
      } catch (err) {
        return err;
      }
    })();
    expect(count).toBeInstanceOf(ResourceExhaustedError);
    expect((count as ResourceExhaustedError).details).toEqual({ rule: 'lim', resource: 'slivers' });
    expect((count as Error).message).toMatch(/allows 4 slivers at this site; this request would make it 5/);
    expect(() => checkQuota({ sliceAuthorityUrn: sa, limits: { cpu_millis: 350 }, held, adding: [res(100)] })).toThrow(
      /allows 350 cpu_millis/,
    );
    expect(() =>
      checkQuota({ sliceAuthorityUrn: sa, limits: { mem_mb: 200 }, held: { committed: res(0, 150), slivers: 0 }, adding: [res(0, 64)] }),
    ).toThrow(/mem_mb/);
  });
});
