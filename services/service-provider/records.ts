/**
 * What the service provider keeps in its LevelDB, one table per record type:
 * site registrations, deployments (their spec, the intent `desired`, and each
 * sliver's supervision state), deploy request ids, slice credentials, members
 * and member delegations.
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
}

/** A request id's first use (AddMember, DelegateToMember): what it asked and what it got. */
export interface MemberRequestRecord {
  readonly fingerprint: string;
  readonly result: unknown;
}
