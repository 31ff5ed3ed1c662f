/**
 * What `fedlab federation check` knows of a federation: the slice
 * authority's books (its slices, the slivers each lists per site, its
 * unfinished work), each site's books (the slices and slivers its management
 * authority holds, its unfinished work, its nodes) and what each node really
 * runs. Plain data, read by check-read.ts, judged by check-analysis.ts.
 */

/** A sliver a book claims: it holds capacity (allocated) or runs on a node (provisioned). */
export interface ClaimedSliver {
  readonly urn: string;
  readonly sliceUrn: string;
  readonly nodeUrn: string;
  readonly allocation: 'allocated' | 'provisioned';
  /** When the hold (allocated) or the sliver (provisioned) expires (ms), when known. */
  readonly expiresAt?: number;
}

/** A slice as the slice authority keeps it. */
export interface SaSlice {
  readonly urn: string;
  readonly state: string;
  readonly updatedAt: number;
  /** Per site (domain): the slivers the slice authority lists there, allocated or provisioned. */
  readonly sites: ReadonlyMap<string, readonly ClaimedSliver[]>;
}

/** Work the slice authority has begun and not finished (an intent). */
export interface SaWork {
  readonly kind: string;
  readonly sliceUrn: string;
  readonly sites: readonly string[];
  readonly since: number;
}

/** The slice authority's books. */
export interface SaView {
  readonly urn: string;
  readonly slices: ReadonlyMap<string, SaSlice>;
  readonly work: readonly SaWork[];
}

/** A sliver record of a site, with what it holds. */
export interface SiteSliver extends ClaimedSliver {
  /** Set while work on the node is in flight. */
  readonly phase?: string;
  readonly cpuMillis: number;
  readonly memMb: number;
}

/** Work a site has begun on its nodes and not finished (an intent). */
export interface SiteWork {
  readonly kind: string;
  readonly sliceUrn: string;
  readonly sliverUrns: readonly string[];
  readonly since: number;
}

/** A node of a site and what it runs (when it could be asked). */
export interface NodeView {
  readonly urn: string;
  readonly endpoint: string;
  readonly up: boolean;
  /** The slivers the node manager has; undefined when it was not asked or did not answer. */
  readonly slivers?: readonly { readonly urn: string; readonly sliceUrn: string; readonly expiresAt?: number }[];
  /** Why the node's slivers are unknown. */
  readonly error?: string;
}

/** One site's books and nodes, or why they could not be read. */
export type SiteView =
  | {
      readonly domain: string;
      readonly ok: true;
      /** Slice URN → the slice authority that created it here. */
      readonly slices: ReadonlyMap<string, string>;
      /** Slivers that hold capacity (allocated or provisioned), by URN. */
      readonly slivers: ReadonlyMap<string, SiteSliver>;
      readonly work: readonly SiteWork[];
      readonly nodes: readonly NodeView[];
      /** Whether the nodes were asked (a chain to ask them with was given). */
      readonly nodesChecked: boolean;
    }
  | { readonly domain: string; readonly ok: false; readonly error: string };

/** Everything read in one pass. */
export interface FederationView {
  readonly sa: SaView;
  readonly sites: readonly SiteView[];
  /** When the reading began (ms). */
  readonly readAt: number;
}
