// A new sliver's SSH users and login name are written in its admission batch, never in a write of their
// own after it: when the driver is first asked to provision, the sliver's record has been written once
// (with its request id and the node's committed totals) and already holds the users and the login name.
// Two slivers of one slice get two login names; a promotion of an ALLOCATED sliver writes the provision's
// users with the promotion.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../services/core/log.js';
import { Store, type WrittenOp } from '../../services/core/store/store.js';
import type { DriverSliver } from '../../services/node-manager/drivers/driver.js';
import { SimulatedDriver } from '../../services/node-manager/drivers/simulated.js';
import type { SliverRecord } from '../../services/node-manager/records.js';
import { SliverManager, type CreateSpec } from '../../services/node-manager/sliver-manager.js';

const ALICE = {
  urn: 'urn:fedlab:plc.test:user:alice',
  sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ2tIx0gWvRZbXGrvH1nBWEjhs2GaEy1cVhjCiKrzSm alice'],
};
const BOB = {
  urn: 'urn:fedlab:plc.test:user:bob',
  sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk1W3qS0C1Yl7kzV+7ylKzCwZ4b6m8ZQ4sJ0vQ3bM1a bob'],
};

/** Records, as the driver is first asked to provision a sliver, what the store holds for it then. */
class WatchingDriver extends SimulatedDriver {
  seen = new Map<string, SliverRecord | undefined>();
  /** How many writes had touched the sliver's record by then. */
  writesBefore = new Map<string, number>();
  constructor(
    private readonly store: () => Store,
    private readonly writesOf: (urn: string) => number,
  ) {
    super();
  }
  override async provision(s: DriverSliver): Promise<void> {
    const urn = `urn:fedlab:plc.test:sliver:${s.name}`;
    this.writesBefore.set(s.name, this.writesOf(urn));
    this.seen.set(s.name, await this.store().table<SliverRecord>('slivers').get(urn));
  }
}

describe('node manager admission: users and login name in the admission batch', () => {
  let dir: string;
  let store: Store;
  let driver: WatchingDriver;
  let writes: WrittenOp[][];
  const now = 1_000_000;
  const manager = () =>
    new SliverManager({
      store,
      driver,
      clock: { now: () => now },
      log: silentLogger(),
      capacity: { cpuMillis: 2000, memMb: 2048, diskMb: 10_000, pids: 10_000, slivers: 100 },
      exclusiveNode: false,
      idRanges: { base: 300_000, count: 64 },
    });
  const spec = (name: string, o: Partial<CreateSpec> = {}): CreateSpec => ({
    requestId: `r-${name}`,
    fingerprint: `f-${name}`,
    caller: 'urn:fedlab:plc.test:authority:ma',
    urn: `urn:fedlab:plc.test:sliver:${name}`,
    name,
    sliceUrn: 'urn:fedlab:plc.test:slice:demo',
    sliceAuthorityUrn: 'urn:fedlab:plc.test:authority:sa',
    sliceAuthorityJwk: { kty: 'OKP', crv: 'Ed25519', x: 'abc' },
    providerUrn: 'urn:fedlab:plc.test:sp:acme',
    clientId: '',
    resources: { cpuMillis: 100, memMb: 100, diskMb: 10, pids: 10, bandwidthKbps: 0 },
    exclusive: false,
    interfaces: [],
    allocation: 'provisioned',
    start: true,
    expiresAt: now + 60_000,
    sliceLimits: {},
    ...o,
  });
  const writesOf = (urn: string): WrittenOp[][] => writes.filter((w) => w.some((op) => op.table === 'slivers' && op.key === urn));

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-nm-admission-'));
    store = await Store.open(dir);
    driver = new WatchingDriver(
      () => store,
      (urn) => writesOf(urn).length,
    );
    writes = [];
    store.onWrite((ops) => writes.push([...ops]));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a created sliver has its users and login name from its one admission write', async () => {
    const m = manager();
    await m.load();
    const urn = spec('a').urn;
    const rec = await m.create(spec('a', { users: [ALICE] }));
    expect(rec.users).toEqual([ALICE]);
    expect(rec.login).toBe('demo');

    // Before provisioning the record was written once: the admission batch, with the request and the totals.
    const before = driver.seen.get('a');
    expect(before?.users).toEqual([ALICE]);
    expect(before?.login).toBe('demo');
    expect(driver.writesBefore.get('a')).toBe(1);
    const first = writesOf(urn)[0] ?? [];
    expect(first.map((op) => op.table).sort()).toEqual(['meta', 'requests', 'slivers']);
  });

  it('each sliver is written with its own spec users; a second sliver of the slice gets the next login name', async () => {
    const m = manager();
    await m.load();
    await m.create(spec('a', { users: [ALICE] }));
    const b = await m.create(spec('b', { users: [BOB] }));
    expect(driver.seen.get('a')?.users).toEqual([ALICE]);
    expect(driver.seen.get('b')?.users).toEqual([BOB]);
    expect(driver.seen.get('b')?.login).toBe('demo-2');
    expect(driver.writesBefore.get('b')).toBe(1);
    expect(b.login).toBe('demo-2');
    // A sliver created with no users has an empty list, written with it.
    await m.create(spec('c', { sliceUrn: 'urn:fedlab:plc.test:slice:other' }));
    expect(driver.seen.get('c')?.users).toEqual([]);
    expect(driver.seen.get('c')?.login).toBe('other');
  });

  it('a promotion writes the provision users in the promotion batch', async () => {
    const m = manager();
    await m.load();
    const urn = spec('p').urn;
    await m.create(spec('p', { allocation: 'allocated', start: false, users: [ALICE] }));
    expect((await store.table<SliverRecord>('slivers').get(urn))?.users).toEqual([ALICE]);
    const mark = writes.length;
    await m.create(spec('p', { requestId: 'r-p2', fingerprint: 'f-p2', users: [ALICE, BOB] }));
    // The promotion is the first write after the allocation; the driver saw its users.
    const promotion = writes.slice(mark).find((w) => w.some((op) => op.table === 'slivers' && op.key === urn)) ?? [];
    expect(
      promotion
        .filter((op) => op.table === 'requests')
        .map((op) => op.type)
        .sort(),
    ).toEqual(['del', 'put']);
    expect(driver.seen.get('p')?.users).toEqual([ALICE, BOB]);
    // The allocation's write and the promotion's: nothing in between or after them before provisioning.
    expect(driver.writesBefore.get('p')).toBe(2);
    expect(driver.seen.get('p')?.login).toBe('demo');
  });
});
