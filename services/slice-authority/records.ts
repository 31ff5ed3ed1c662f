/**
 * What the slice authority keeps in its LevelDB: slices (with their per-site
 * parts and slivers), request ids (per provider), intents of work that spans
 * sites, and issued slice credentials (for request id idempotency). Times are
 * milliseconds since the epoch; wire messages inside records are stored in
 * their proto JSON form and read back with the generated `fromJSON`.
 */
import { ResourceRequest, SliceMode, Sliver, type ResultStatus, type SliceUser } from '../generated/fedlab/v1/common.js';
import { SliceState, type Slice, type SliceSite } from '../generated/fedlab/v1/slice_authority.js';
import type { SliceUserRecord } from '../core/identity/ssh-keys.js';

/** Table names. */
export const TABLES = { slices: 'sa-slices', requests: 'sa-requests', intents: 'sa-intents', credentials: 'sa-credentials' } as const;

/** Lifecycle states (SliceState). */
export type StateName = 'pending' | 'ready' | 'partial' | 'failed' | 'deleting' | 'deleted' | 'expired';

/** States in which a slice counts against quotas and may hold slivers. */
export const LIVE: ReadonlySet<StateName> = new Set(['pending', 'ready', 'partial', 'deleting']);
/** States after which nothing changes any more (but a rename by a new request). */
export const ENDED: ReadonlySet<StateName> = new Set(['failed', 'deleted', 'expired']);
/** Stable states (WatchSlice without follow ends at one). */
export const STABLE: ReadonlySet<StateName> = new Set(['ready', 'partial', 'failed', 'deleted', 'expired']);

/** Resources counted against a provider's quotas. */
export interface Use {
  readonly slivers: number;
  readonly cpuMillis: number;
  readonly memMb: number;
  readonly diskMb: number;
}

/** Nothing used. */
export const NO_USE: Use = Object.freeze({ slivers: 0, cpuMillis: 0, memMb: 0, diskMb: 0 });

/** Sum of two uses. */
export function addUse(a: Use, b: Use): Use {
  return { slivers: a.slivers + b.slivers, cpuMillis: a.cpuMillis + b.cpuMillis, memMb: a.memMb + b.memMb, diskMb: a.diskMb + b.diskMb };
}

/** A slice's part at one site. */
export interface SiteRecord {
  readonly site: string;
  readonly aggregateUrn: string;
  readonly style: number;
  /** ResourceRequest in proto JSON. */
  readonly request: unknown;
  readonly code: number;
  readonly reason: string;
  readonly manifest: string;
  readonly swappedOut: boolean;
  readonly expiresAt?: number;
  /** Slivers in proto JSON. */
  readonly slivers: readonly unknown[];
  /** What the request counts against quotas. */
  readonly use: Use;
  /** The site's own outcome while a cleanup note (an unfinished Delete) is added to its status. */
  readonly cause?: { readonly code: number; readonly reason: string };
}

/** A slice. */
export interface SliceRecord {
  readonly urn: string;
  readonly name: string;
  readonly providerUrn: string;
  readonly description: string;
  readonly mode: 'all_or_nothing' | 'best_effort';
  readonly state: StateName;
  readonly start: boolean;
  readonly requestId: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number;
  /** Last event sequence number given out. */
  readonly seq: number;
  readonly sites: readonly SiteRecord[];
  /**
   * This life of the slice: 128 random bits (base64url) minted at CreateSlice. Its credentials (claim
   * `inc`) and its slivers are bound to it, so a later slice of the same name is out of their reach.
   * Absent on slices created before incarnations (their credentials carry none, as before).
   */
  readonly incarnation?: string;
  /**
   * Users who may log in to the slice's slivers with SSH, checked and normalised (sorted by URN).
   * Absent on slices recorded before users (read as none).
   */
  readonly users?: readonly SliceUserRecord[];
}

/** A request id seen from a provider. */
export interface RequestRecord {
  readonly sliceUrn: string;
  readonly fingerprint: string;
  readonly createdAt: number;
}

/**
 * Work that spans sites, written before it starts. `create`: the slice's
 * sites are being asked (a restart rolls it back: Delete at every site).
 * `delete`: the slice must be deleted at `sites`; when none is left the
 * slice becomes `final`. `users`: the slice's users (as the slice record has
 * them now) must still be handed to `sites` (UpdateSliceUsers).
 */
export interface IntentRecord {
  readonly id: string;
  readonly kind: 'create' | 'delete' | 'users';
  readonly sliceUrn: string;
  readonly sites: readonly string[];
  readonly final?: 'deleted' | 'expired' | 'failed';
  readonly createdAt: number;
}

/** An issued slice credential, kept for request id idempotency. */
export interface CredentialRecord {
  readonly fingerprint: string;
  readonly chain: readonly string[];
  readonly jti: string;
  readonly expiresAt: number;
  readonly sliceUrn: string;
}

const STATE_WIRE: Record<StateName, SliceState> = {
  pending: SliceState.SLICE_STATE_PENDING,
  ready: SliceState.SLICE_STATE_READY,
  partial: SliceState.SLICE_STATE_PARTIAL,
  failed: SliceState.SLICE_STATE_FAILED,
  deleting: SliceState.SLICE_STATE_DELETING,
  deleted: SliceState.SLICE_STATE_DELETED,
  expired: SliceState.SLICE_STATE_EXPIRED,
};

/** The wire state of a state name. */
export function stateToWire(s: StateName): SliceState {
  return STATE_WIRE[s];
}

/** The state name of a wire state (undefined for UNSPECIFIED or unknown). */
export function stateFromWire(s: SliceState): StateName | undefined {
  return (Object.keys(STATE_WIRE) as StateName[]).find((k) => STATE_WIRE[k] === s);
}

/** A site's slivers as wire messages. */
export function sliversOf(site: SiteRecord): Sliver[] {
  return site.slivers.map((s) => Sliver.fromJSON(s));
}

/** Slivers as stored. */
export function storeSlivers(slivers: readonly Sliver[]): unknown[] {
  return slivers.map((s) => Sliver.toJSON(s));
}

/** A slice's users as wire messages (none for a slice recorded before users). */
export function usersOf(r: Pick<SliceRecord, 'users'>): SliceUser[] {
  return (r.users ?? []).map((u) => ({ urn: u.urn, sshKeys: [...u.sshKeys] }));
}

/** The wire form of a slice. */
export function sliceToWire(r: SliceRecord): Slice {
  const sites: SliceSite[] = r.sites.map((s) => {
    const status: ResultStatus = { code: s.code, reason: s.reason };
    return {
      site: s.site,
      aggregateUrn: s.aggregateUrn,
      style: s.style,
      request: ResourceRequest.fromJSON(s.request),
      status,
      manifestDocument: s.manifest,
      swappedOut: s.swappedOut,
      ...(s.expiresAt !== undefined ? { expiresAt: new Date(s.expiresAt) } : {}),
    };
  });
  return {
    users: usersOf(r),
    urn: r.urn,
    providerUrn: r.providerUrn,
    description: r.description,
    mode: r.mode === 'best_effort' ? SliceMode.SLICE_MODE_BEST_EFFORT : SliceMode.SLICE_MODE_ALL_OR_NOTHING,
    state: stateToWire(r.state),
    sites,
    slivers: r.sites.flatMap((s) => sliversOf(s)),
    createdAt: new Date(r.createdAt),
    updatedAt: new Date(r.updatedAt),
    expiresAt: new Date(r.expiresAt),
    requestId: r.requestId,
    ...(r.incarnation !== undefined ? { incarnation: r.incarnation } : {}),
  };
}
