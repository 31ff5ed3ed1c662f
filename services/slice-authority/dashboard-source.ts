/**
 * What the slice authority shows on the federation dashboard
 * (services/core/dashboard): the sites it creates slices at, every slice
 * with its state, expiry, each site's outcome and each sliver's state and
 * failure reason, and a slice's progress live from the same machinery as
 * WatchSlice (slices/watch.ts, events.ts). It reads the slice book as an
 * administrator would; nothing is written.
 */
import { status as Status } from '@grpc/grpc-js';
import type {
  DashboardPeer,
  DashboardSource,
  SiteView,
  SliceEventView,
  SliceSummaryView,
  SliceView,
  SliverView,
} from '../core/dashboard/dashboard-source.js';
import { parseUrn } from '../core/identity/urn.js';
import { AllocationState, OperationalState, type Sliver } from '../generated/fedlab/v1/common.js';
import { SliceState, type Slice, type WatchSliceResponse } from '../generated/fedlab/v1/slice_authority.js';
import type { Accounts, Caller } from './accounts.js';
import { stateFromWire } from './records.js';
import type { Sites } from './sites.js';
import type { SliceBook } from './slices/slice-book.js';

/** What the SA's dashboard reads. */
export interface SaDashboardDeps {
  readonly urn: string;
  readonly accounts: Pick<Accounts, 'caller'>;
  readonly book: SliceBook;
  readonly sites: Pick<Sites, 'domains' | 'get'>;
}

/** Slices fetched per ListSlices page while gathering the list. */
const PAGE = 1000;

function codeName(code: number | undefined): string {
  return Status[code ?? Status.OK] ?? `code ${code}`;
}

function ms(d: Date | undefined): number | undefined {
  return d ? d.getTime() : undefined;
}

function siteOf(s: Sliver): string {
  try {
    return parseUrn(s.urn).domain;
  } catch {
    return '';
  }
}

function sliverView(s: Sliver): SliverView {
  const expiresAt = ms(s.expiresAt);
  return {
    urn: s.urn,
    site: siteOf(s),
    nodeUrn: s.nodeUrn,
    allocation: (AllocationState[s.allocationState] ?? 'unspecified').replace('ALLOCATION_STATE_', '').toLowerCase(),
    operational: (OperationalState[s.operationalState] ?? 'unspecified').replace('OPERATIONAL_STATE_', '').toLowerCase(),
    error: s.error,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
}

function summaryOf(s: Slice): SliceSummaryView {
  return {
    urn: s.urn,
    provider: s.providerUrn,
    state: stateFromWire(s.state) ?? 'unknown',
    ...(s.createdAt ? { createdAt: s.createdAt.getTime() } : {}),
    ...(s.updatedAt ? { updatedAt: s.updatedAt.getTime() } : {}),
    ...(s.expiresAt ? { expiresAt: s.expiresAt.getTime() } : {}),
    sites: s.sites.length,
    slivers: s.slivers.length,
    failed: s.slivers.filter((x) => x.operationalState === OperationalState.OPERATIONAL_STATE_FAILED).length,
  };
}

/** The dashboard's view of a slice. */
export function sliceView(s: Slice): SliceView {
  return {
    ...summaryOf(s),
    description: s.description,
    siteParts: s.sites.map((p) => {
      const expiresAt = ms(p.expiresAt);
      return {
        site: p.site,
        aggregateUrn: p.aggregateUrn,
        code: codeName(p.status?.code),
        reason: p.status?.reason ?? '',
        ...(expiresAt !== undefined ? { expiresAt } : {}),
      };
    }),
    sliverList: s.slivers.map(sliverView),
  };
}

/** The slice authority's dashboard data. */
export class SaDashboardSource implements DashboardSource {
  readonly role = 'slice authority';
  /** Reads as an administrator: every slice. */
  private readonly reader: Caller;

  constructor(private readonly d: SaDashboardDeps) {
    this.reader = { urn: d.urn, thumbprint: '', admin: true };
  }

  refusal(peer: DashboardPeer): string | undefined {
    let caller: Caller;
    try {
      caller = this.d.accounts.caller(peer);
    } catch (err) {
      // No account, or a revoked key: the message says which.
      return (err as Error).message;
    }
    if (caller.admin) return undefined;
    return `${peer.urn} is not an administrator of ${this.d.urn} (admins in its config); only they may see its dashboard.`;
  }

  sites(): SiteView[] {
    return this.d.sites.domains().flatMap((domain) => {
      const s = this.d.sites.get(domain);
      if (!s) return [];
      return [
        {
          domain,
          aggregateUrn: s.maUrn,
          endpoint: s.endpoint,
          note: `MA → SA chain valid until ${new Date(s.chainExpiresAt).toISOString()}`,
        },
      ];
    });
  }

  slices(limit: number): { slices: SliceSummaryView[]; total: number } {
    const all: SliceSummaryView[] = [];
    // ListSlices leaves deleted and expired slices out unless asked for them by state.
    for (const state of [SliceState.SLICE_STATE_UNSPECIFIED, SliceState.SLICE_STATE_DELETED, SliceState.SLICE_STATE_EXPIRED]) {
      let pageToken = '';
      do {
        const page = this.d.book.list(this.reader, { pageSize: PAGE, pageToken, state });
        for (const s of page.slices) all.push(summaryOf(s));
        pageToken = page.nextPageToken;
      } while (pageToken);
    }
    all.sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0) || (a.urn < b.urn ? -1 : 1));
    return { slices: all.slice(0, limit), total: all.length };
  }

  slice(urn: string): SliceView | undefined {
    try {
      return sliceView(this.d.book.get(this.reader, urn));
    } catch {
      // Not a slice URN, or no such slice.
      return undefined;
    }
  }

  async *watch(urn: string, afterSequence: number, signal: AbortSignal): AsyncGenerator<SliceEventView> {
    const events = this.d.book.watch(this.reader, { sliceUrn: urn, afterSequence, follow: true }, signal);
    for await (const e of events) yield this.event(e);
  }

  /** An event with the slice as it is now (its snapshot when the event carries one). */
  private event(e: WatchSliceResponse): SliceEventView {
    const slice = e.slice ? sliceView(e.slice) : this.slice(e.sliceUrn);
    return {
      sequence: e.sequence,
      time: ms(e.time) ?? Date.now(),
      state: stateFromWire(e.state) ?? 'unknown',
      site: e.site,
      nodeUrn: e.nodeUrn,
      sliverUrn: e.sliverUrn,
      code: codeName(e.status?.code),
      reason: e.status?.reason ?? '',
      message: e.message,
      ...(slice ? { slice } : {}),
    };
  }
}
