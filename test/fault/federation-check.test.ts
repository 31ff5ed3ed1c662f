// `fedlab federation check` against a real federation (two sites of two nodes each, a slice authority,
// every party a `fedlab serve` process, as `fedlab up` runs them): nothing to report when healthy; then a
// sliver made by hand on a node (an orphan), a slice record deleted by hand at the slice authority (its
// sites hold slivers for a slice it no longer has) and a sliver record deleted by hand at a site (its
// node runs a sliver no record explains, the slice authority lists a sliver the site does not hold) are
// each found with the command that fixes them; `--fix` repairs all of it and a check after finds nothing.
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsOfDir, homeUrns } from '../../cli/up/pki.js';
import { toPublicJwk } from '../../services/core/credentials/index.js';
import { createClient } from '../../services/core/rpc/client.js';
import { Store } from '../../services/core/store/store.js';
import { AllocationState, SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { SliceState, type CreateSliceRequest } from '../../services/generated/fedlab/v1/slice_authority.js';
import { TABLES as MA_TABLES } from '../../services/management-authority/records.js';
import { TABLES as SA_TABLES } from '../../services/slice-authority/records.js';
import type { LocalFederation, NodeRuntime, SiteRuntime } from '../../cli/up/federation.js';
import { checkArgsFor } from '../chaos/check-flags.js';
import { runCli } from '../helpers/cli.js';
import { openFederation, type TestFederation } from '../helpers/federation.js';

let tf: TestFederation;
let fed: LocalFederation;

function request(name: string): CreateSliceRequest {
  return {
    users: [],
    requestId: `req-${name}`,
    name,
    description: 'check test',
    mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
    sites: fed.sites.map((s) => ({
      site: s.domain,
      request: {
        nodes: { nodeUrns: [], count: 1, clientIds: [] },
        resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
        links: [],
        exclusive: false,
        requestDocument: '',
        requestDocumentFormat: '',
      },
    })),
    start: true,
    wait: true,
  };
}

/** A node manager client as the node's MA (the owner → MA chain), as the site's operators would use it. */
function asOwner(site: SiteRuntime, node: NodeRuntime) {
  const client = createClient(NodeManagerService, {
    address: node.endpoint,
    tls: tlsOfDir(site.paths.ma, readFileSync(fed.allCaFile, 'utf8')),
    serverUrn: node.urn,
    deadlineMs: 10_000,
  });
  const chain = readFileSync(node.paths.ownerChain, 'utf8').split('\n').filter(Boolean);
  return { client, chain };
}

async function sliversOnNodes(): Promise<string[]> {
  const out: string[] = [];
  for (const site of fed.sites)
    for (const node of site.nodes) {
      const { client, chain } = asOwner(site, node);
      try {
        const res = await client.listSlivers({ pageSize: 1000, pageToken: '', sliceUrn: '' }, { chain });
        out.push(...res.slivers.map((s) => s.urn));
      } finally {
        client.close();
      }
    }
  return out.sort();
}

async function check(...extra: string[]): Promise<{ code: number | null; report: Record<string, unknown>; stderr: string }> {
  const res = await runCli(['federation', 'check', ...checkArgsFor(fed), '--json', ...extra], { timeoutMs: 120_000 });
  let report: Record<string, unknown> = {};
  try {
    report = JSON.parse(res.stdout) as Record<string, unknown>;
  } catch {
    // left empty: the assertions below show stdout and stderr
  }
  return { code: res.code, report, stderr: `${res.stdout}\n${res.stderr}` };
}

type JsonFinding = { kind: string; site?: string; slice_urn?: string; sliver_urn?: string; command?: string };

describe('fedlab federation check', { timeout: 180_000 }, () => {
  beforeAll(async () => {
    tf = await openFederation({ sites: ['planetlab', 'protogeni'], nodes: 2, driver: 'process', heartbeatMs: 500, logLevel: 'info' });
    fed = tf.fed;
    await fed.startSites();
    await fed.peerDomains();
    await fed.delegateToSliceAuthority();
    await fed.startSliceAuthority();
  }, 300_000);

  afterAll(async () => {
    await tf?.destroy();
  }, 60_000);

  it('reports nothing on a healthy federation', async () => {
    const sa = fed.saClient();
    try {
      for (const name of ['keep', 'lose']) expect((await sa.createSlice(request(name))).slice?.state).toBe(SliceState.SLICE_STATE_READY);
    } finally {
      sa.close();
    }
    const { code, report, stderr } = await check();
    expect(code, stderr).toBe(0);
    expect(report.clean).toBe(true);
    expect(report.findings).toEqual([]);
    const sites = (report.summary as { sites: { slivers: number; sliversOnNodes: number; nodesRead: number }[] }).sites;
    expect(sites.map((s) => [s.slivers, s.sliversOnNodes, s.nodesRead])).toEqual([
      [2, 2, 2],
      [2, 2, 2],
    ]);
  });

  it('finds a hand-made orphan and hand-deleted records, each with its fix, and --fix repairs them', async () => {
    const [plc, geni] = fed.sites as [SiteRuntime, SiteRuntime];
    const home = fed.home;
    const keep = `urn:fedlab:${home}:slice:keep`;
    const lose = `urn:fedlab:${home}:slice:lose`;
    // An orphan: a sliver created directly at a node, which no book has.
    const orphan = `urn:fedlab:${plc.domain}:sliver:by-hand`;
    const node = plc.nodes[0] as NodeRuntime;
    const { client, chain } = asOwner(plc, node);
    try {
      await client.createSliver(
        {
          users: [],
          requestId: 'by-hand',
          sliverUrn: orphan,
          sliceUrn: `urn:fedlab:${home}:slice:nobody`,
          sliceAuthorityUrn: homeUrns(home).sa,
          sliceAuthorityJwk: JSON.stringify(toPublicJwk(createPublicKey(readFileSync(`${fed.homePaths.sa}/cert.pem`)))),
          providerUrn: homeUrns(home).sp,
          resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
          exclusive: false,
          interfaces: [],
          allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
          clientId: '',
          start: true,
        },
        { chain },
      );
    } finally {
      client.close();
    }
    // The slice authority's record of `lose`, deleted by hand while it is stopped.
    await fed.sa?.stop();
    const saStore = await Store.open(fed.homePaths.saData);
    await saStore.table(SA_TABLES.slices).del(lose, { sync: true });
    await saStore.close();
    await fed.restartSliceAuthority();
    // The second site's record of `keep`'s sliver there, deleted by hand while its MA is stopped.
    await geni.ma.stop();
    const maStore = await Store.open(geni.paths.maData);
    const sliverTable = maStore.table<{ sliceUrn: string }>(MA_TABLES.slivers);
    let lost = '';
    for await (const [urn, s] of sliverTable.entries()) if (s.sliceUrn === keep) lost = urn;
    expect(lost).not.toBe('');
    await sliverTable.del(lost, { sync: true });
    await maStore.close();
    await geni.ma.start();
    await fed.waitNodesUp();

    const found = await check();
    expect(found.code, found.stderr).toBe(1);
    const findings = found.report.findings as JsonFinding[];
    const has = (kind: string, match: (f: JsonFinding) => boolean): JsonFinding | undefined =>
      findings.find((f) => f.kind === kind && match(f));
    expect(has('orphan', (f) => f.sliver_urn === orphan)?.command).toMatch(/^fedlab sliver delete --node \S+ --node-urn \S+ --sliver /);
    expect(has('orphan', (f) => f.sliver_urn === lost)?.command).toMatch(/^fedlab sliver delete /);
    expect(has('ghost', (f) => f.sliver_urn === lost)?.command).toMatch(new RegExp(`^fedlab slice delete ${keep} --sa `));
    for (const site of [plc, geni])
      expect(has('held', (f) => f.slice_urn === lose && f.site === site.domain)?.command).toMatch(
        new RegExp(`^fedlab site release --ma \\S+ --slice ${lose} --chain `),
      );
    expect(findings).toHaveLength(5);

    const fixed = await check('--fix');
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(
      (fixed.report.fixes as { ok: boolean }[]).every((x) => x.ok),
      fixed.stderr,
    ).toBe(true);
    expect(fixed.report.after).toEqual([]);
    expect(await sliversOnNodes()).toEqual([]);
    const again = await check();
    expect(again.code, again.stderr).toBe(0);
  });
});
