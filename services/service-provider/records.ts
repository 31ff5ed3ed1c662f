/**
 * What the service provider keeps in its LevelDB, one table per record type:
 * site registrations, deployments (their spec, the intent `desired`, and each
 * sliver's supervision state), deploy request ids, slice credentials, members,
 * member delegations, and the member intents (changes of a slice's users at the
 * slice authority, and member removals) that are carried out until they are done.
 */

/** Table names. */
export const TABLES = {
  registrations: 'registrations',
  deployments: 'deployments',
  deployRequests: 'deploy-requests',
  sliceCredentials: 'slice-credentials',
  members: 'members',
  memberRequests: 'member-requests',
  delegations: 'member-delegations',
  memberIntents: 'member-intents',
} as const;

/** A site registration's state. */
export interface RegistrationRecord {
  readonly domain: string;
  readonly maUrn: string;
  /** registered | failed | pending */
  readonly state: 'pending' | 'registered' | 'failed';
  readonly termsDigest?: string;
  readonly registeredAt?: number;
  readonly lastAttemptAt?: number;
  readonly lastError?: string;
  readonly attempts: number;
}

/** Service state of one sliver (mirrors the wire enum's names). */
export type ServiceStateName = 'unspecified' | 'starting' | 'running' | 'backoff' | 'exited' | 'failed' | 'stopped';

/** One sliver of a deployment. */
export interface TargetRecord {
  readonly sliverUrn: string;
  readonly nodeUrn: string;
  readonly site: string;
  /** host:port of the node manager ('' while unknown). */
  readonly endpoint: string;
  readonly stepsDone: number;
  readonly code: number;
  readonly reason: string;
  readonly service: ServiceStateName;
  readonly restarts: number;
  readonly lastOutput: readonly string[];
  readonly lastExit: string;
  readonly nextRestartAt?: number;
}

/** Deployment states (mirror the wire enum's names). */
export type DeploymentStateName = 'pending' | 'creating_slice' | 'running_steps' | 'ready' | 'partial' | 'failed' | 'deleting' | 'deleted';

/** Deployment states after which a deployment waits for nothing (Deploy's stream ends at one). */
export const STABLE_STATES: ReadonlySet<DeploymentStateName> = new Set(['ready', 'partial', 'failed', 'deleted']);

/** Service states in which a sliver counts as settled for its deployment's READY / PARTIAL / FAILED. */
export const SETTLED_SERVICES: ReadonlySet<ServiceStateName> = new Set(['running', 'exited', 'failed', 'stopped', 'backoff']);

/** A deployment step as stored. */
export interface StepRecord {
  readonly name: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** base64 of stdin, when given. */
  readonly stdin?: string;
  readonly timeoutMs: number;
  readonly service: boolean;
}

/** A slice request as stored (the SA's wire SiteRequest, as JSON of the generated type). */
export interface SpecRecord {
  readonly sliceUrn: string;
  readonly sliceAuthorityUrn: string;
  readonly sliceName: string;
  readonly mode: number;
  /** SiteRequest objects (generated toJSON form). */
  readonly sites: readonly unknown[];
  /** StitchedLinks (generated toJSON form), when the spec asks for any. */
  readonly stitchedLinks?: unknown;
  readonly expiresAt?: number;
  readonly steps: readonly StepRecord[];
}

/** A deployment. `desired` is the intent that survives a restart: run it, or delete it. */
export interface DeploymentRecord {
  readonly name: string;
  readonly requestId: string;
  readonly fingerprint: string;
  readonly spec: SpecRecord;
  readonly state: DeploymentStateName;
  readonly desired: 'run' | 'delete';
  /** Delete the slice with the deployment (false: keep it). */
  readonly deleteSlice: boolean;
  readonly sliceUrn: string;
  /** Whether this deployment asked the SA for its slice (then it deletes it). */
  readonly createdSlice: boolean;
  readonly targets: readonly TargetRecord[];
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly error: string;
  /** Sites of a best-effort slice that failed (`site: reason; ...`); such a deployment is at best PARTIAL. */
  readonly sliceProblems?: string;
  /** When the slice expires, as the slice authority last said (learned at create, moved by each renewal). */
  readonly sliceExpiresAt?: number;
  /** When the provider last renewed the slice (its expiry moved later). */
  readonly sliceRenewedAt?: number;
  /** Why the last renewal fell short (a site capped it, or it failed); absent when it got what it asked. */
  readonly renewalNote?: string;
}

/** A slice credential `SA → SP`. */
export interface SliceCredentialRecord {
  readonly sliceUrn: string;
  readonly chain: readonly string[];
  readonly jti: string;
  readonly expiresAt: number;
  readonly issuedAt: number;
}

/** A member. */
export interface MemberRecord {
  readonly urn: string;
  readonly certificatePem: string;
  readonly keyThumbprint: string;
  readonly displayName: string;
  readonly addedAt: number;
  /** The SSH public keys the member was given slice logins with (normalised lines), in the order first seen. */
  readonly sshKeys?: readonly string[];
  /** Set by RemoveMember: the member is gone (a tombstone, so that RemoveMember again answers the same). */
  readonly removedAt?: number;
  /** What the removal undid, once it is finished (absent while it is still being carried out). */
  readonly removal?: { readonly revokedJtis: readonly string[]; readonly sliceUrns: readonly string[]; readonly finishedAt: number };
}

/** A credential delegated to a member (key `<member URN> <jti>`): what RemoveMember revokes. */
export interface DelegationRecord {
  readonly memberUrn: string;
  readonly sliceUrn: string;
  readonly jti: string;
  /** jti of the provider's own slice credential the member's link hangs under. */
  readonly parentJti: string;
  readonly expiresAt: number;
  /** The SSH key (normalised line) given with the delegation, if any. */
  readonly sshKey?: string;
  /** Whether that key is at the slice authority yet (`pending` until the slice's users have it). */
  readonly keyState?: 'pending' | 'added';
  /** The DelegateToMember request record's key (forgotten if the key is refused). */
  readonly requestKey: string;
  /**
   * Set by RevokeMemberCredential: `pending` while its intent is carried out, `done` once the slice
   * authority has it on its list, with the slices the credential's SSH key was taken off.
   */
  readonly revocation?: { readonly state: 'pending' | 'done'; readonly at: number; readonly sliceUrns: readonly string[] };
}

/**
 * A change the provider owes the slice authority, written in the same batch as what calls for it
 * and carried out (again after a restart) until it is done. `keys`: make the member's user entry
 * on the slice hold exactly its current keys there. `remove`: RemoveMember's work — revoke each
 * credential, then take the member off each slice — with what is done so far. `revoke`:
 * RevokeMemberCredential's work — revoke one credential, then (if it carried the only live copy of
 * its SSH key on the slice) make the member's keys there the live ones.
 */
export type MemberIntentRecord =
  | {
      readonly kind: 'keys';
      readonly memberUrn: string;
      readonly sliceUrn: string;
      readonly createdAt: number;
      readonly lastError?: string;
    }
  | {
      readonly kind: 'remove';
      readonly memberUrn: string;
      readonly createdAt: number;
      readonly revoke: readonly { readonly jti: string; readonly parentJti: string; readonly sliceUrn: string }[];
      readonly slices: readonly string[];
      readonly revoked: readonly string[];
      readonly cleared: readonly string[];
      readonly lastError?: string;
    }
  | {
      readonly kind: 'revoke';
      readonly memberUrn: string;
      readonly jti: string;
      readonly sliceUrn: string;
      readonly createdAt: number;
      /** True once the slice authority has the credential on its list. */
      readonly revoked: boolean;
      readonly lastError?: string;
    };

/** A request id's first use (AddMember, DelegateToMember): what it asked and what it got. */
export interface MemberRequestRecord {
  readonly fingerprint: string;
  readonly result: unknown;
}
