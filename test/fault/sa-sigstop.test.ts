// Issue 18's SIGSTOP reproduction, with real processes: one site's management authority (`fedlab serve
// ma`) is stopped with SIGSTOP during an all-or-nothing CreateSlice over two domains, for longer than the
// slice authority's site deadline. The SA answers within its deadline naming the stopped site, rolls the
// other site back, and keeps retrying the Delete at the stopped one. On SIGCONT the stopped MA finds the
// stale Allocate (and stale Deletes) in its socket: none of them may leave a hold behind — the stale
// Allocate's call has ended (cancelled), and a Delete of the slice fences what arrived before it. The
// SA's status of the stopped site keeps its cause and adds "cleaned up" once its Delete went through.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeChainFile } from '../../cli/chain-file.js';
import { peerEachOther } from '../../cli/kit/peering.js';
import { saConfig } from '../../cli/kit/role-configs.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { silentLogger } from '../../services/core/log.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { sleep } from '../../services/core/timing.js';
import { NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import { SliceAuthorityService, SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { sliceAuthorityRole } from '../../services/slice-authority/index.js';
import { siteRequest } from '../helpers/federation-harness.js';
import {
  disposeParties,
  enrolNode,
  siteParties,
  startSite,
  until,
  type Site,
  type SiteParties,
  type TestNode,
} from '../helpers/ma-harness.js';

const DEADLINE_MS = 3000;
/** How long the MA stays stopped: well past the SA's site deadline, so that the SA gives up and rolls back. */
const STOPPED_MS = 3 * DEADLINE_MS;

let dir: string;
let home: SiteParties;
let stopped: Site;
let other: Site;
const nodes: TestNode[] = [];
let sa: HostedService | undefined;
let client: PromiseClient<typeof SliceAuthorityService>;
let stoppedChain: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-sigstop-'));
  home = await siteParties('plc.test');
  const pg = await siteParties('pg.test');
  await peerEachOther([home, pg]);
  const policy = { delegation_policy: { allow_own_domain: true, allow: [home.sa.urn] } };
  stopped = await startSite({ style: 'planetlab', parties: home, child: true, config: policy });
  other = await startSite({ style: 'protogeni', parties: pg, config: policy });
  nodes.push(await enrolNode(stopped, { name: 's1', driver: 'simulated' }));
  nodes.push(await enrolNode(other, { name: 'o1', driver: 'simulated' }));
  for (const site of [stopped, other])
    await until(
      async () => (await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes.length === 1,
      15_000,
      `${site.parties.domain}: its node UP`,
    );
  stoppedChain = await stopped.saChain({ sa: home.sa });
  const otherChain = await other.saChain({ sa: home.sa });
  const config = saConfig({
    urn: home.sa.urn,
    listen: { host: '127.0.0.1', port: 0 },
    tls: { ca: home.sa.caPath, cert: home.sa.certPath, key: home.sa.keyPath },
    trust_bundle: home.bundleFile,
    data_dir: join(dir, 'sa-data'),
    log_level: 'silent',
    shutdown_grace_ms: 2000,
    sites: [
      {
        domain: 'plc.test',
        endpoint: stopped.address,
        ma_urn: home.maUrn,
        chain_file: writeChainFile(join(dir, 'plc.chain'), stoppedChain),
      },
      { domain: 'pg.test', endpoint: other.address, ma_urn: pg.maUrn, chain_file: writeChainFile(join(dir, 'pg.chain'), otherChain) },
    ],
    providers: [{ urn: home.sp.urn, quotas: {} }],
    limits: { site_deadline_ms: DEADLINE_MS },
    sweep_interval_ms: 200,
    intent_retry_interval_ms: 300,
  }).writeAndCompile(join(dir, 'sa.json'));
  sa = await hostService(config, silentLogger(), sliceAuthorityRole());
  client = createClient(SliceAuthorityService, {
    address: `127.0.0.1:${sa.port}`,
    tls: { caCerts: home.pki.caPem, cert: home.sp.certPem, key: home.sp.keyPem },
    serverUrn: home.sa.urn,
    deadlineMs: 60_000,
  });
}, 120_000);

afterAll(async () => {
  client?.close();
  await sa?.stop();
  if (stopped?.child?.pid) process.kill(stopped.child.pid, 'SIGCONT');
  for (const n of nodes) await n.destroy();
  await stopped?.destroy();
  await other?.destroy();
  rmSync(dir, { recursive: true, force: true });
  await disposeParties();
});

/** What the stopped site's MA holds of a slice: its slivers, or undefined when it has no such slice. */
async function heldAtStopped(sliceUrn: string): Promise<string[] | undefined> {
  try {
    return (await stopped.aggClient(home.sa).describe({ urns: [sliceUrn] }, { chain: stoppedChain })).slivers.map((s) => s.urn);
  } catch (err) {
    expect((err as { code?: number }).code).toBe(Status.NOT_FOUND);
    return undefined;
  }
}

/** What the stopped site's node has committed (holds and slivers), in CPU. */
async function committedAtStopped(): Promise<number> {
  const { node } = await stopped.maClient().getNode({ nodeUrn: nodes[0]!.urn });
  return node?.allocated?.cpuMillis ?? -1;
}

describe('an MA stopped (SIGSTOP) during a create', () => {
  it('keeps no hold of the rolled-back slice once it runs again, and the SA says the site was cleaned up', async () => {
    // A first slice, so that the SA knows both sites' versions and the create below goes straight to Allocate.
    const warm = await client.createSlice({
      users: [],
      requestId: 'r-warm',
      name: 'warm',
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test'), siteRequest('pg.test')],
      start: true,
      wait: true,
    });
    expect(warm.slice?.state).toBe(SliceState.SLICE_STATE_READY);
    await client.deleteSlice({ sliceUrn: warm.slice!.urn });
    expect(await committedAtStopped()).toBe(0);

    const pid = stopped.child!.pid as number;
    process.kill(pid, 'SIGSTOP');
    const t0 = Date.now();
    let sliceUrn = '';
    try {
      const res = await client.createSlice({
        users: [],
        requestId: 'r-stop',
        name: 'stop',
        description: '',
        mode: 0,
        sites: [siteRequest('plc.test'), siteRequest('pg.test')],
        start: true,
        wait: true,
      });
      const took = Date.now() - t0;
      sliceUrn = res.slice!.urn;
      // Within the deadline (and the rollback at the other site), naming the stopped site.
      expect(took).toBeLessThan(2 * DEADLINE_MS);
      expect(res.slice?.state).toBe(SliceState.SLICE_STATE_FAILED);
      const plc = res.slice?.sites.find((s) => s.site === 'plc.test')?.status;
      expect(plc?.code).toBe(Status.DEADLINE_EXCEEDED);
      expect(plc?.reason).toMatch(/^site plc\.test: did not answer/);
      const pg = res.slice?.sites.find((s) => s.site === 'pg.test')?.status;
      expect(pg?.code).toBe(Status.ABORTED);
      expect(pg?.reason).toMatch(/rolled back: .* plc\.test failed/);
      // The other site holds nothing of it.
      expect(
        (await other
          .aggClient(home.sa)
          .describe({ urns: [sliceUrn] }, { chain: await other.saChain({ sa: home.sa }) })
          .catch((e: unknown) => e)) as { code?: number },
      ).toMatchObject({ code: Status.NOT_FOUND });
      await sleep(STOPPED_MS - (Date.now() - t0));
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    // Running again, the MA works through what waited in its socket; the SA's retried Delete goes through.
    await until(
      async () =>
        /; cleaned up$/.test((await client.getSlice({ sliceUrn })).slice?.sites.find((s) => s.site === 'plc.test')?.status?.reason ?? ''),
      20_000,
      "the SA to see the stopped site's cleanup through",
    );
    const after = (await client.getSlice({ sliceUrn })).slice;
    expect(after?.state).toBe(SliceState.SLICE_STATE_FAILED);
    const plc = after?.sites.find((s) => s.site === 'plc.test')?.status;
    // The original cause, then the cleanup: no "delete not finished, retrying" left behind.
    expect(plc?.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(plc?.reason).toMatch(/^site plc\.test: did not answer.*; cleaned up$/);
    expect(plc?.reason).not.toMatch(/not finished/);

    // No hold remains at the stopped MA, and none appears later (the stale Allocate never lands).
    expect(await heldAtStopped(sliceUrn)).toBeUndefined();
    expect(await committedAtStopped()).toBe(0);
    await sleep(2000);
    expect(await heldAtStopped(sliceUrn)).toBeUndefined();
    expect(await committedAtStopped()).toBe(0);
    expect(nodes.flatMap((n) => n.nm?.slivers.list() ?? [])).toEqual([]);
  }, 90_000);
});
