/**
 * What a role shows on the federation dashboard: plain view objects that the
 * shared server (this folder) renders, so the pages never reach into a
 * role's records. Each role implements {@link DashboardSource} in its own
 * folder (`dashboard-source.ts` there). Every string in a view may come from
 * a sliver, a node or a peer: the pages escape all of them.
 */

/** Resources as the dashboard shows them (absent: not known). */
export interface ResourceView {
  readonly cpuMillis: number;
  readonly memMb: number;
  readonly diskMb: number;
  readonly pids: number;
  /** Slivers (a count); on a capacity, the cap the owner's chain sets, when it sets one. */
  readonly slivers?: number;
}

/** A site as this service knows it: the MA its own; the SA every site it creates slices at. */
export interface SiteView {
  readonly domain: string;
  /** The site's aggregate (its management authority). */
  readonly aggregateUrn: string;
  /** planetlab, emulab or protogeni, when known. */
  readonly style?: string;
  /** host:port the service dials, when it dials one. */
  readonly endpoint?: string;
  /** One short line more (node counts, chain expiry…). */
  readonly note?: string;
}

/** A node of the site (MA). */
export interface NodeView {
  readonly urn: string;
  readonly owner: string;
  readonly health: 'up' | 'down' | 'unknown';
  /** ms since the epoch; absent before the first heartbeat. */
  readonly lastHeartbeatAt?: number;
  readonly missedHeartbeats: number;
  readonly endpoint: string;
  readonly version: string;
  readonly isolation: string;
  readonly images: readonly string[];
  readonly capacity: ResourceView;
  /** What slices hold or use on it (holds and provisioned slivers). */
  readonly allocated: ResourceView;
}

/** A sliver of a slice. */
export interface SliverView {
  readonly urn: string;
  readonly site: string;
  readonly nodeUrn: string;
  /** allocated, provisioned, unallocated. */
  readonly allocation: string;
  /** pending, ready, failed… */
  readonly operational: string;
  /** Why it failed (or its last error); empty otherwise. */
  readonly error: string;
  readonly expiresAt?: number;
}

/** A slice's part at one site. */
export interface SliceSiteView {
  readonly site: string;
  readonly aggregateUrn: string;
  /** The site's outcome: a gRPC status name (OK, UNAVAILABLE…). */
  readonly code: string;
  /** Why it failed, or what is going on; empty when all is well. */
  readonly reason: string;
  readonly expiresAt?: number;
}

/** A slice in a list. */
export interface SliceSummaryView {
  readonly urn: string;
  readonly provider: string;
  readonly state: string;
  readonly createdAt?: number;
  readonly updatedAt?: number;
  readonly expiresAt?: number;
  readonly sites: number;
  readonly slivers: number;
  /** Slivers that failed. */
  readonly failed: number;
}

/** A slice with its sites and slivers. */
export interface SliceView extends SliceSummaryView {
  readonly description: string;
  readonly siteParts: readonly SliceSiteView[];
  readonly sliverList: readonly SliverView[];
}

/** One progress event of a slice (from WatchSlice), with the slice as it is after it. */
export interface SliceEventView {
  readonly sequence: number;
  readonly time: number;
  readonly state: string;
  readonly site: string;
  readonly nodeUrn: string;
  readonly sliverUrn: string;
  readonly code: string;
  readonly reason: string;
  readonly message: string;
  readonly slice?: SliceView;
}

/** A principal asking to see the dashboard, as its verified client certificate names it. */
export interface DashboardPeer {
  readonly urn: string;
  /** RFC 7638 thumbprint of its key. */
  readonly thumbprint: string;
}

/** A role's data for the dashboard. */
export interface DashboardSource {
  /** The role as the page title names it, e.g. `management authority`. */
  readonly role: string;
  /**
   * Why `peer` may not see the dashboard, or undefined when it may: only the role's administrators
   * (`admins` in its config) may, and not with a revoked key.
   */
  refusal(peer: DashboardPeer): string | undefined;
  /** The sites this service knows. */
  sites(): readonly SiteView[];
  /** The site's nodes (management authorities only). */
  nodes?(): readonly NodeView[];
  /** Slices, at most `limit`, the most recently changed first; `total` counts them all. */
  slices(limit: number): { readonly slices: readonly SliceSummaryView[]; readonly total: number };
  /** One slice, or undefined when this service has none by that URN. */
  slice(urn: string): SliceView | undefined;
  /**
   * The slice's events as they happen (first a snapshot), until the slice is deleted or expired or
   * `signal` aborts. Absent: the slice page is not live (the MA has no WatchSlice).
   */
  watch?(urn: string, afterSequence: number, signal: AbortSignal): AsyncIterable<SliceEventView>;
}
