// Links stitched across sites: a planetlab site and an emulab site of two domains (peered, each delegating to the first domain's slice
// authority) whose node managers run on two hosts of one netns test bed (site A's MA in this process, site B's as
// `fedlab serve ma`, a child process), and the slice authority in this process. A slice with a link stitched between
// a node of each site: the link's VXLAN crosses the hosts and TCP crosses it; bad input is refused naming link and
// endpoint with nothing held; kill -9 of site B's MA mid-create rolls both sites back — nothing left on any host
// (link devices, qdiscs, sliver namespaces, nftables elements) nor in either MA's store (site A's VNIs read from
// its ledger; site B's slice, the only holder of its VNIs, gone from its store once it is back). Needs root and the
// container driver; skipped with the reason otherwise.
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
import type { ResourceRequest } from '../../services/generated/fedlab/v1/common.js';
import { SliceAuthorityService, SliceState, type StitchedLink } from '../../services/generated/fedlab/v1/slice_authority.js';
import { sliceAuthorityRole } from '../../services/slice-authority/index.js';
import { inNetns, linkLeftovers, makeEmulabBed, measureKbps, sliverNamespaces, type EmulabBed } from '../helpers/emulab-bed.js';
import { disposeParties, siteParties, until, type SiteParties } from '../helpers/ma-harness.js';
import { canContain, cannotContainReason } from '../helpers/node-manager.js';
import { makeTestBed, netnsSupport, type NetnsHost, type TestBed } from '../helpers/netns-hosts.js';

const bedSupport = netnsSupport();
const skipReason = !canContain ? cannotContainReason : !bedSupport.ok ? bedSupport.reason : '';
if (skipReason) console.log(`ma-stitching: skipped — ${skipReason}`);

const A = 'sta.test';
const B = 'stb.test';
let dir: string;
let tb: TestBed;
let bedA: EmulabBed;
let bedB: EmulabBed;
let chainA: string[];
let chainB: string[];
let pa: SiteParties;
let sa: HostedService | undefined;
let client: PromiseClient<typeof SliceAuthorityService>;

function request(clientIds: string[]): ResourceRequest {
  return {
    nodes: { nodeUrns: [], count: clientIds.length, clientIds },
    links: [],
    exclusive: false,
    requestDocument: '',
    requestDocumentFormat: '',
  };
}

function stitched(name: string, a: string, b: string, bandwidthKbps = 0): { links: StitchedLink[] } {
  return {
    links: [
      {
        name,
        endpoints: [
          { site: A, clientId: a },
          { site: B, clientId: b },
        ],
        bandwidthKbps,
        delayMs: 0,
        lossPercent: 0,
      },
    ],
  };
}

/** Elements of the node managers' nftables sets and maps on a host (ports, addresses of slivers). */
function nftElements(h: NetnsHost): string[] {
  const out: string[] = [];
  const all = JSON.parse(h.exec(['nft', '-j', 'list', 'ruleset'])) as { nftables: Record<string, unknown>[] };
  for (const o of all.nftables) {
    const set = (o.set ?? o.map) as { table?: string; name?: string; elem?: unknown[] } | undefined;
    if (set?.table?.startsWith('fedlab-')) for (const e of set.elem ?? []) out.push(`${set.table}/${set.name}:${JSON.stringify(e)}`);
  }
  return out;
}

/** What a slice may leave on the hosts: link devices and qdiscs, sliver namespaces, nftables elements. */
function leftovers(): string[] {
  return [
    ...tb.hosts.flatMap((h) => linkLeftovers(h).map((l) => `${h.netns}: ${l}`)),
    ...[...bedA.nodes, ...bedB.nodes].flatMap((n) => sliverNamespaces(n.instance).map((ns) => `netns ${ns}`)),
    ...tb.hosts.flatMap((h) => nftElements(h).map((e) => `${h.netns}: nft ${e}`)),
  ];
}

/** Whether site B's store still holds the slice (and so its VNIs: they live in the slice record only). */
async function heldAtB(slice: string): Promise<boolean> {
  try {
    await bedB.site.aggClient(pa.sa).status({ urns: [slice] }, { chain: chainB, deadlineMs: 5000 });
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === Status.NOT_FOUND) return false;
    throw err;
  }
}

describe.skipIf(skipReason !== '')('links stitched across two sites of two domains', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-stitch-'));
    pa = await siteParties(A);
    const pb = await siteParties(B);
    await peerEachOther([pa, pb]);
    tb = await makeTestBed({ hosts: 2 });
    const delegation = { delegation_policy: { allow_own_domain: true, allow: [pa.sa.urn] } };
    bedA = await makeEmulabBed({ hosts: 2, tb, placement: [0], parties: pa, config: delegation, nodePrefix: 'a', style: 'planetlab' });
    bedB = await makeEmulabBed({ hosts: 2, tb, placement: [1], parties: pb, config: delegation, child: true, nodePrefix: 'b' });
    chainA = await bedA.site.saChain({ sa: pa.sa, requestId: 'sa-a', ttlS: 86_400 });
    chainB = await bedB.site.saChain({ sa: pa.sa, requestId: 'sa-b', ttlS: 86_400 });
    const config = saConfig({
      urn: pa.sa.urn,
      listen: { host: '127.0.0.1', port: 0 },
      tls: { ca: pa.sa.caPath, cert: pa.sa.certPath, key: pa.sa.keyPath },
      trust_bundle: pa.bundleFile,
      data_dir: join(dir, 'sa-data'),
      log_level: 'silent',
      shutdown_grace_ms: 2000,
      admins: [pa.admin.urn],
      sites: [
        { domain: A, endpoint: bedA.site.address, ma_urn: pa.maUrn, chain_file: writeChainFile(join(dir, 'a.chain'), chainA) },
        { domain: B, endpoint: bedB.site.address, ma_urn: pb.maUrn, chain_file: writeChainFile(join(dir, 'b.chain'), chainB) },
      ],
      providers: [{ urn: pa.sp.urn, quotas: {} }],
      limits: { site_deadline_ms: 30_000 },
      sweep_interval_ms: 200,
      intent_retry_interval_ms: 300,
    }).writeAndCompile(join(dir, 'sa.json'));
    sa = await hostService(config, silentLogger(), sliceAuthorityRole());
    client = createClient(SliceAuthorityService, {
      address: `127.0.0.1:${sa.port}`,
      tls: { caCerts: pa.pki.caPem, cert: pa.sp.certPem, key: pa.sp.keyPem },
      serverUrn: pa.sa.urn,
      deadlineMs: 90_000,
    });
  }, 300_000);

  afterAll(async () => {
    client?.close();
    await sa?.stop();
    await bedB?.destroy();
    await bedA?.destroy();
    await tb?.destroy();
    await disposeParties();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('stitches a link between slivers at the two sites: TCP crosses it; a delete leaves nothing', async () => {
    const before = leftovers();
    expect(before).toEqual([]);
    const res = await client.createSlice({
      requestId: 'st-1',
      name: 'st1',
      description: '',
      mode: 0,
      sites: [
        { site: A, request: request(['a']) },
        { site: B, request: request(['b']) },
      ],
      stitchedLinks: stitched('wan0', 'a', 'b', 20_000),
      start: true,
      wait: true,
      users: [],
    });
    const slice = res.slice!;
    expect(slice.sites.map((s) => s.status?.reason)).toEqual(['', '']);
    expect(slice.state).toBe(SliceState.SLICE_STATE_READY);
    const sa0 = slice.slivers.find((s) => s.clientId === 'a' && s.aggregateUrn === pa.maUrn)!;
    const sb0 = slice.slivers.find((s) => s.clientId === 'b')!;
    const vniA = bedA.site.ma!.aggregate.linkVnis(slice.urn).get('wan0');
    expect(vniA).toBeGreaterThanOrEqual(0x80_0000);
    const described = await bedB.site.aggClient(pa.sa).describe({ urns: [slice.urn] }, { chain: chainB });
    const ifB = described.slivers[0]!.interfaces[0]!;
    expect(ifB).toMatchObject({ link: 'wan0', name: 'eth1', address: '10.201.0.2/24' });
    expect(ifB.wiring?.vni).toBe(vniA);
    expect(ifB.wiring?.remoteUnderlays).toEqual([tb.hosts[0]!.address]);

    const nsA = bedA.nodes[0]!.netnsOf(sa0.urn);
    const nsB = bedB.nodes[0]!.netnsOf(sb0.urn);
    const ping = await inNetns(nsA, ['busybox', 'ping', '-c', '3', '-W', '2', '10.201.0.2'], 20_000);
    expect(ping).toMatch(/3 packets received/);
    const kbps = await measureKbps(nsA, nsB, '10.201.0.2/24', 1, 5301);
    console.log(`ma-stitching: ${kbps} kbit/s across a stitched link shaped to 20000 kbit/s`);
    expect(kbps).toBeGreaterThan(20_000 * 0.5);
    expect(kbps).toBeLessThan(20_000 * 1.2);

    // A stitch point whose VNI is taken at a site: ALREADY_EXISTS naming the link and endpoint, nothing held.
    const taken = await bedA.site
      .aggClient(pa.sa)
      .allocate(
        {
          users: [],
          requestId: 'taken-1',
          sliceUrn: `urn:fedlab:${A}:slice:taken`,
          providerUrn: pa.sp.urn,
          request: {
            ...request(['x']),
            stitches: {
              ends: [
                {
                  link: 'w9',
                  clientId: 'x',
                  vni: vniA!,
                  address: '10.201.9.1/24',
                  peerSite: B,
                  peerClientId: 'y',
                  bandwidthKbps: 0,
                  delayMs: 0,
                  lossPercent: 0,
                },
              ],
            },
          },
        },
        { chain: chainA },
      )
      .catch((e: unknown) => e);
    expect((taken as { code: number }).code).toBe(Status.ALREADY_EXISTS);
    expect((taken as Error).message).toMatch(/stitched link w9 \(endpoint x\)/);
    expect(bedA.site.ma!.aggregate.linkVnis(`urn:fedlab:${A}:slice:taken`).size).toBe(0);

    await client.deleteSlice({ sliceUrn: slice.urn });
    await until(async () => leftovers().length === 0, 30_000, 'nothing left on the hosts');
    expect(bedA.site.ma!.aggregate.linkVnis(slice.urn).size).toBe(0);
    expect(await heldAtB(slice.urn)).toBe(false);
  }, 180_000);

  it('refuses an endpoint that names no node of its site’s request, naming link and endpoint; nothing is asked', async () => {
    const err = await client
      .createSlice({
        requestId: 'st-bad',
        name: 'stbad',
        description: '',
        mode: 0,
        sites: [
          { site: A, request: request(['a']) },
          { site: B, request: request(['b']) },
        ],
        stitchedLinks: stitched('wan1', 'a', 'nope'),
        start: false,
        wait: true,
        users: [],
      })
      .catch((e: unknown) => e as Error);
    expect((err as { code: number }).code).toBe(Status.INVALID_ARGUMENT);
    expect((err as Error).message).toMatch(/stitched link wan1 .*endpoint nope/);
    expect(leftovers()).toEqual([]);
  }, 30_000);

  it('kill -9 of one site’s MA mid-create rolls both sites back: nothing left on the hosts or in the stores', async () => {
    const slice = `urn:fedlab:${A}:slice:st2`;
    const res = await client.createSlice({
      requestId: 'st-2',
      name: 'st2',
      description: '',
      mode: 0,
      sites: [
        { site: A, request: request(['a']) },
        { site: B, request: request(['b']) },
      ],
      stitchedLinks: stitched('wan2', 'a', 'b'),
      start: true,
      wait: false,
      users: [],
    });
    const watching = (async () => {
      for await (const e of client.watchSlice({ sliceUrn: slice, afterSequence: 1, follow: true }, { deadlineMs: 60_000 })) {
        // Replayed from the first event (the slice exists once CreateSlice answered). Site B has allocated (it holds the VNI): its MA dies before it provisions.
        if (e.site === B && e.message === 'allocated') {
          await bedB.site.kill9();
          return 'killed';
        }
        if (e.state !== SliceState.SLICE_STATE_PENDING && e.state !== SliceState.SLICE_STATE_UNSPECIFIED) return 'settled first';
      }
      return 'ended';
    })();
    expect(res.slice?.urn).toBe(slice);
    expect(await watching).toBe('killed');
    await until(
      async () => (await client.getSlice({ sliceUrn: slice })).slice?.state === SliceState.SLICE_STATE_FAILED,
      60_000,
      'the slice FAILED',
    );
    // Site A is rolled back at once; site B once its MA is back (the slice authority's delete is retried).
    expect(bedA.site.ma!.aggregate.linkVnis(slice).size).toBe(0);
    await until(async () => tb.hosts[0] !== undefined && linkLeftovers(tb.hosts[0]).length === 0, 20_000, 'nothing left on host A');
    await bedB.site.restart();
    await until(async () => !(await heldAtB(slice)), 60_000, "site B's slice (and VNI) released");
    await until(async () => leftovers().length === 0, 60_000, 'nothing left on any host');
    expect(leftovers()).toEqual([]);
  }, 240_000);
});
