// A stale CreateSliver at a node manager is fenced (services/node-manager/sliver-tombstones.ts): a
// DeleteSliver leaves a tombstone in the batch that forgets the sliver — also when the sliver is not
// here — so a create that arrived before it (with any request id) or repeats a request id the deleted
// sliver was made with is ABORTED "superseded by a delete" and changes nothing, while a new request
// after the delete makes the sliver anew (an MA reuses a sliver's URN on swap-in and on a provision
// after an undo). Tombstones survive a restart (the request-id fence does; arrival numbers are per
// process) and are swept after their retention. A call whose signal has aborted (its deadline passed,
// its caller cancelled) commits nothing. Deterministic: the sliver manager over a real LevelDB with the
// simulated driver; the SIGSTOP reproduction itself runs in the chaos suite (chaos.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, DeadlineExceededError } from '../../services/core/errors.js';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { SimulatedDriver } from '../../services/node-manager/drivers/simulated.js';
import { SliverManager, type CreateSpec } from '../../services/node-manager/sliver-manager.js';
import { TOMBSTONE_RETENTION_MS, type SliverTombstoneRecord } from '../../services/node-manager/sliver-tombstones.js';

const MA = 'urn:fedlab:plc.test:authority:ma';
const URN = 'urn:fedlab:plc.test:sliver:s1-abc';

describe('node manager: a delete fences stale creates of the sliver (tombstones)', () => {
  let dir: string;
  let store: Store;
  let now: number;
  const clock = { now: () => now };
  const manager = (): SliverManager =>
    new SliverManager({
      store,
      driver: new SimulatedDriver(),
      clock,
      log: silentLogger(),
      capacity: { cpuMillis: 2000, memMb: 2048, diskMb: 10_000, pids: 10_000, slivers: 100 },
      exclusiveNode: false,
      idRanges: { base: 300_000, count: 64 },
    });
  const spec = (requestId: string, o: Partial<CreateSpec> = {}): CreateSpec => ({
    requestId,
    fingerprint: `f-${requestId}`,
    caller: MA,
    urn: URN,
    name: 's1-abc',
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
    ...o,
  });
  const tombstones = () => store.table<SliverTombstoneRecord>('sliver-tombstones').values();

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-nm-tombstone-'));
    store = await Store.open(dir);
    now = 1_000_000;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a create that arrived before the delete of a sliver the node did not have yet is ABORTED and changes nothing', async () => {
    const m = manager();
    await m.load();
    // The MA's create sat in the stopped node's socket; the MA gave up and undid it with a delete.
    const stale = m.arrive();
    const del = await m.delete(URN, m.arrive());
    expect(del.existed).toBe(false);
    expect(await tombstones()).toEqual([{ sliverUrn: URN, deletedAt: now, requests: [] }]);
    const err = await m.create(spec('ma-s1-abc-g1', { call: stale })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as Error).message).toMatch(/superseded by a delete/);
    expect(m.get(URN)).toBeUndefined();
    expect(m.count).toBe(0);
    expect(m.committed.slivers).toBe(0);

    // The MA provisions again after the undo: a new request id arriving after the delete makes it anew.
    const made = await m.create(spec('ma-s1-abc-g2', { call: m.arrive() }));
    expect(made.operational).toBe('ready');
  });

  it('a retry of the deleted sliver’s request id is ABORTED, also after a restart; other request ids are not', async () => {
    const m = manager();
    await m.load();
    await m.create(spec('ma-s1-abc-g1', { call: m.arrive() }));
    const del = await m.delete(URN, m.arrive());
    expect(del.existed).toBe(true);
    const [t] = await tombstones();
    expect(t?.requests).toEqual([`${MA} ma-s1-abc-g1`]);
    await expect(m.create(spec('ma-s1-abc-g1', { call: m.arrive() }))).rejects.toBeInstanceOf(AbortedError);

    // A restart keeps the tombstone: the request-id fence still holds, a new request id is a new create.
    const again = manager();
    await again.load();
    await again.reconcile();
    await expect(again.create(spec('ma-s1-abc-g1', { call: again.arrive() }))).rejects.toBeInstanceOf(AbortedError);
    expect(again.count).toBe(0);
    const swapIn = await again.create(spec('ma-s1-abc-g2', { call: again.arrive() }));
    expect(swapIn.operational).toBe('ready');
  });

  it('a call whose signal has aborted (deadline passed, caller cancelled) commits neither a create nor a delete', async () => {
    const m = manager();
    await m.load();
    const ended = new AbortController();
    ended.abort();
    await expect(m.create(spec('r1', { call: { signal: ended.signal, arrival: m.arrive().arrival } }))).rejects.toBeInstanceOf(
      DeadlineExceededError,
    );
    expect(m.count).toBe(0);
    expect(await store.table('slivers').count()).toBe(0);
    expect(await store.table('requests').count()).toBe(0);

    await m.create(spec('r2', { call: m.arrive() }));
    await expect(m.delete(URN, { signal: ended.signal })).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(m.get(URN)?.deleting).toBeFalsy();
    expect(m.get(URN)?.operational).toBe('ready');
    await expect(m.delete('urn:fedlab:plc.test:sliver:other', { signal: ended.signal })).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(await tombstones()).toEqual([]);
  });

  it('tombstones are swept once their retention has passed (with the next delete, and at a restart)', async () => {
    const m = manager();
    await m.load();
    await m.delete(URN, m.arrive());
    now += TOMBSTONE_RETENTION_MS + 1;
    await m.delete('urn:fedlab:plc.test:sliver:s2', m.arrive());
    expect((await tombstones()).map((t) => t.sliverUrn)).toEqual(['urn:fedlab:plc.test:sliver:s2']);
    now += TOMBSTONE_RETENTION_MS + 1;
    const again = manager();
    await again.load();
    await again.reconcile();
    expect(await tombstones()).toEqual([]);
    // Swept: a create of the sliver is an ordinary create again, whatever its request id.
    await again.create(spec('ma-s1-abc-g1', { call: again.arrive() }));
    expect(again.count).toBe(1);
  });
});
