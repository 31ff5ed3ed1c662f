/**
 * Who may do what on this node. Node-level calls need a credential chain
 * rooted at the node owner's key that grants the call's privilege on this
 * node; calls on one sliver also accept a chain rooted at the slice authority
 * that created its slice (the key CreateSliver brought), granting the
 * privilege on the slice. The chain checks themselves are the credentials
 * module's; this is the node manager's view of their result.
 */
import type { CallContext } from '../core/rpc/context.js';

/** docs/design.md §5 privileges the node manager checks, one per call. */
export type NmPrivilege =
  'node.read' | 'sliver.create' | 'sliver.delete' | 'sliver.renew' | 'sliver.control' | 'sliver.exec' | 'sliver.read';

/** The `lim` of an effective grant, in the claim's own names. */
export interface GrantLimits {
  readonly slivers?: number;
  readonly cpu_millis?: number;
  readonly mem_mb?: number;
  readonly disk_mb?: number;
  readonly ttl_s?: number;
}

/** What a verified chain lets its holder do. */
export interface Grant {
  /** Which trust root the chain has: the node's owner, or the slice's authority. */
  readonly root: 'owner' | 'slice_authority';
  /** URN of the holder (the caller). */
  readonly holder: string;
  readonly limits: GrantLimits;
  /** When the chain stops being valid (ms since the epoch): nothing it allows may last longer. */
  readonly expiresAt: number;
}

/** The slice a sliver belongs to and its trust root, as CreateSliver recorded them. */
export interface SliceTrust {
  readonly sliceUrn: string;
  readonly sliceAuthorityUrn: string;
  readonly sliceAuthorityJwk: Record<string, unknown>;
  /**
   * The slice's incarnation as CreateSliver recorded it (undefined: a sliver made before incarnations).
   * A chain rooted at the slice authority must be bound to exactly it (claim `inc`).
   */
  readonly sliceIncarnation: string | undefined;
}

/** Authorisation of node manager calls. */
export interface Authorizer {
  /** Needs a chain rooted at the node owner granting `privilege` on the node. */
  node(ctx: CallContext, privilege: NmPrivilege): Promise<Grant>;
  /** Accepts a chain rooted at the owner (on the node) or at the slice's authority (on the slice). */
  slice(ctx: CallContext, privilege: NmPrivilege, slice: SliceTrust): Promise<Grant>;
  /**
   * Like {@link node}, for a call on a sliver that only the owner's chain may make: a chain rooted at
   * any authority other than the owner (a slice authority's) is refused as PERMISSION_DENIED, alike
   * whether or not the sliver exists here, so the answer tells nothing of it.
   */
  ownerOnly(ctx: CallContext, privilege: NmPrivilege, what: string): Promise<Grant>;
}
