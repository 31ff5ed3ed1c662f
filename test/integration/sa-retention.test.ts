/**
 * The slice authority's retention purges (issue 15), with a real site (MA and node manager) and the SA in
 * this process on a clock the test moves: 15 create/delete cycles under a `slices=1` quota leave 15 ended
 * slice records; past `retention.ended_slice_s` the purge drops them all (and from memory), keeping the
 * request ids as tombstones: a retry of one is refused FAILED_PRECONDITION and makes no slice; past
 * `retention.request_id_s` the tombstones go too, and issued-credential records past
 * `retention.credential_s` after their expiry. Each purge batch is one atomic write of at most
 * `retention.batch` records.
 */
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostService, type HostedService } from '../../services/core/host.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient } from '../../services/core/rpc/client.js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceAuthorityService, SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { sliceAuthorityRole, toSaSettings, type SliceAuthority } from '../../services/slice-authority/index.js';
import { TABLES } from '../../services/slice-authority/records.js';
import { SaRetention } from '../../services/slice-authority/retention.js';
import { siteRequest, startFederationSites, writeSaConfig, type FederationSites } from '../helpers/federation-harness.js';
import { disposeParties } from '../helpers/ma-harness.js';

const A = 'plc.test';
const DAY = 86_400_000;
const CYCLES = 15;

describe('slice authority retention purges', () => {
  let sites: FederationSites;
  let service: HostedService;
  let sa: SliceAuthority;
  let retention: SaRetention;
  let offset = 0;
  const now = () => Date.now() + offset;
  const writes: number[] = [];

  beforeAll(async () => {
    sites = await startFederationSites({ sites: [{ domain: A, nodes: 1, driver: 'simulated' }], deadSites: [], dirPrefix: 'fedlab-ret-' });
    const { config } = writeSaConfig(sites, {
      port: 0,
      logLevel: 'silent',
      siteDeadlineMs: 6000,
      quotas: { slices: 1 },
      extra: { retention: { batch: 4 } },
    });
    service = await hostService(config, silentLogger(), sliceAuthorityRole({ now, onBuilt: (b) => (sa = b) }));
    const settings = toSaSettings(config);
    const store = sa.book.state.deps.store;
    store.onWrite((ops) => void writes.push(ops.length));
    retention = new SaRetention({ book: sa.book, credentials: sa.credentials, settings: settings.retention, now, log: silentLogger() });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await sites?.destroy();
    await disposeParties();
  }, 60_000);

  const client = () =>
    sites.track(
      createClient(SliceAuthorityService, {
        address: `127.0.0.1:${service.port}`,
        tls: { caCerts: sites.home.pki.caPem, cert: sites.home.sp.certPem, key: sites.home.sp.keyPem },
        serverUrn: sites.home.sa.urn,
        deadlineMs: 60_000,
      }),
    );
  const count = (table: string) => sa.book.state.deps.store.table(table).count();
  const create = (i: number) =>
    client().createSlice({
      users: [],
      requestId: `cycle-${i}`,
      name: `cycle${i}`,
      description: 'retention',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest(A, { count: 1 })],
      start: true,
      wait: true,
    });

  it('15 create/delete cycles under slices=1 leave no slice record after the retention; request ids stay as tombstones', async () => {
    let lastUrn = '';
    for (let i = 0; i < CYCLES; i++) {
      const made = await create(i);
      lastUrn = made.slice?.urn as string;
      expect(made.slice?.state).toBe(SliceState.SLICE_STATE_READY);
      if (i === 0)
        await client().issueSliceCredential({
          requestId: 'cred-0',
          sliceUrn: made.slice?.urn as string,
          holderCertificatePem: sites.home.sp.certPem,
          privileges: [],
          targets: [],
          maxDelegations: 0,
          ttlS: 600,
        });
      const gone = await client().deleteSlice({ sliceUrn: made.slice?.urn as string });
      expect(gone.slice?.state).toBe(SliceState.SLICE_STATE_DELETED);
    }
    expect(await count(TABLES.slices)).toBe(CYCLES);
    expect(await count(TABLES.requests)).toBe(CYCLES);
    expect(await count(TABLES.credentials)).toBe(1);

    // Not yet due: nothing goes.
    expect(await retention.purge()).toEqual({ slices: 0, requests: 0, credentials: 0 });

    const hub = sa.book.state.deps.hub;
    expect(hub.since(lastUrn, 0).length).toBeGreaterThan(0);
    offset = 8 * DAY;
    // A slice whose lock is held (being changed) is left for the next purge.
    let release = (): void => undefined;
    const held = new Promise<void>((r) => (release = r));
    const holding = sa.book.state.locks.run(lastUrn, () => held);
    expect(await retention.purge()).toMatchObject({ slices: CYCLES - 1 });
    release();
    await holding;
    writes.length = 0;
    const first = await retention.purge();
    expect(first).toEqual({ slices: 1, requests: 0, credentials: 0 });
    // In batches of at most 4 records, each one write.
    expect(Math.max(...writes)).toBeLessThanOrEqual(4);
    // The purged slices' events are gone with them: a new slice of a purged name gets none of them.
    expect(hub.since(lastUrn, 0)).toEqual([]);
    expect(await count(TABLES.slices)).toBe(0);
    expect(sa.book.stats().slices).toBe(0);
    expect(await count(TABLES.credentials)).toBe(0);
    console.log(`after ${CYCLES} cycles and the retention: 0 slice records, ${await count(TABLES.requests)} request-id tombstones`);

    // A retry of a purged slice's request id is refused and makes no second slice.
    const retry = await create(3).catch((err: unknown) => err as ServiceError);
    expect((retry as ServiceError).code).toBe(Status.FAILED_PRECONDITION);
    expect(await count(TABLES.slices)).toBe(0);

    offset = 31 * DAY;
    expect(await retention.purge()).toEqual({ slices: 0, requests: CYCLES, credentials: 0 });
    expect(await count(TABLES.requests)).toBe(0);

    // The name again: its watchers see only its own events, numbered from where none of the old can be.
    const again = await client().createSlice({
      users: [],
      requestId: 'reuse',
      name: `cycle${CYCLES - 1}`,
      description: 'retention',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest(A, { count: 1 })],
      start: true,
      wait: true,
    });
    expect(again.slice?.urn).toBe(lastUrn);
    const events = hub.since(lastUrn, 0);
    expect(events.length).toBeGreaterThan(0);
    expect(events.filter((e) => /^slice deleted$|deleting the slice at every site/.test(e.message))).toEqual([]);
    await client().deleteSlice({ sliceUrn: lastUrn });
  }, 240_000);
});
