/**
 * What the management authority keeps in its LevelDB, one table per record
 * type. Changes that span records (a token redeemed and its node created; a
 * hold, its sliver records and the request id) are written in one batch.
 * Credentials and certificates are stored as they are, never logged.
 */
import type { Limits } from '../core/credentials/index.js';
import type { SliceUserRecord, SshEndpointInput } from '../core/identity/ssh-keys.js';

/** Table names. */
export const TABLES = {
  nodes: 'nodes',
  nodeHealth: 'node-health',
  tokens: 'enrol-tokens',
  tokenRequests: 'enrol-token-requests',
  providers: 'providers',
  providerRequests: 'provider-requests',
  delegations: 'delegations',
  revocationMeta: 'revocation-meta',
  slices: 'slices',
  slivers: 'slivers',
  allocations: 'allocate-requests',
  intents: 'intents',
} as const;

/** Amounts of node resources. */
export interface Resources {
  readonly cpuMillis: number;
  readonly memMb: number;
  readonly diskMb: number;
  readonly pids: number;
}

/** Zero of everything. */
export const ZERO: Resources = Object.freeze({ cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0 });

/** The resource fields, in the order messages name them. */
export const RESOURCE_FIELDS = [
  ['cpuMillis', 'cpu_millis'],
  ['memMb', 'mem_mb'],
  ['diskMb', 'disk_mb'],
  ['pids', 'pids'],
] as const;

/** `a + sign * b`, field by field. */
export function addResources(a: Resources, b: Resources, sign: 1 | -1 = 1): Resources {
  return {
    cpuMillis: a.cpuMillis + sign * b.cpuMillis,
    memMb: a.memMb + sign * b.memMb,
    diskMb: a.diskMb + sign * b.diskMb,
    pids: a.pids + sign * b.pids,
  };
}

/** What is free: capacity minus committed, never negative. */
export function freeOf(capacity: Resources, committed: Resources): Resources {
  return {
    cpuMillis: Math.max(0, capacity.cpuMillis - committed.cpuMillis),
    memMb: Math.max(0, capacity.memMb - committed.memMb),
    diskMb: Math.max(0, capacity.diskMb - committed.diskMb),
    pids: Math.max(0, capacity.pids - committed.pids),
  };
}

/** The first field where `want` exceeds `have`, with both amounts; undefined when it fits. */
export function shortfall(have: Resources, want: Resources): { field: string; have: number; want: number } | undefined {
  for (const [k, protoField] of RESOURCE_FIELDS) if (want[k] > have[k]) return { field: protoField, have: have[k], want: want[k] };
  return undefined;
}

/** Lenient reading of a protobuf ResourceSpec (absent fields are 0). */
export function resourcesOf(spec: { cpuMillis?: number; memMb?: number; diskMb?: number; pids?: number } | undefined): Resources {
  return { cpuMillis: spec?.cpuMillis ?? 0, memMb: spec?.memMb ?? 0, diskMb: spec?.diskMb ?? 0, pids: spec?.pids ?? 0 };
}

/** An enrolled node (table `nodes`, keyed by node URN). Written at enrolment; health lives apart. */
export interface NodeRecord {
  readonly urn: string;
  readonly ownerUrn: string;
  /** The owner → MA chain over this node (root first); the MA holds its leaf and shows it to the node manager. */
  readonly ownerChain: readonly string[];
  /** jti of every link of the owner chain (to refuse a node whose owner credential was revoked). */
  readonly ownerJtis: readonly string[];
  /** The owner chain's effective limits and expiry (ms). */
  readonly ownerLimits: Limits;
  readonly ownerChainExpiresAt: number;
  /** RFC 7638 thumbprint of the key certified at enrolment: heartbeats must come from it. */
  readonly keyThumbprint: string;
  readonly certificatePem: string;
  readonly enrolledAt: number;
  /** Values sent at enrolment (heartbeats update the live copies in `node-health`). */
  readonly endpoint: string;
  readonly capacity: Resources;
  readonly isolation: number;
  readonly version: string;
  readonly netemAvailable: boolean;
  /** Given whole to one slice at a time (every node of an emulab site). */
  readonly exclusive: boolean;
  /** The node's SSH endpoint as checked at enrolment (heartbeats update the live copy); absent: none. */
  readonly ssh?: SshEndpointInput;
  /** The node's underlay address as checked at enrolment (heartbeats update the live copy); absent: it takes no links. */
  readonly underlayAddress?: string;
  /** The most a link at the node may carry (kbit/s, its capacity's bandwidth); absent or 0: not reported. */
  readonly linkKbps?: number;
}

/** Health as last reported (table `node-health`, keyed by node URN), written in coalesced batches. */
export interface NodeHealthRecord {
  readonly up: boolean;
  /** MA clock time of the last heartbeat (ms); absent before the first. */
  readonly lastHeartbeatAt?: number;
  readonly sequence: number;
  readonly endpoint: string;
  readonly capacity: Resources;
  readonly allocated: Resources;
  readonly usage: Resources;
  readonly sliverCount: number;
  readonly version: string;
  /** Images the node offers (its last heartbeat's); absent in records written before nodes sent them. */
  readonly images?: readonly string[];
  /** The node's SSH endpoint (its last heartbeat's, checked); absent: it serves none. */
  readonly ssh?: SshEndpointInput;
  /** The node's underlay address (its last heartbeat's, checked); absent: it takes no links. */
  readonly underlayAddress?: string;
  /** Its capacity's bandwidth (kbit/s) as last reported; absent or 0: not reported. */
  readonly linkKbps?: number;
}

/** An enrolment token (table `enrol-tokens`, keyed by the SHA-256 of the token: the token itself is never stored). */
export interface TokenRecord {
  readonly nodeUrn: string;
  readonly ownerUrn: string;
  /** The owner's public JWK, when the owner made the token itself (its TLS certificate's key). */
  readonly ownerJwk?: Record<string, unknown>;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly usedAt?: number;
  readonly requestKey: string;
}

/** An idempotency entry of CreateEnrollmentToken (table `enrol-token-requests`). */
export interface TokenRequestRecord {
  readonly fingerprint: string;
  readonly tokenHash: string;
}

/** A registered service provider (table `providers`, keyed by URN). */
export interface ProviderRecord {
  readonly urn: string;
  readonly certificatePem: string;
  readonly keyThumbprint: string;
  readonly contact: string;
  readonly acceptedTermsDigest: string;
  readonly registeredAt: number;
  /** The provider's signed statement of acceptance (compact JWS), when it sent one. */
  readonly statement?: string;
}

/** An issued MA → SA credential (table `delegations`, keyed by `<caller> <request id>`). */
export interface DelegationRecord {
  readonly fingerprint: string;
  readonly sliceAuthorityUrn: string;
  readonly chain: readonly string[];
  readonly jti: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

/** A link of a slice's topology as requested (emulab). */
export interface LinkSpec {
  readonly name: string;
  /** Client ids of the endpoints. */
  readonly endpoints: readonly string[];
  readonly bandwidthKbps: number;
  readonly delayMs: number;
  readonly lossPercent: number;
  /** Index of the /24 the link's addresses come from (10.200.<subnet>.0/24, private to the slice's slivers). */
  readonly subnet: number;
  /**
   * The link's VXLAN network identifier, unique at this site while the slice holds nodes (written in the
   * Allocate or swap-in batch; gone with the slice, or at swap-out); absent while swapped out.
   */
  readonly vni?: number;
  /** Set on a link stitched to another site: its one endpoint here is `endpoints[0]`, its VNI agreed by the slice authority. */
  readonly stitch?: StitchRecord;
}

/** The far end of a stitched link (at another site), and this end's address. */
export interface StitchRecord {
  readonly peerSite: string;
  readonly peerClientId: string;
  /** This end's interface address (CIDR), chosen by the slice authority. */
  readonly address: string;
  /** Underlay address of the peer site's node, once a Provision gave it. */
  readonly peerUnderlay?: string;
}

/** A slice as this site knows it (table `slices`, keyed by slice URN). */
export interface SliceRecord {
  readonly urn: string;
  /** The slice authority that created it here: the MA → SA chain's subject and key. */
  readonly sliceAuthorityUrn: string;
  readonly sliceAuthorityJwk: Record<string, unknown>;
  readonly sliceAuthorityKid: string;
  readonly providerUrn: string;
  readonly createdAt: number;
  readonly links: readonly LinkSpec[];
  /** Format of the request document the slice used (manifests come back in it); empty when none. */
  readonly documentFormat: string;
  readonly swappedOut: boolean;
  readonly shutDown?: { readonly reason: string; readonly by: string; readonly at: number };
  /** The slice's users and their SSH keys (checked); absent in records written before users: none. */
  readonly users?: readonly SliceUserRecord[];
}

/** GENI operational states. */
export type Operational = 'pending' | 'notready' | 'configuring' | 'ready' | 'stopping' | 'stopped' | 'failed';

/** An interface of a sliver on a link (emulab), made by its node manager. */
export interface InterfaceRecord {
  readonly link: string;
  readonly name: string;
  readonly address: string;
  readonly bandwidthKbps: number;
  readonly delayMs: number;
  readonly lossPercent: number;
  /** Its MAC address (locally administered, from slice, link and endpoint); absent in records made before node links. */
  readonly mac?: string;
  /** What its node applied to its egress (CreateSliver's answer); absent: not reported. */
  readonly applied?: readonly string[];
}

/** A sliver (table `slivers`, keyed by sliver URN). */
export interface SliverRecord {
  readonly urn: string;
  /** URN name part (also the name on the node). */
  readonly name: string;
  readonly sliceUrn: string;
  readonly nodeUrn: string;
  readonly clientId: string;
  /** Whether the request named the node (swap-in must then get the same node back). */
  readonly explicitNode: boolean;
  readonly resources: Resources;
  /** The image asked for (`oci:<name>`); absent: `host`, the node's default. */
  readonly image?: string;
  readonly exclusive: boolean;
  /** GENI allocation state (unallocated: swapped out, the record kept for swap-in). */
  readonly allocation: 'allocated' | 'provisioned' | 'unallocated';
  /** Set while work on node managers is in flight (an intent names the sliver). */
  readonly phase?: 'provisioning' | 'deleting' | 'swapping-out';
  readonly operational: Operational;
  /** End of the allocation hold (ms) while allocated. */
  readonly holdExpiresAt?: number;
  /** Expiry once provisioned (requested while allocated, granted once provisioned) (ms). */
  readonly expiresAt: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly error: string;
  /** Bumped at every provisioning, so each CreateSliver on the node has a fresh request id. */
  readonly generation: number;
  /** Emulab, records made before node links: the sliver's network namespace on the site host (no longer made). */
  readonly netns?: string;
  readonly interfaces: readonly InterfaceRecord[];
  /** The Allocate request key that made it. */
  readonly requestKey: string;
  /** The SSH login name its node manager gave it (CreateSliver's answer); absent: none reported. */
  readonly sshUsername?: string;
}

/** An Allocate idempotency entry (table `allocate-requests`, keyed `<slice authority> <request id>`). */
export interface AllocateRequestRecord {
  readonly fingerprint: string;
  readonly sliceUrn: string;
  readonly sliverUrns: readonly string[];
  /** When it was made (ms); absent in records written before 2026-11-26 (treated as old). */
  readonly createdAt?: number;
}

/** Work spanning the MA and node managers, written before it starts (table `intents`, keyed by id). */
export interface IntentRecord {
  readonly id: string;
  /**
   * provision / swap-in: undone on restart (every named sliver is deleted on its node and goes back
   * to `revertTo`); delete / swap-out: finished on restart. users: the slice's users (as its record
   * has them now) still to be handed to the named slivers' nodes (UpdateSliverUsers); retried until done.
   */
  readonly kind: 'provision' | 'swap-in' | 'delete' | 'swap-out' | 'users';
  readonly sliceUrn: string;
  readonly items: readonly { readonly sliverUrn: string; readonly nodeUrn: string }[];
  readonly createdAt: number;
}
