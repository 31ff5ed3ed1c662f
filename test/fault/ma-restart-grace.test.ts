// A management authority (`fedlab serve ma`) killed with SIGKILL and started again while its node managers
// are not beating yet: for the restart grace (three heartbeat intervals) its nodes are UNKNOWN, and a call
// that needs one answers UNAVAILABLE with a retry hint (trailer fedlab-retry-after-ms) — a passing state —
// instead of RESOURCE_EXHAUSTED "only 0 such node(s) are UP"; once the grace is over, nodes that never beat
// are DOWN as before. A slice authority retries such answers within its site deadline, so a CreateSlice
// sent right after the restart ends READY once the nodes are back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeChainFile } from '../../cli/chain-file.js';
import { saConfig } from '../../cli/kit/role-configs.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { sleep } from '../../services/core/timing.js';
import { NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import { SliceAuthorityService, SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { sliceAuthorityRole } from '../../services/slice-authority/index.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, enrolNode, siteParties, startSite, until, type Site, type TestNode } from '../helpers/ma-harness.js';

/** The MA's heartbeat interval: its restart grace is three of these. */
const INTERVAL_MS = 2000;
const GRACE_MS = 3 * INTERVAL_MS;

let dir: string;
let site: Site;
const nodes: TestNode[] = [];
let chain: string[];
let sa: HostedService | undefined;
let client: PromiseClient<typeof SliceAuthorityService>;

const request = (nodeUrns: string[] = []) => ({
  nodes: { nodeUrns, count: nodeUrns.length ? 0 : 1, clientIds: [] },
  resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
  links: [],
  exclusive: false,
  requestDocument: '',
  requestDocumentFormat: '',
});

async function allocate(name: string, nodeUrns: string[] = []): Promise<unknown> {
  return site
    .aggClient()
    .allocate(
      {
        users: [],
        requestId: `${name}-a`,
        sliceUrn: `urn:fedlab:plc.test:slice:${name}`,
        providerUrn: 'urn:fedlab:plc.test:sp:acme',
        request: request(nodeUrns),
      },
      { chain },
    )
    .catch((e: unknown) => e);
}

async function allUp(): Promise<void> {
  await until(
    async () =>
      (await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes.length === nodes.length,
    15_000,
    'every node UP',
  );
}

/** Stops the node managers, kills the MA and starts it again: its nodes are not heard from yet. */
async function restartUnheard(): Promise<number> {
  for (const n of nodes) await n.stop();
  await site.kill9();
  await site.restart();
  return Date.now();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-grace-'));
  const parties = await siteParties('plc.test');
  site = await startSite({
    style: 'planetlab',
    parties,
    child: true,
    config: { heartbeat: { interval_ms: INTERVAL_MS, flush_interval_ms: 100 } },
  });
  for (const name of ['g1', 'g2']) nodes.push(await enrolNode(site, { name, driver: 'simulated' }));
  await allUp();
  chain = await site.saChain({ ttlS: 30 * 86_400 });
  const config = saConfig({
    urn: parties.sa.urn,
    listen: { host: '127.0.0.1', port: 0 },
    tls: { ca: parties.sa.caPath, cert: parties.sa.certPath, key: parties.sa.keyPath },
    trust_bundle: parties.bundleFile,
    data_dir: join(dir, 'sa-data'),
    log_level: 'silent',
    shutdown_grace_ms: 2000,
    sites: [
      {
        domain: 'plc.test',
        endpoint: site.address,
        ma_urn: parties.maUrn,
        chain_file: writeChainFile(join(dir, 'plc.chain'), await site.saChain({ sa: parties.sa })),
      },
    ],
    providers: [{ urn: parties.sp.urn, quotas: {} }],
    limits: { site_deadline_ms: 15_000 },
    sweep_interval_ms: 200,
    intent_retry_interval_ms: 300,
  }).writeAndCompile(join(dir, 'sa.json'));
  sa = await hostService(config, silentLogger(), sliceAuthorityRole());
  client = createClient(SliceAuthorityService, {
    address: `127.0.0.1:${sa.port}`,
    tls: { caCerts: parties.pki.caPem, cert: parties.sp.certPem, key: parties.sp.keyPem },
    serverUrn: parties.sa.urn,
    deadlineMs: 60_000,
  });
}, 120_000);

afterAll(async () => {
  client?.close();
  await sa?.stop();
  for (const n of nodes) await n.destroy();
  await site?.destroy();
  rmSync(dir, { recursive: true, force: true });
  await disposeParties();
});

describe('a management authority just restarted', () => {
  it('answers UNAVAILABLE with a retry hint while its nodes are unheard, then allocates once they beat', async () => {
    await restartUnheard();
    for (const err of [await allocate('grace-any'), await allocate('grace-named', [nodes[0]!.urn])]) {
      const e = err as { code?: number; details?: string; metadata?: { get(k: string): unknown[] } };
      expect(e.code, String(e.details)).toBe(Status.UNAVAILABLE);
      expect(e.details).toMatch(/has just restarted and has not heard from \d node\(s\) yet.*nothing was changed — try again in \d+ ms/);
      const hint = Number(e.metadata?.get('fedlab-retry-after-ms')[0]);
      expect(hint).toBeGreaterThan(0);
      expect(hint).toBeLessThanOrEqual(INTERVAL_MS);
    }
    // Nodes the MA has not heard from are not UP (the wire has no UNKNOWN: they list as DOWN).
    expect((await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes).toEqual([]);
    for (const n of nodes) await n.start();
    await allUp();
    const ok = (await allocate('grace-after')) as { slivers?: unknown[] };
    expect(ok.slivers).toHaveLength(1);
    await site.aggClient().delete({ urns: ['urn:fedlab:plc.test:slice:grace-after'], bestEffort: false }, { chain });
  }, 60_000);

  it('after the grace, nodes that never beat are DOWN and the site says so as before', async () => {
    const at = await restartUnheard();
    await sleep(Math.max(0, GRACE_MS + 1000 - (Date.now() - at)));
    const e = (await allocate('after-grace')) as { code?: number; details?: string };
    expect(e.code, String(e.details)).toBe(Status.RESOURCE_EXHAUSTED);
    expect(e.details).toMatch(/only 0 such node\(s\) are UP/);
    for (const n of nodes) await n.start();
    await allUp();
  }, 60_000);

  it('a slice authority retries the site within its deadline: a create sent right after the restart ends READY', async () => {
    await restartUnheard();
    const t0 = Date.now();
    const created = client.createSlice({
      users: [],
      requestId: 'r-grace',
      name: 'grace',
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test', { count: 2 })],
      start: true,
      wait: true,
    });
    await sleep(1500);
    for (const n of nodes) await n.start();
    const res = await created;
    expect(res.slice?.state, JSON.stringify(res.slice?.sites.map((s) => s.status))).toBe(SliceState.SLICE_STATE_READY);
    expect(res.slice?.slivers).toHaveLength(2);
    // It waited for the nodes (the first answers were UNAVAILABLE), within the SA's deadline.
    expect(Date.now() - t0).toBeGreaterThan(1500);
    await client.deleteSlice({ sliceUrn: res.slice!.urn });
  }, 60_000);
});
