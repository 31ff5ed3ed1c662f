/** Protobuf conversion: how the aggregate's records become protobuf messages, and node managers' states become records' (plus GENI state names in documents). */
import {
  AllocationState,
  OperationalState,
  SliverIsolation,
  type Link,
  type Sliver,
  type SliverInterface,
  type SliceUser,
  type SshLogin,
} from '../../generated/fedlab/v1/common.js';
import type { SliceUserRecord } from '../../core/identity/ssh-keys.js';
import { toSpec } from '../node-resources.js';
import type { LinkSpec, Operational, SliceRecord, SliverRecord } from '../records.js';
import { incarnationOf } from './slice-incarnation.js';

const OPERATIONAL: Record<Operational, OperationalState> = {
  pending: OperationalState.OPERATIONAL_STATE_PENDING,
  notready: OperationalState.OPERATIONAL_STATE_NOTREADY,
  configuring: OperationalState.OPERATIONAL_STATE_CONFIGURING,
  ready: OperationalState.OPERATIONAL_STATE_READY,
  stopping: OperationalState.OPERATIONAL_STATE_STOPPING,
  stopped: OperationalState.OPERATIONAL_STATE_STOPPED,
  failed: OperationalState.OPERATIONAL_STATE_FAILED,
};

const OPERATIONAL_FROM_WIRE = new Map<OperationalState, Operational>(Object.entries(OPERATIONAL).map(([k, v]) => [v, k as Operational]));

/** The operational state a node manager reported (protobuf), in the aggregate's terms. */
export function operationalFromWire(state: OperationalState | undefined, fallback: Operational): Operational {
  return (state !== undefined && OPERATIONAL_FROM_WIRE.get(state)) || fallback;
}

/** GENI AM API v3 names of allocation states (documents). */
export const GENI_ALLOCATION = { allocated: 'geni_allocated', provisioned: 'geni_provisioned', unallocated: 'geni_unallocated' } as const;

/** GENI AM API v3 names of operational states (documents). */
export const GENI_OPERATIONAL: Record<Operational, string> = {
  pending: 'geni_pending_allocation',
  notready: 'geni_notready',
  configuring: 'geni_configuring',
  ready: 'geni_ready',
  stopping: 'geni_stopping',
  stopped: 'geni_stopped',
  failed: 'geni_failed',
};

/** The protobuf form of a sliver record (`ssh`: how to log in to it, when its node serves SSH). */
export function sliverToWire(
  s: SliverRecord,
  slice: SliceRecord | undefined,
  aggregateUrn: string,
  isolation: SliverIsolation,
  ssh?: SshLogin,
): Sliver {
  const unallocated = s.allocation === 'unallocated';
  return {
    urn: s.urn,
    sliceUrn: s.sliceUrn,
    nodeUrn: unallocated ? '' : s.nodeUrn,
    aggregateUrn,
    clientId: s.clientId,
    resources: toSpec(s.resources, 0, s.image),
    allocationState:
      s.allocation === 'allocated'
        ? AllocationState.ALLOCATION_STATE_ALLOCATED
        : s.allocation === 'provisioned'
          ? AllocationState.ALLOCATION_STATE_PROVISIONED
          : AllocationState.ALLOCATION_STATE_UNALLOCATED,
    operationalState: unallocated ? OperationalState.OPERATIONAL_STATE_UNSPECIFIED : OPERATIONAL[s.operational],
    isolation: unallocated ? SliverIsolation.SLIVER_ISOLATION_UNSPECIFIED : isolation,
    exclusive: s.exclusive,
    interfaces: s.interfaces.map((i): SliverInterface => {
      const link = slice?.links.find((l) => l.name === i.link);
      const vni = link?.vni;
      // A stitched link's far end is at another site: its node's underlay address is shown (the only one there is).
      const remoteUnderlays = link?.stitch?.peerUnderlay ? [link.stitch.peerUnderlay] : [];
      return {
        link: i.link,
        name: i.name,
        address: i.address,
        bandwidthKbps: i.bandwidthKbps,
        delayMs: i.delayMs,
        lossPercent: i.lossPercent,
        ...(i.mac ? { wiring: { mac: i.mac, vni: vni ?? 0, remoteUnderlays, applied: [...(i.applied ?? [])] } } : {}),
      };
    }),
    createdAt: new Date(s.createdAt),
    updatedAt: new Date(s.updatedAt),
    expiresAt: new Date(s.allocation === 'allocated' && s.holdExpiresAt !== undefined ? s.holdExpiresAt : s.expiresAt),
    error: s.error,
    sliceAuthorityUrn: slice?.sliceAuthorityUrn ?? '',
    providerUrn: slice?.providerUrn ?? '',
    workDir: '',
    sliceIncarnation: incarnationOf(slice),
    ...(ssh && s.allocation === 'provisioned' ? { ssh } : {}),
  };
}

/** The protobuf form of a sliver that is gone, as results report it. */
export function goneSliverToWire(urn: string, sliceUrn: string, aggregateUrn: string): Sliver {
  return {
    urn,
    sliceUrn,
    nodeUrn: '',
    aggregateUrn,
    clientId: '',
    allocationState: AllocationState.ALLOCATION_STATE_UNALLOCATED,
    operationalState: OperationalState.OPERATIONAL_STATE_UNSPECIFIED,
    isolation: SliverIsolation.SLIVER_ISOLATION_UNSPECIFIED,
    exclusive: false,
    interfaces: [],
    error: '',
    sliceAuthorityUrn: '',
    providerUrn: '',
    workDir: '',
  };
}

/** The protobuf form of a slice's users (none for a slice recorded before users). */
export function usersToWire(users: readonly SliceUserRecord[] | undefined): SliceUser[] {
  return (users ?? []).map((u) => ({ urn: u.urn, sshKeys: [...u.sshKeys] }));
}

/** The protobuf form of a slice's links. */
export function linksToWire(links: readonly LinkSpec[]): Link[] {
  return links.map((l) => ({
    name: l.name,
    endpoints: [...l.endpoints],
    bandwidthKbps: l.bandwidthKbps,
    delayMs: l.delayMs,
    lossPercent: l.lossPercent,
  }));
}

/** A `fedlab-rspec+json` manifest of a slice's slivers at this site, with GENI state names. */
export function manifestDocument(slice: SliceRecord, slivers: readonly SliverRecord[], aggregateUrn: string): string {
  return JSON.stringify({
    type: 'manifest',
    aggregate: aggregateUrn,
    slice: slice.urn,
    swapped_out: slice.swappedOut,
    nodes: slivers.map((s) => ({
      client_id: s.clientId,
      component_id: s.allocation === 'unallocated' ? null : s.nodeUrn,
      sliver_id: s.urn,
      exclusive: s.exclusive,
      resources: {
        cpu_millis: s.resources.cpuMillis,
        mem_mb: s.resources.memMb,
        disk_mb: s.resources.diskMb,
        pids: s.resources.pids,
        ...(s.image ? { image: s.image } : {}),
      },
      allocation_state: GENI_ALLOCATION[s.allocation],
      operational_state:
        s.allocation === 'unallocated' ? null : s.allocation === 'allocated' ? GENI_OPERATIONAL.pending : GENI_OPERATIONAL[s.operational],
      expires: new Date(s.allocation === 'allocated' && s.holdExpiresAt !== undefined ? s.holdExpiresAt : s.expiresAt).toISOString(),
      interfaces: s.interfaces.map((i) => ({
        link: i.link,
        name: i.name,
        address: i.address,
        ...(i.mac ? { mac: i.mac } : {}),
        ...(i.applied ? { applied: i.applied } : {}),
      })),
      ...(s.error ? { error: s.error } : {}),
    })),
    links: slice.links.map((l) => ({
      name: l.name,
      endpoints: l.endpoints,
      bandwidth_kbps: l.bandwidthKbps,
      delay_ms: l.delayMs,
      loss_percent: l.lossPercent,
      ...(l.vni !== undefined ? { vni: l.vni } : {}),
    })),
  });
}
