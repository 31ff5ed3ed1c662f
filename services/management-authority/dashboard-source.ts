/**
 * What a management authority shows on the federation dashboard
 * (services/core/dashboard): its site, its nodes with their health, last
 * heartbeat and what slices hold against their capacity, and the slices and
 * slivers it holds. Read from the registry and the ledger in memory; nothing
 * is written.
 */
import type {
  DashboardPeer,
  DashboardSource,
  NodeView,
  SiteView,
  SliceSummaryView,
  SliceView,
  SliverView,
} from '../core/dashboard/dashboard-source.js';
import { SliverIsolation } from '../generated/fedlab/v1/common.js';
import type { Access } from './access.js';
import type { SliceLedger } from './aggregate/slice-ledger.js';
import type { StyleName } from './config.js';
import type { LiveNode, NodeRegistry } from './node-registry.js';
import { imagesOfNode } from './node-resources.js';
import type { SliceRecord, SliverRecord } from './records.js';

/** What the MA's dashboard reads. */
export interface MaDashboardDeps {
  readonly urn: string;
  readonly domain: string;
  readonly style: StyleName;
  readonly access: Pick<Access, 'isAdmin'>;
  readonly registry: NodeRegistry;
  readonly ledger: SliceLedger;
}

function isolationName(n: number): string {
  return (SliverIsolation[n] ?? 'unspecified').replace('SLIVER_ISOLATION_', '').toLowerCase();
}

/** A slice's state as this site sees it, from its slivers (the MA keeps no slice state of its own). */
function sliceState(slice: SliceRecord, slivers: readonly SliverRecord[]): string {
  if (slice.shutDown) return 'shut down';
  if (slice.swappedOut) return 'swapped out';
  if (slivers.length === 0) return 'empty';
  const failed = slivers.filter((s) => s.operational === 'failed').length;
  if (failed > 0) return failed === slivers.length ? 'failed' : 'partial';
  if (slivers.every((s) => s.allocation === 'provisioned' && s.operational === 'ready')) return 'ready';
  if (slivers.some((s) => s.allocation === 'allocated')) return 'allocated';
  return 'pending';
}

/** The management authority's dashboard data. */
export class MaDashboardSource implements DashboardSource {
  readonly role = 'management authority';

  constructor(private readonly d: MaDashboardDeps) {}

  refusal(peer: DashboardPeer): string | undefined {
    if (this.d.access.isAdmin(peer)) return undefined;
    return `${peer.urn} is not an administrator of ${this.d.urn} (admins in its config); only they may see its dashboard.`;
  }

  sites(): SiteView[] {
    const up = this.d.registry.all().filter((n) => n.up).length;
    return [
      {
        domain: this.d.domain,
        aggregateUrn: this.d.urn,
        style: this.d.style,
        note: `${this.d.registry.size} nodes, ${up} up; ${this.d.ledger.slices.size} slices`,
      },
    ];
  }

  nodes(): NodeView[] {
    return this.d.registry.all().map((n) => this.node(n));
  }

  private node(n: LiveNode): NodeView {
    const use = this.d.ledger.use(n.record.urn);
    const cap = n.record.ownerLimits.slivers;
    return {
      urn: n.record.urn,
      owner: n.record.ownerUrn,
      health: this.d.registry.isUnknown(n.record.urn) ? 'unknown' : n.up ? 'up' : 'down',
      ...(n.lastHeartbeatAt !== undefined ? { lastHeartbeatAt: n.lastHeartbeatAt } : {}),
      missedHeartbeats: this.d.registry.missed(n),
      endpoint: n.endpoint,
      version: n.version,
      isolation: isolationName(n.record.isolation),
      images: [...imagesOfNode(n)],
      capacity: { ...n.capacity, ...(cap !== undefined ? { slivers: cap } : {}) },
      allocated: { ...use.committed, slivers: use.slivers },
    };
  }

  slices(limit: number): { slices: SliceSummaryView[]; total: number } {
    const all = [...this.d.ledger.slices.values()].map((s) => this.summary(s, this.d.ledger.sliversOf(s.urn)));
    all.sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0) || (a.urn < b.urn ? -1 : 1));
    return { slices: all.slice(0, limit), total: all.length };
  }

  slice(urn: string): SliceView | undefined {
    const rec = this.d.ledger.slices.get(urn);
    if (!rec) return undefined;
    const slivers = this.d.ledger.sliversOf(urn);
    return {
      ...this.summary(rec, slivers),
      description: rec.shutDown ? `shut down by ${rec.shutDown.by}: ${rec.shutDown.reason}` : '',
      siteParts: [
        {
          site: this.d.domain,
          aggregateUrn: this.d.urn,
          code: rec.shutDown ? 'FAILED_PRECONDITION' : 'OK',
          reason: rec.shutDown?.reason ?? '',
        },
      ],
      sliverList: slivers.map((s) => this.sliver(s)),
    };
  }

  private summary(s: SliceRecord, slivers: readonly SliverRecord[]): SliceSummaryView {
    const expiry = Math.max(0, ...slivers.map((x) => (x.allocation === 'allocated' ? (x.holdExpiresAt ?? 0) : x.expiresAt)));
    return {
      urn: s.urn,
      provider: s.providerUrn,
      state: sliceState(s, slivers),
      createdAt: s.createdAt,
      updatedAt: Math.max(s.createdAt, ...slivers.map((x) => x.updatedAt)),
      ...(expiry > 0 ? { expiresAt: expiry } : {}),
      sites: 1,
      slivers: slivers.length,
      failed: slivers.filter((x) => x.operational === 'failed').length,
    };
  }

  private sliver(s: SliverRecord): SliverView {
    const expiresAt = s.allocation === 'allocated' ? s.holdExpiresAt : s.expiresAt;
    return {
      urn: s.urn,
      site: this.d.domain,
      nodeUrn: s.nodeUrn,
      allocation: s.allocation,
      operational: s.operational,
      error: s.error,
      ...(expiresAt ? { expiresAt } : {}),
    };
  }
}
