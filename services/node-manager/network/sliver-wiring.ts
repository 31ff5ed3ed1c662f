/**
 * The seam where a sliver's interfaces are made: after the sliver's network
 * namespace exists and before the sliver starts, every {@link SliverWirer}
 * wires its interfaces into the namespace (eth0 on the node's bridge now;
 * link interfaces later); on delete each removes them before the namespace
 * goes; at start each sweeps away what no live sliver explains. A wirer is
 * idempotent: wiring a wired sliver checks and repairs, unwiring an unwired
 * one does nothing.
 */
import type { IdRange } from '../runtime/id-ranges.js';
import type { NetCommands } from './net-command.js';
import type { NetworkPlan, SliverLease } from './network-plan.js';

/** What the network knows of a sliver. */
export interface NetworkSliver {
  readonly name: string;
  readonly urn: string;
  readonly sliceUrn: string;
  /** The id range: its slot is the sliver's lease (network-plan.ts). */
  readonly ids?: IdRange;
}

/** Everything a wirer needs about one sliver. */
export interface WiringContext {
  readonly sliver: NetworkSliver;
  /** The sliver's named network namespace (`ip -n <netns>`, `ip netns exec <netns>`). */
  readonly netns: string;
  readonly lease: SliverLease;
  readonly plan: NetworkPlan;
  readonly run: NetCommands;
}

/** What a wirer needs to remove one sliver's interfaces (the record may be gone: only the name is sure). */
export interface UnwiringContext {
  readonly name: string;
  readonly netns: string;
  readonly run: NetCommands;
}

/** Makes and removes one kind of a sliver's interfaces. */
export interface SliverWirer {
  /** Shown in errors and logs. */
  readonly kind: string;
  /** Makes (or checks and repairs) this kind's interfaces of the sliver. Idempotent. */
  wire(ctx: WiringContext): Promise<void>;
  /** Removes them and any node-side state of theirs (devices, rules). Idempotent. */
  unwire(ctx: UnwiringContext): Promise<void>;
  /** Names of slivers this wirer has anything of on the node (host-side devices, rules). */
  list(): Promise<string[]>;
}
