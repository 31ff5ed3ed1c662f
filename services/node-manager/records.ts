/**
 * What the node manager keeps in its LevelDB, and how records become the
 * wire's `Sliver`. The store is the truth: every state change is written
 * before (or, for teardown, after) the driver acts, so a restart can tell what
 * should be running from what is.
 */
import type { SliceUserRecord } from '../core/identity/ssh-keys.js';
import {
  AllocationState,
  OperationalState,
  SliverIsolation,
  type ResourceSpec,
  type Sliver,
  type SshEndpoint,
  type SliverInterface,
} from '../generated/fedlab/v1/common.js';
import type { DriverKind, RuntimeRef, SliverResources } from './drivers/driver.js';
import type { IdRange } from './runtime/id-ranges.js';
import type { SliverLease } from './network/network-plan.js';

/** Allocation states a record can have (an UNALLOCATED sliver has no record). */
export type Allocation = 'allocated' | 'provisioned';

/** Operational states (docs/design.md §2). */
export type Operational = 'pending' | 'notready' | 'configuring' | 'ready' | 'stopping' | 'stopped' | 'failed';

/** One sliver as stored (table `slivers`, keyed by sliver URN). */
export interface SliverRecord {
  readonly urn: string;
  /** URN name part: the sliver's name on disk and in the kernel. */
  readonly name: string;
  readonly sliceUrn: string;
  readonly sliceAuthorityUrn: string;
  /** The slice authority's public JWK (JSON object): the trust root of the slice's credentials here. */
  readonly sliceAuthorityJwk: Record<string, unknown>;
  /** The slice's incarnation (CreateSliver's slice_incarnation); absent on slivers made before incarnations. */
  readonly sliceIncarnation?: string;
  readonly providerUrn: string;
  readonly clientId: string;
  readonly resources: SliverResources;
  readonly exclusive: boolean;
  readonly interfaces: readonly SliverInterface[];
  readonly allocation: Allocation;
  readonly operational: Operational;
  /** Whether the sliver should be running: what a restart restores. */
  readonly wantRunning: boolean;
  readonly driver: DriverKind;
  /** Container driver: its user namespace's id range (held while the record exists). */
  readonly ids?: IdRange;
  /** The image (`host` or `oci:<name>`); `host` when absent. */
  readonly image?: string;
  /** A container sliver on a node with a sliver network: eth0's address and its forwarded ports (held with `ids`). */
  readonly network?: SliverLease;
  readonly runtime?: RuntimeRef;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number;
  /** Why the sliver failed (or the last error); empty otherwise. */
  readonly error: string;
  /** Set while the sliver is being deleted: a restart finishes the deletion instead of reviving it. */
  readonly deleting?: boolean;
  /** Who may log in with SSH (checked and normalised); absent on records made before SSH: nobody. */
  readonly users?: readonly SliceUserRecord[];
  /** The SSH login name (the slice's name, `-2`, `-3`… on a clash); absent on records made before SSH until the next start. */
  readonly login?: string;
  /** The request id, its caller and fingerprint of the create that made it (idempotency is per caller). */
  readonly requestId: string;
  readonly requestCaller: string;
  readonly requestFingerprint: string;
}

/** Idempotency entry (table `requests`, keyed by request id). */
export interface RequestRecord {
  readonly sliverUrn: string;
  readonly fingerprint: string;
  readonly caller: string;
}

/** Sum of resources committed to slivers, kept in the same batches as the records (table `meta`, key `committed`). */
export interface Committed {
  readonly cpuMillis: number;
  readonly memMb: number;
  readonly diskMb: number;
  readonly pids: number;
  readonly slivers: number;
}

export const ZERO_COMMITTED: Committed = { cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0, slivers: 0 };

/** Adds (sign 1) or removes (sign -1) one sliver's resources. */
export function addCommitted(c: Committed, r: SliverResources, sign: 1 | -1): Committed {
  return {
    cpuMillis: c.cpuMillis + sign * r.cpuMillis,
    memMb: c.memMb + sign * r.memMb,
    diskMb: c.diskMb + sign * r.diskMb,
    pids: c.pids + sign * r.pids,
    slivers: c.slivers + sign,
  };
}

const OPERATIONAL: Record<Operational, OperationalState> = {
  pending: OperationalState.OPERATIONAL_STATE_PENDING,
  notready: OperationalState.OPERATIONAL_STATE_NOTREADY,
  configuring: OperationalState.OPERATIONAL_STATE_CONFIGURING,
  ready: OperationalState.OPERATIONAL_STATE_READY,
  stopping: OperationalState.OPERATIONAL_STATE_STOPPING,
  stopped: OperationalState.OPERATIONAL_STATE_STOPPED,
  failed: OperationalState.OPERATIONAL_STATE_FAILED,
};

/** The wire isolation label of a driver. */
export function isolationOf(driver: DriverKind): SliverIsolation {
  switch (driver) {
    case 'container':
      return SliverIsolation.SLIVER_ISOLATION_CONTAINER;
    case 'process':
      return SliverIsolation.SLIVER_ISOLATION_PROCESS;
    case 'simulated':
      return SliverIsolation.SLIVER_ISOLATION_SIMULATED;
  }
}

/** Wire form of resources. */
export function toResourceSpec(r: SliverResources | Committed): ResourceSpec {
  return {
    cpuMillis: r.cpuMillis,
    memMb: r.memMb,
    diskMb: r.diskMb,
    pids: r.pids,
    bandwidthKbps: 'bandwidthKbps' in r ? r.bandwidthKbps : 0,
  };
}

/** The wire form of a record (or of a deleted sliver's last record, with `unallocated`). */
export function toSliver(
  rec: SliverRecord,
  nodeUrn: string,
  aggregateUrn: string,
  workDir: string | undefined,
  unallocated = false,
  ssh?: SshEndpoint,
): Sliver {
  return {
    urn: rec.urn,
    sliceUrn: rec.sliceUrn,
    nodeUrn: unallocated ? '' : nodeUrn,
    aggregateUrn,
    clientId: rec.clientId,
    resources: { ...toResourceSpec(rec.resources), image: rec.image ?? 'host' },
    allocationState: unallocated
      ? AllocationState.ALLOCATION_STATE_UNALLOCATED
      : rec.allocation === 'allocated'
        ? AllocationState.ALLOCATION_STATE_ALLOCATED
        : AllocationState.ALLOCATION_STATE_PROVISIONED,
    operationalState: OPERATIONAL[rec.operational],
    isolation: isolationOf(rec.driver),
    exclusive: rec.exclusive,
    interfaces: [...rec.interfaces],
    createdAt: new Date(rec.createdAt),
    updatedAt: new Date(rec.updatedAt),
    expiresAt: new Date(rec.expiresAt),
    error: rec.error,
    sliceAuthorityUrn: rec.sliceAuthorityUrn,
    providerUrn: rec.providerUrn,
    ...(rec.sliceIncarnation !== undefined ? { sliceIncarnation: rec.sliceIncarnation } : {}),
    workDir: rec.allocation === 'provisioned' && !unallocated ? (workDir ?? '') : '',
    ...(ssh && rec.login && !unallocated ? { ssh: { username: rec.login, endpoint: ssh } } : {}),
    ...(rec.network && !unallocated
      ? {
          network: {
            address: `${rec.network.address}/${rec.network.prefix}`,
            gateway: rec.network.gateway,
            nodeAddress: rec.network.nodeAddress,
            firstPort: rec.network.firstPort,
            lastPort: rec.network.lastPort,
          },
        }
      : {}),
  };
}
