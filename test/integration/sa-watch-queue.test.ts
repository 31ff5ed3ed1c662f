// WatchSlice's per-reader queue is bounded (issue 15 item 3, limits.watch_queue_events): a reader that
// falls further behind than the cap is dropped at once — its subscription and queued events freed, even
// while it is stalled on the transport — and its stream ends RESOURCE_EXHAUSTED naming the cap, while a
// reader that keeps up with the same slice is not touched. The slice authority's real watch code, event
// hub and slice book state, served over mutual TLS by the real RPC core.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResourceExhaustedError } from '../../services/core/errors.js';
import { silentLogger } from '../../services/core/log.js';
import type { ServiceRegistration } from '../../services/core/rpc/adapter.js';
import type { CallContext } from '../../services/core/rpc/context.js';
import { createClient } from '../../services/core/rpc/client.js';
import { startServer, type RunningServer } from '../../services/core/rpc/server.js';
import { Store } from '../../services/core/store/store.js';
import {
  SliceAuthorityService,
  type WatchSliceRequest,
  type WatchSliceResponse,
} from '../../services/generated/fedlab/v1/slice_authority.js';
import { Accounts } from '../../services/slice-authority/accounts.js';
import { EventHub } from '../../services/slice-authority/events.js';
import type { SliceRecord } from '../../services/slice-authority/records.js';
import { Sites } from '../../services/slice-authority/sites.js';
import { SliceBookState } from '../../services/slice-authority/slices/book-state.js';
import { watchSlice } from '../../services/slice-authority/slices/watch.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { waitFor } from '../helpers/servers.js';

const CAP = 64;
const PROVIDER = 'urn:fedlab:plc.test:sp:acme';
const SLICE = 'urn:fedlab:plc.test:slice:watched';

let dir: string;
let store: Store;
let hub: EventHub;
let book: SliceBookState;
let accounts: Accounts;
let pki: TestPki;
let server: RunningServer;
let client: ReturnType<typeof createClient<typeof SliceAuthorityService>>;

function sliceRecord(): SliceRecord {
  const now = Date.now();
  return {
    urn: SLICE,
    name: 'watched',
    providerUrn: PROVIDER,
    description: '',
    mode: 'all_or_nothing',
    state: 'ready',
    start: true,
    requestId: 'r1',
    createdAt: now,
    updatedAt: now,
    expiresAt: now + 3_600_000,
    seq: 1,
    sites: [],
  };
}

const watchRequest = (afterSequence = 0): WatchSliceRequest => ({ sliceUrn: SLICE, afterSequence, follow: true });

/** Publishes `n` events of about 1 KB each, `batch` at a time with a pause between batches. */
async function publish(n: number, batch = n, pauseMs = 0): Promise<void> {
  const rec = book.slices.get(SLICE) as SliceRecord;
  for (let i = 0; i < n; i++) {
    book.publish(rec, { message: `step ${i} ${'x'.repeat(1000)}` });
    if ((i + 1) % batch === 0 && pauseMs) await sleep(pauseMs);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-sa-watch-'));
  store = await Store.open(join(dir, 'store'));
  hub = new EventHub();
  accounts = new Accounts([{ urn: PROVIDER, quotas: {} }], [], () => false);
  book = new SliceBookState({
    store,
    sites: new Sites([], Date.now),
    accounts,
    hub,
    log: silentLogger(),
    now: Date.now,
    saUrn: 'urn:fedlab:plc.test:authority:sa',
    limits: {
      default_slice_lifetime_s: 3600,
      max_slice_lifetime_s: 86_400,
      site_deadline_ms: 1000,
      status_deadline_ms: 1000,
      max_sites_per_slice: 8,
      max_nodes_per_site: 100,
      watch_queue_events: CAP,
    },
    quotaDefaults: { cpu_millis: 100, mem_mb: 64, disk_mb: 64 },
  });
  book.slices.set(SLICE, sliceRecord());

  pki = await makeTestPki('plc.test');
  const sa = await pki.issue('urn:fedlab:plc.test:authority:sa', { dns: ['localhost'], ip: ['127.0.0.1'] });
  const acme = await pki.issue(PROVIDER);
  // Only WatchSlice of the slice authority's service, over the real watch code.
  const registration: ServiceRegistration = {
    name: 'fedlab.v1.SliceAuthority',
    definition: { watchSlice: SliceAuthorityService.watchSlice },
    handlers: {
      watchSlice: ((req: WatchSliceRequest, ctx: CallContext) => watchSlice(book, accounts.caller(ctx.peer), req, ctx.signal)) as never,
    },
  };
  server = await startServer(
    { port: 0, tls: { caCerts: pki.caPem, cert: sa.certPem, key: sa.keyPem }, log: silentLogger(), shutdownGraceMs: 200 },
    [registration],
  );
  client = createClient(SliceAuthorityService, {
    address: `127.0.0.1:${server.port}`,
    tls: { caCerts: pki.caPem, cert: acme.certPem, key: acme.keyPem },
    serverUrn: sa.urn,
    deadlineMs: 120_000,
  });
});

afterAll(async () => {
  client?.close();
  await server?.stop();
  await store?.close();
  await pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('WatchSlice queue per reader', () => {
  it('a reader that reads nothing is dropped as soon as the cap is passed, and its next read is RESOURCE_EXHAUSTED naming the cap', async () => {
    const caller = accounts.caller({ urn: PROVIDER, thumbprint: 'test' });
    const gen = watchSlice(book, caller, watchRequest(), new AbortController().signal);
    const snapshot = (await gen.next()).value as WatchSliceResponse;
    expect(snapshot.slice?.urn).toBe(SLICE);
    expect(hub.watchers(SLICE)).toBe(1);
    await publish(CAP);
    // At the cap: still watching, nothing lost.
    expect(hub.watchers(SLICE)).toBe(1);
    await publish(1);
    // One past it: unsubscribed there and then, without the reader having read anything.
    expect(hub.watchers(SLICE)).toBe(0);
    const err = await gen.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as Error).message).toContain(`more than ${CAP} events behind`);
    expect((err as Error).message).toContain(`limits.watch_queue_events is ${CAP}`);
    expect((err as Error).message).toContain(`after_sequence ${snapshot.sequence}`);
  });

  it('a reader that keeps within the cap gets every event', async () => {
    const caller = accounts.caller({ urn: PROVIDER, thumbprint: 'test' });
    const controller = new AbortController();
    const gen = watchSlice(book, caller, watchRequest(), controller.signal);
    const first = (await gen.next()).value as WatchSliceResponse;
    await publish(CAP);
    const got: number[] = [];
    for (let i = 0; i < CAP; i++) got.push(((await gen.next()).value as WatchSliceResponse).sequence);
    expect(got).toEqual(Array.from({ length: CAP }, (_, i) => first.sequence + 1 + i));
    controller.abort();
    expect((await gen.next()).done).toBe(true);
    expect(hub.watchers(SLICE)).toBe(0);
  });

  it('over gRPC: a stalled reader is cut off with RESOURCE_EXHAUSTED naming the cap; a prompt reader of the slice is not', async () => {
    const stalled = client.watchSlice(watchRequest())[Symbol.asyncIterator]();
    const first = (await stalled.next()).value as WatchSliceResponse;
    const prompt: number[] = [];
    const stopPrompt = new AbortController();
    const promptDone = (async () => {
      for await (const e of client.watchSlice(watchRequest(), { signal: stopPrompt.signal })) prompt.push(e.sequence);
    })();
    await waitFor(() => hub.watchers(SLICE) === 2, 5000, 'both readers subscribed');

    // Small batches, each let through to the prompt reader before the next (so it keeps up however loaded
    // the machine is): the stalled one's transport fills, then its queue.
    const total = 3000;
    const batch = 20;
    for (let sent = 0; sent < total; sent += batch) {
      await publish(batch);
      const last = first.sequence + sent + batch;
      await waitFor(() => (prompt.at(-1) ?? 0) >= last, 10_000, `the prompt reader at event ${last}`);
    }
    await waitFor(() => hub.watchers(SLICE) === 1, 10_000, 'the stalled reader dropped');

    // Reading again, it gets what the transport held, then the status.
    let received = 0;
    let failure: { code: number; details: string } | undefined;
    try {
      for (let r = await stalled.next(); !r.done; r = await stalled.next()) received++;
    } catch (err) {
      failure = err as { code: number; details: string };
    }
    expect(failure?.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(failure?.details).toContain(`limits.watch_queue_events is ${CAP}`);
    expect(received).toBeLessThan(total);

    await waitFor(() => prompt.length > 0 && (prompt.at(-1) ?? 0) >= first.sequence + total, 10_000, 'the prompt reader caught up');
    expect(prompt.slice(1)).toEqual(Array.from({ length: prompt.length - 1 }, (_, i) => (prompt[0] ?? 0) + 1 + i));
    expect(hub.watchers(SLICE)).toBe(1);

    // The slice authority still answers: a new reader gets its snapshot.
    const again = client.watchSlice(watchRequest())[Symbol.asyncIterator]();
    expect(((await again.next()).value as WatchSliceResponse).slice?.urn).toBe(SLICE);
    await again.return?.();
    stopPrompt.abort();
    await promptDone.catch(() => undefined);
  }, 60_000);
});
