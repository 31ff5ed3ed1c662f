// A node manager's store that starts refusing writes (a full disk) in the middle of a call: the answer
// matches what is durable. A create whose admission was written but whose READY state could not be is
// acknowledged (its intent to run is on disk, and a restart runs it again); a delete whose mark was
// written and whose runtime is gone, but whose forgetting could not be written, is acknowledged (the
// restart finishes it); a stop whose intent could not be written is refused and nothing changes.
// Deterministic: the sliver manager over a real LevelDB whose writes are made to fail at a chosen
// moment (the refusal the store gives once it has failed), with the simulated driver.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../services/core/errors.js';
import { silentLogger } from '../../services/core/log.js';
import { Store, type Op, type WriteOptions } from '../../services/core/store/store.js';
import type { DriverSliver, RuntimeRef } from '../../services/node-manager/drivers/driver.js';
import { SimulatedDriver } from '../../services/node-manager/drivers/simulated.js';
import type { SliverRecord } from '../../services/node-manager/records.js';
import { SliverManager, type CreateSpec } from '../../services/node-manager/sliver-manager.js';

/** The simulated driver, calling `onStart` / `onDestroy` as it acts (where the test makes the store fail). */
class HookedDriver extends SimulatedDriver {
  onStart = (): void => {};
  onDestroy = (): void => {};
  override async start(s: DriverSliver): Promise<RuntimeRef> {
    const ref = await super.start(s);
    this.onStart();
    return ref;
  }
  override async destroy(name: string): Promise<void> {
    await super.destroy(name);
    this.onDestroy();
  }
}

describe('node manager: a store that fails in the middle of a call', () => {
  let dir: string;
  let store: Store;
  let refusing: boolean;
  const now = 1_000_000;
  const clock = { now: () => now };
  const URN = 'urn:fedlab:plc.test:sliver:s1';

  /** Opens the store with its writes refused while `refusing` is set (as a store that has failed refuses them). */
  async function openStore(): Promise<Store> {
    const s = await Store.open(dir);
    const write = s.write.bind(s);
    s.write = (ops: readonly Op[], o: WriteOptions): Promise<void> =>
      refusing
        ? Promise.reject(new UnavailableError(`the store at ${dir} refuses writes since now: disk full; nothing was changed`))
        : write(ops, o);
    return s;
  }
  const manager = (driver = new HookedDriver()): SliverManager =>
    new SliverManager({
      store,
      driver,
      clock,
      log: silentLogger(),
      capacity: { cpuMillis: 2000, memMb: 2048, diskMb: 10_000, pids: 10_000, slivers: 100 },
      exclusiveNode: false,
      idRanges: { base: 300_000, count: 64 },
    });
  const spec = (requestId: string): CreateSpec => ({
    requestId,
    fingerprint: `f-${requestId}`,
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
    expiresAt: now + 3_600_000,
    sliceLimits: {},
  });
  /** A restart: the store writable again, reopened, loaded and reconciled. */
  async function restart(): Promise<SliverManager> {
    refusing = false;
    await store.close();
    store = await openStore();
    const m = manager();
    await m.load();
    await m.reconcile();
    return m;
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-nm-refusal-'));
    refusing = false;
    store = await openStore();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a create whose READY could not be written is acknowledged, and runs again after a restart', async () => {
    const driver = new HookedDriver();
    driver.onStart = () => (refusing = true);
    const m = manager(driver);
    await m.load();
    const made = await m.create(spec('r1'));
    expect(made.operational).toBe('ready');
    expect(m.get(URN)?.operational).toBe('ready');
    expect(m.committed.slivers).toBe(1);

    const again = await restart();
    expect(again.get(URN)?.operational).toBe('ready');
    expect(again.committed.slivers).toBe(1);
  });

  it('a delete whose forgetting could not be written is acknowledged, and the restart finishes it', async () => {
    const driver = new HookedDriver();
    const m = manager(driver);
    await m.load();
    await m.create({ ...spec('r1'), call: m.arrive() });
    driver.onDestroy = () => (refusing = true);
    const del = await m.delete(URN, m.arrive());
    expect(del.existed).toBe(true);
    expect(m.get(URN)).toBeUndefined();
    expect(m.committed.slivers).toBe(0);
    // The delete's tombstone fences a retry of the create's request id in this process already.
    await expect(m.create({ ...spec('r1'), call: m.arrive() })).rejects.toThrow(/superseded by a delete/);

    const again = await restart();
    expect(again.get(URN)).toBeUndefined();
    expect(again.count).toBe(0);
    expect(again.committed.slivers).toBe(0);
    expect(await store.table<SliverRecord>('slivers').count()).toBe(0);
  });

  it('a stop whose intent could not be written is refused, and nothing changes', async () => {
    const m = manager();
    await m.load();
    await m.create(spec('r1'));
    refusing = true;
    await expect(m.control(URN, 'stop')).rejects.toBeInstanceOf(UnavailableError);
    expect(m.get(URN)?.operational).toBe('ready');
    expect(m.get(URN)?.wantRunning).toBe(true);
    const again = await restart();
    expect(again.get(URN)?.operational).toBe('ready');
  });
});
