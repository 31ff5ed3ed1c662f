// The provider's retention: a DELETED deployment leaves after `deletedMs`, its request id stays as a
// tombstone (a retry is FAILED_PRECONDITION, never a second deployment, even once the name is another
// request's) until `requestIdMs`, and request records written before tombstones had a time are stamped
// and purged later; batches stay bounded. A real LevelDB store; the slice authority is a stand-in that
// is never reached (the deployments are deleted keeping their slice, so it is never asked).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FailedPreconditionError } from '../../services/core/errors.js';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import type { DeployRequest } from '../../services/generated/fedlab/v1/service_provider.js';
import { Deployments } from '../../services/service-provider/deployments/deployments.js';
import { TABLES } from '../../services/service-provider/records.js';
import type { Remotes } from '../../services/service-provider/remotes.js';
import type { SliceCredentials } from '../../services/service-provider/slice-credentials.js';

const DAY = 86_400_000;

describe('service provider retention', () => {
  let dir: string;
  let store: Store;
  let deployments: Deployments;
  let now = Date.UTC(2026, 0, 1);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-spret-'));
    store = await Store.open(dir);
    now = Date.UTC(2026, 0, 1);
    const unreachable = () => Promise.reject(Object.assign(new Error('down'), { code: Status.UNAVAILABLE, details: 'connection refused' }));
    deployments = new Deployments({
      store,
      clock: { now: () => now },
      log: silentLogger(),
      remotes: { sliceAuthority: () => ({ createSlice: unreachable, getSlice: unreachable }) } as unknown as Remotes,
      credentials: {} as SliceCredentials,
      sliceAuthorityUrn: 'urn:fedlab:plc.test:authority:sa',
      sites: [{ domain: 'plc.test', maUrn: 'urn:fedlab:plc.test:authority:ma', endpoint: '127.0.0.1:1' }],
      supervision: { backoffInitialMs: 10, backoffMaxMs: 20, backoffResetMs: 1000, outputLines: 5, execTimeoutMs: 1000, retryMs: 60_000 },
      sliceDeadlineMs: 1000,
      maDeadlineMs: 1000,
      retention: { deletedMs: 7 * DAY, requestIdMs: 30 * DAY, intervalMs: 3_600_000, batch: 2 },
    });
    await deployments.start();
  });
  afterEach(async () => {
    await deployments.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const request = (requestId: string, name = 'web'): DeployRequest => ({
    requestId,
    name,
    spec: {
      sliceUrn: '',
      sliceAuthorityUrn: '',
      sliceName: '',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [{ site: 'plc.test', request: undefined }],
      expiresAt: undefined,
      steps: [{ name: '', argv: ['sleep', '60'], env: {}, timeoutMs: 0, service: true }],
    },
  });
  /** The first event of a Deploy (the stream is then left). */
  const first = async (req: DeployRequest) => {
    for await (const e of deployments.deploy(req, new AbortController().signal)) return e;
    return undefined;
  };
  const count = (table: string) => store.table(table).count();

  it('drops a deleted deployment after its retention, keeps its request id as a tombstone, then drops that', async () => {
    const made = now;
    expect((await first(request('r1')))?.deployment?.requestId).toBe('r1');
    await deployments.delete('web', true);
    expect(deployments.record('web')?.state).toBe('deleted');

    now = made + 6 * DAY;
    expect(await deployments.purge()).toEqual({ deployments: 0, requests: 0 });
    expect(deployments.record('web')).toBeDefined();

    now = made + 8 * DAY;
    expect(await deployments.purge()).toEqual({ deployments: 1, requests: 0 });
    expect(deployments.record('web')).toBeUndefined();
    expect(await count(TABLES.deployments)).toBe(0);
    expect(await count(TABLES.deployRequests)).toBe(1);
    // A retry of the purged deployment's request id: refused, nothing made.
    await expect(first(request('r1'))).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(first(request('r1'))).rejects.toThrow(
      /deployment web of request r1 was deleted and is gone; deploy with a new request id/,
    );
    expect(await count(TABLES.deployments)).toBe(0);

    // The name is free: another request takes it; r1 still never attaches to that deployment.
    expect((await first(request('r2')))?.deployment?.requestId).toBe('r2');
    await expect(first(request('r1'))).rejects.toThrow(/the name is now request r2's/);

    now = made + 31 * DAY;
    expect(await deployments.purge()).toEqual({ deployments: 0, requests: 1 });
    // r2's deployment lives: its request id stays.
    expect(await count(TABLES.deployRequests)).toBe(1);
    expect(await store.table(TABLES.deployRequests).get('r2')).toMatchObject({ name: 'web' });
  });

  it('stamps request records without a time, then drops them a retention later, in bounded batches', async () => {
    const old = store.table<{ name: string; fingerprint: string }>(TABLES.deployRequests);
    for (let i = 0; i < 5; i++) await old.put(`legacy-${i}`, { name: `gone-${i}`, fingerprint: 'x' });
    // batch = 2: three batches stamp five records.
    expect(await deployments.purge()).toEqual({ deployments: 0, requests: 0 });
    for (let i = 0; i < 5; i++) expect(await old.get(`legacy-${i}`)).toMatchObject({ at: now });
    const stamped = now;
    now = stamped + 29 * DAY;
    expect(await deployments.purge()).toEqual({ deployments: 0, requests: 0 });
    now = stamped + 31 * DAY;
    expect(await deployments.purge()).toEqual({ deployments: 0, requests: 5 });
    expect(await count(TABLES.deployRequests)).toBe(0);
  });
});
