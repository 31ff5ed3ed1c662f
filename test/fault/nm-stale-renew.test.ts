// A stale RenewSliver, ControlSliver or UpdateSliverUsers at a node manager is fenced (issue 18): the call's signal goes with
// its writes, so a call whose deadline has passed (or whose caller cancelled) commits nothing — the expiry,
// the intent to run and the runtime stay as they were — while the same call with a live signal does its
// work. Through the sliver manager and through the NodeManager handlers (which pass ctx.signal), over a
// real LevelDB with the simulated driver (its start and stop are counted: a fenced call starts or stops
// nothing).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeadlineExceededError } from '../../services/core/errors.js';
import { newSshKeyPair } from '../../services/core/identity/ssh-keys.js';
import { silentLogger } from '../../services/core/log.js';
import type { CallContext } from '../../services/core/rpc/context.js';
import { Store } from '../../services/core/store/store.js';
import type { Authorizer, Grant } from '../../services/node-manager/access.js';
import type { DriverSliver, RuntimeRef } from '../../services/node-manager/drivers/driver.js';
import { SimulatedDriver } from '../../services/node-manager/drivers/simulated.js';
import { NodeManager } from '../../services/node-manager/node-manager.js';
import { OwnerPolicy } from '../../services/node-manager/policy.js';
import type { SliverRecord } from '../../services/node-manager/records.js';
import { SliverManager, type CreateSpec } from '../../services/node-manager/sliver-manager.js';

const URN = 'urn:fedlab:plc.test:sliver:s1';
const HOUR = 3_600_000;

/** The simulated driver, counting starts and stops. */
class CountingDriver extends SimulatedDriver {
  starts = 0;
  stops = 0;
  override async start(s: DriverSliver): Promise<RuntimeRef> {
    this.starts++;
    return super.start(s);
  }
  override async stop(s: DriverSliver, ref: RuntimeRef | undefined): Promise<void> {
    this.stops++;
    return super.stop(s, ref);
  }
}

describe('node manager: a renew or control whose call has ended commits nothing', () => {
  let dir: string;
  let store: Store;
  let driver: CountingDriver;
  let now: number;
  const clock = { now: () => now };
  const ended = (): AbortSignal => {
    const c = new AbortController();
    c.abort();
    return c.signal;
  };
  const manager = (): SliverManager =>
    new SliverManager({
      store,
      driver,
      clock,
      log: silentLogger(),
      capacity: { cpuMillis: 2000, memMb: 2048, diskMb: 10_000, pids: 10_000, slivers: 100 },
      exclusiveNode: false,
      idRanges: { base: 300_000, count: 64 },
    });
  const spec = (o: Partial<CreateSpec> = {}): CreateSpec => ({
    requestId: 'r1',
    fingerprint: 'f-r1',
    caller: 'urn:fedlab:plc.test:authority:ma',
    urn: URN,
    name: 's1',
    sliceUrn: 'urn:fedlab:plc.test:slice:s1',
    sliceAuthorityUrn: 'urn:fedlab:plc.test:authority:sa',
    sliceAuthorityJwk: { kty: 'OKP', crv: 'Ed25519', x: 'abc' },
    providerUrn: 'urn:fedlab:plc.test:sp:acme',
    clientId: '',
    resources: { cpuMillis: 100, memMb: 100, diskMb: 10, pids: 10, bandwidthKbps: 0 },
    exclusive: false,
    interfaces: [],
    allocation: 'provisioned',
    start: true,
    expiresAt: now + HOUR,
    sliceLimits: {},
    ...o,
  });
  /** The record as the store has it (not the manager's memory). */
  const stored = (): Promise<SliverRecord | undefined> => store.table<SliverRecord>('slivers').get(URN);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-nm-stale-renew-'));
    store = await Store.open(dir);
    driver = new CountingDriver();
    now = 1_000_000;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a renew with an ended signal is DEADLINE_EXCEEDED and writes nothing; with a live one it moves the expiry', async () => {
    const m = manager();
    await m.load();
    await m.create(spec());
    const before = await stored();
    now += 1000;
    await expect(m.renew(URN, now + 2 * HOUR, ended())).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(await stored()).toEqual(before);
    expect(m.get(URN)).toEqual(before);

    // A restart reads the expiry the create wrote.
    const again = manager();
    await again.load();
    expect(again.get(URN)?.expiresAt).toBe(before?.expiresAt);

    const renewed = await again.renew(URN, now + 2 * HOUR, new AbortController().signal);
    expect(renewed.expiresAt).toBe(now + 2 * HOUR);
    expect((await stored())?.expiresAt).toBe(now + 2 * HOUR);
  });

  it('a stop, start or restart with an ended signal is DEADLINE_EXCEEDED and changes nothing', async () => {
    const m = manager();
    await m.load();
    await m.create(spec());
    const ready = await stored();
    expect(ready?.operational).toBe('ready');
    const counts = { starts: driver.starts, stops: driver.stops };
    for (const action of ['stop', 'restart', 'start'] as const) {
      await expect(m.control(URN, action, ended())).rejects.toBeInstanceOf(DeadlineExceededError);
      expect(await stored(), action).toEqual(ready);
      expect(m.get(URN), action).toEqual(ready);
    }
    expect({ starts: driver.starts, stops: driver.stops }).toEqual(counts);

    // Stopped with a live signal, then a fenced start: it stays stopped, written as not wanting to run.
    const stopped = await m.control(URN, 'stop', new AbortController().signal);
    expect(stopped.operational).toBe('stopped');
    const afterStop = await stored();
    const starts = driver.starts;
    await expect(m.control(URN, 'start', ended())).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(await stored()).toEqual(afterStop);
    expect(afterStop?.wantRunning).toBe(false);
    expect(m.get(URN)?.operational).toBe('stopped');
    expect(driver.starts).toBe(starts);
    expect((await m.control(URN, 'start', new AbortController().signal)).operational).toBe('ready');
  });

  it("the NodeManager handlers pass the call's signal: RenewSliver and ControlSliver past their deadline commit nothing", async () => {
    const m = manager();
    await m.load();
    await m.create(spec());
    const before = await stored();
    const grant: Grant = { root: 'owner', holder: 'urn:fedlab:plc.test:authority:ma', limits: {}, expiresAt: now + 24 * HOUR };
    const authorizer: Authorizer = { node: async () => grant, slice: async () => grant, ownerOnly: async () => grant };
    const nm = new NodeManager({
      identity: {
        nodeUrn: 'urn:fedlab:plc.test:node:n1',
        ownerUrn: 'urn:fedlab:plc.test:owner:alice',
        aggregateUrn: 'urn:fedlab:plc.test:authority:ma',
        style: 'planetlab',
        exclusive: false,
        endpoint: '127.0.0.1:1',
        version: 'test',
        netemAvailable: false,
      },
      slivers: m,
      authorizer,
      revocations: { importList: async () => false, list: () => undefined },
      policy: new OwnerPolicy({ slice_authority_domains: ['*'], providers: ['*'], max_lifetime_s: 86_400, per_slice: {} }),
      defaults: { cpuMillis: 100, memMb: 100, diskMb: 10, pids: 10, lifetimeS: 3600, holdS: 600 },
      exec: { defaultTimeoutMs: 1000, maxTimeoutMs: 1000, maxOutputBytes: 1024 },
      clock,
    });
    const ctx = (signal: AbortSignal): CallContext => ({ signal, log: silentLogger() }) as unknown as CallContext;
    now += 1000;
    await expect(nm.renewSliver(ctx(ended()), URN, new Date(now + 2 * HOUR))).rejects.toBeInstanceOf(DeadlineExceededError);
    await expect(nm.controlSliver(ctx(ended()), URN, 'stop')).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(await stored()).toEqual(before);

    // UpdateSliverUsers too: a stale list of users must not replace a newer one.
    const users = [{ urn: 'urn:fedlab:plc.test:user:bob', sshKeys: [newSshKeyPair().public] }];
    await expect(nm.updateSliverUsers(ctx(ended()), URN, users)).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(await stored()).toEqual(before);

    const live = ctx(new AbortController().signal);
    expect((await nm.renewSliver(live, URN, new Date(now + 2 * HOUR))).expiresAt?.getTime()).toBe(now + 2 * HOUR);
    expect((await stored())?.expiresAt).toBe(now + 2 * HOUR);
    await nm.updateSliverUsers(live, URN, users);
    expect((await stored())?.users?.map((u) => u.urn)).toEqual(['urn:fedlab:plc.test:user:bob']);
  });
});
