/**
 * Reading a federation for `fedlab federation check`: the slice authority's
 * slices and unfinished work, and each site's slices, slivers and unfinished
 * work, each from one snapshot of that service's store (Admin.Snapshot, as an
 * administrator: the books exactly as they are, not as a call would present
 * them); each site's nodes from ListNodes; what every node runs from
 * NodeManager.ListSlivers with a chain rooted at the nodes' owner. Sites and
 * nodes are read in parallel; one that does not answer is reported as such.
 */
import { adminClient, readTables } from '../../../services/core/admin/snapshot-client.js';
import { plainOutcome } from '../../../services/core/rpc/outcome.js';
import { createClient } from '../../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../../services/core/rpc/server.js';
import { pool } from '../../../services/core/timing.js';
import { AllocationState, NodeHealth, Sliver } from '../../../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService } from '../../../services/generated/fedlab/v1/management_authority.js';
import { NodeManagerService } from '../../../services/generated/fedlab/v1/node_manager.js';
import {
  TABLES as MA_TABLES,
  type IntentRecord as MaIntent,
  type SliceRecord as MaSlice,
  type SliverRecord as MaSliver,
} from '../../../services/management-authority/records.js';
import {
  TABLES as SA_TABLES,
  type IntentRecord as SaIntent,
  type SliceRecord as SaRecord,
} from '../../../services/slice-authority/records.js';
import type { CheckTarget, SiteTarget } from './check-target.js';
import type { ClaimedSliver, FederationView, NodeView, SaSlice, SaView, SiteSliver, SiteView } from './check-view.js';
import { codeName } from '../../remote.js';

/** Reads everything once. Throws only when the slice authority itself cannot be read. */
export async function readFederation(target: CheckTarget): Promise<FederationView> {
  const readAt = Date.now();
  const sa = await readSliceAuthority(target);
  const sites = await Promise.all(target.sites.map((s) => readSite(target, s)));
  return { sa, sites, readAt };
}

/** The slice authority's books, from one snapshot of its store. */
async function readSliceAuthority(target: CheckTarget): Promise<SaView> {
  const client = adminClient({
    address: target.sa.address,
    tls: target.sa.admin.tls,
    deadlineMs: target.deadlineMs,
    ...(target.sa.serverUrn ? { serverUrn: target.sa.serverUrn } : {}),
  });
  try {
    const { header, tables } = await readTables(client, [SA_TABLES.slices, SA_TABLES.intents]);
    const slices = new Map<string, SaSlice>();
    for (const rec of (tables.get(SA_TABLES.slices) as Map<string, SaRecord>).values()) {
      const sites = new Map<string, ClaimedSliver[]>();
      for (const site of rec.sites)
        sites.set(
          site.site,
          site.slivers.map((s) => claimOf(Sliver.fromJSON(s))).filter((c) => c !== undefined),
        );
      slices.set(rec.urn, { urn: rec.urn, state: rec.state, updatedAt: rec.updatedAt, sites });
    }
    const work = [...(tables.get(SA_TABLES.intents) as Map<string, SaIntent>).values()].map((i) => ({
      kind: i.kind,
      sliceUrn: i.sliceUrn,
      sites: i.sites,
      since: i.createdAt,
    }));
    return { urn: header.serviceUrn, slices, work };
  } finally {
    client.close();
  }
}

/** A sliver as the slice authority lists it, if it claims anything. */
function claimOf(s: Sliver): ClaimedSliver | undefined {
  const allocation =
    s.allocationState === AllocationState.ALLOCATION_STATE_PROVISIONED
      ? 'provisioned'
      : s.allocationState === AllocationState.ALLOCATION_STATE_ALLOCATED
        ? 'allocated'
        : undefined;
  if (!allocation) return undefined;
  return { urn: s.urn, sliceUrn: s.sliceUrn, nodeUrn: s.nodeUrn, allocation, ...(s.expiresAt ? { expiresAt: s.expiresAt.getTime() } : {}) };
}

/** One site's books and nodes; a site that cannot be read says why. */
async function readSite(target: CheckTarget, site: SiteTarget): Promise<SiteView> {
  const opts = { address: site.address, tls: site.admin.tls, deadlineMs: target.deadlineMs };
  const admin = adminClient(opts);
  const ma = createClient(ManagementAuthorityService, opts);
  try {
    const { tables } = await readTables(admin, [MA_TABLES.slices, MA_TABLES.slivers, MA_TABLES.intents]);
    const slices = new Map<string, string>();
    for (const s of (tables.get(MA_TABLES.slices) as Map<string, MaSlice>).values()) slices.set(s.urn, s.sliceAuthorityUrn);
    const slivers = new Map<string, SiteSliver>();
    for (const s of (tables.get(MA_TABLES.slivers) as Map<string, MaSliver>).values()) {
      if (s.allocation === 'unallocated') continue;
      const expiresAt = s.allocation === 'allocated' ? s.holdExpiresAt : s.expiresAt;
      slivers.set(s.urn, {
        urn: s.urn,
        sliceUrn: s.sliceUrn,
        nodeUrn: s.nodeUrn,
        allocation: s.allocation,
        ...(expiresAt !== undefined ? { expiresAt } : {}),
        ...(s.phase ? { phase: s.phase } : {}),
        cpuMillis: s.resources.cpuMillis,
        memMb: s.resources.memMb,
      });
    }
    const work = [...(tables.get(MA_TABLES.intents) as Map<string, MaIntent>).values()].map((i) => ({
      kind: i.kind,
      sliceUrn: i.sliceUrn,
      sliverUrns: i.items.map((x) => x.sliverUrn),
      since: i.createdAt,
    }));
    const listed: { urn: string; endpoint: string; up: boolean }[] = [];
    let token = '';
    do {
      const page = await ma.listNodes({ pageSize: 1000, pageToken: token, health: NodeHealth.NODE_HEALTH_UNSPECIFIED });
      for (const n of page.nodes) listed.push({ urn: n.urn, endpoint: n.endpoint, up: n.health === NodeHealth.NODE_HEALTH_UP });
      token = page.nextPageToken;
    } while (token);
    const nodes: NodeView[] = listed.map((n) => ({ ...n }));
    const asker = site.nodes;
    if (asker) {
      await pool(listed, 8, async (n, i) => {
        nodes[i] = await readNode(n, asker.holder.tls, asker.chain.chain, target.deadlineMs);
      });
    }
    return { domain: site.domain, ok: true, slices, slivers, work, nodes, nodesChecked: asker !== undefined };
  } catch (err) {
    return { domain: site.domain, ok: false, error: describe(err) };
  } finally {
    admin.close();
    ma.close();
  }
}

/** What one node manager runs (every page), or why it could not be read. */
async function readNode(
  n: { urn: string; endpoint: string; up: boolean },
  tls: TlsMaterial,
  chain: readonly string[],
  deadlineMs: number,
): Promise<NodeView> {
  const client = createClient(NodeManagerService, { address: n.endpoint, tls, serverUrn: n.urn, deadlineMs });
  try {
    const slivers: { urn: string; sliceUrn: string; expiresAt?: number }[] = [];
    let token = '';
    do {
      const page = await client.listSlivers({ pageSize: 1000, pageToken: token, sliceUrn: '' }, { chain });
      for (const s of page.slivers)
        slivers.push({ urn: s.urn, sliceUrn: s.sliceUrn, ...(s.expiresAt ? { expiresAt: s.expiresAt.getTime() } : {}) });
      token = page.nextPageToken;
    } while (token);
    return { ...n, slivers };
  } catch (err) {
    return { ...n, error: describe(err) };
  } finally {
    client.close();
  }
}

/** A failed call in words: its code's name and reason. */
function describe(err: unknown): string {
  const o = plainOutcome(err);
  return `${codeName(o.code)}: ${o.reason}`;
}
