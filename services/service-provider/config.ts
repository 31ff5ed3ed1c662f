/**
 * The service provider's configuration: the common service settings plus the
 * slice authority it creates slices with, the sites (management authorities)
 * it registers with and the terms it accepts at each, who may operate it
 * (admins) and read it (readers), how it supervises deployed commands and
 * renews their slices, the member credentials it hands out, and the
 * deadlines of its outgoing calls.
 * Compiled once by `fedlab serve sp --config FILE`; unknown keys and bad
 * values stop start-up naming the field. `toSpSettings` turns the compiled
 * config into what each of the role's parts is built from.
 */
import { z } from 'zod';
import { commonConfigSchema } from '../core/config.js';
import { parseSshPublicKey } from '../core/identity/ssh-keys.js';
import { isUrn, isValidDomain, parseTarget, parseUrn } from '../core/identity/urn.js';
import type { DeploymentsOptions } from './deployments/context.js';
import type { MemberIntentsOptions } from './member-intents.js';
import type { MembersOptions } from './members.js';
import type { RegistrationsOptions } from './registrations.js';
import type { RemotesOptions } from './remotes.js';
import type { SliceCredentialsOptions } from './slice-credentials.js';

function isTarget(s: string): boolean {
  try {
    parseTarget(s);
    return true;
  } catch {
    return false;
  }
}

function isSshKey(s: string): boolean {
  try {
    parseSshPublicKey(s, 'ssh_keys');
    return true;
  } catch {
    return false;
  }
}

const int = (min: number, max: number, dflt: number) => z.number().int().min(min).max(max).default(dflt);
const urnOfKind = (kind: string) =>
  z.string().refine((s) => isUrn(s) && parseUrn(s).kind === kind, `must be a URN urn:fedlab:<domain>:${kind}:<name>`);
/** `host:port`, the way every Fedlab endpoint is written. */
const endpoint = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'must be host:port');

/** Privileges a member credential may carry (a subset of what the provider's slice credential holds). */
export const MEMBER_PRIVILEGES = ['sliver.exec', 'sliver.read', 'sliver.control', 'sliver.renew', 'slice.read'] as const;

/** One site the provider registers with: its management authority. */
export const siteSchema = z
  .object({
    /** The site's domain (e.g. "plc.test"), as slice requests name it. */
    domain: z.string().refine(isValidDomain, 'must be a lower-case DNS name'),
    /** URN of the site's management authority (its certificate must name it). */
    ma_urn: urnOfKind('authority'),
    /** host:port of the MA's main (mutual TLS) listener. */
    endpoint,
    /**
     * Digest (`sha256:<hex>`) of the site's terms of use the provider accepts (Aggregate.GetVersion
     * shows them). Absent: the provider accepts the terms the site shows at registration and logs
     * their digest. When the site's terms differ from the one given, registration fails (and is
     * retried) naming both digests.
     */
    accept_terms_digest: z
      .string()
      .regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>')
      .optional(),
  })
  .strict();

/** The service provider's config. */
export const spConfigSchema = commonConfigSchema
  .extend({
    /** Contact address of the provider's operators, sent when registering with sites. */
    contact: z.string().min(1).max(256).default('operators'),
    /** URNs of the provider's administrators: they may call every ServiceProvider method. */
    admins: z.array(z.string().refine(isUrn, 'must be a URN')).min(1, 'name at least one administrator'),
    /** URNs (or patterns such as urn:fedlab:acme.test:user:*) who may only read (GetDeployment, ListDeployments, ListMembers). */
    readers: z.array(z.string().refine(isTarget, 'must be a URN or a pattern urn:fedlab:<domain>:<kind>:*')).default([]),
    /** The slice authority slices are created with (the default one for DeploymentSpec.slice_authority_urn). */
    slice_authority: z
      .object({
        /** URN of the slice authority (its certificate must name it). */
        urn: urnOfKind('authority'),
        /** host:port of its mutual-TLS listener. */
        endpoint,
      })
      .strict(),
    /** The sites' management authorities to register with (at start, then on the retry schedule). */
    sites: z.array(siteSchema).default([]),
    registration: z
      .object({
        /** First retry of a failed registration (ms); doubles up to max_retry_ms. */
        retry_ms: int(10, 3_600_000, 2_000),
        max_retry_ms: int(10, 86_400_000, 60_000),
        /** Re-register a registered site this often (ms), so a site that lost or changed it is caught up. */
        refresh_ms: int(1_000, 7 * 86_400_000, 3_600_000),
      })
      .strict()
      .prefault({}),
    /** Deadlines of outgoing calls (ms). */
    calls: z
      .object({
        /** Management authority calls (GetVersion, RegisterServiceProvider, ListResources). */
        ma_deadline_ms: int(50, 120_000, 10_000),
        /** CreateSlice (which waits for every site), DeleteSlice. */
        slice_deadline_ms: int(100, 600_000, 60_000),
        /** Other slice authority calls (GetSlice, IssueSliceCredential). */
        sa_deadline_ms: int(50, 120_000, 10_000),
        /** Node manager calls other than the supervised Exec (GetSliver, ControlSliver). */
        nm_deadline_ms: int(50, 120_000, 10_000),
      })
      .strict()
      .prefault({}),
    /** Supervision of deployed services. */
    supervision: z
      .object({
        /** Back-off before the first restart of a command that exited non-zero (ms); doubles each time. */
        backoff_initial_ms: int(10, 3_600_000, 1_000),
        /** Cap of the back-off (ms). */
        backoff_max_ms: int(10, 86_400_000, 60_000),
        /** A run that lasted this long (ms) resets the back-off to the initial value. */
        backoff_reset_ms: int(100, 86_400_000, 60_000),
        /** Output lines kept per sliver (the last ones). */
        output_lines: int(1, 10_000, 50),
        /**
         * timeout_ms of each supervised Exec (ms): at most the node's exec.max_timeout_ms (1 h by
         * default). A service that runs longer is killed by its node and restarted.
         */
        exec_timeout_ms: int(100, 86_400_000, 3_600_000),
        /** How long a failed sliver (unreachable node, refused credential) waits before trying again (ms). */
        retry_ms: int(10, 3_600_000, 5_000),
      })
      .strict()
      .prefault({}),
    /** Renewal of the slices of live deployments (READY, PARTIAL or running their steps). */
    deployments: z
      .object({
        /**
         * Renew a slice when it expires within this (s) — or within half its current lifetime when
         * that is shorter, so a slice made for minutes is renewed halfway through.
         */
        renew_margin_s: int(1, 365 * 86_400, 86_400),
        /** How far from now a renewal asks to move the expiry (s); each site grants at most its own maximum. */
        renew_lifetime_s: int(60, 10 * 365 * 86_400, 7 * 86_400),
        /** How often the deployments are checked for a slice to renew (ms). */
        renew_check_ms: int(50, 3_600_000, 10_000),
      })
      .strict()
      .prefault({}),
    /**
     * How long ended records are kept before the background purge drops them (deployments/retention.ts):
     * DELETED deployments after their deletion; Deploy request ids after their first use (kept longer, as
     * tombstones: a retry of a request id whose deployment is gone is refused, never a new deployment).
     */
    retention: z
      .object({
        deleted_deployment_s: int(60, 365 * 86_400, 7 * 86_400),
        request_id_s: int(60, 3 * 365 * 86_400, 30 * 86_400),
        /** How often the purge runs (ms). */
        interval_ms: int(100, 86_400_000, 600_000),
        /** Most records one purge batch (one atomic write) drops. */
        batch: int(1, 10_000, 500),
      })
      .strict()
      .prefault({}),
    /** Member credentials (DelegateToMember). */
    members: z
      .object({
        /** Privileges when the request names none. */
        default_privileges: z.array(z.enum(MEMBER_PRIVILEGES)).min(1).default(['sliver.exec', 'sliver.read']),
        /** Lifetime when the request names none (s), and the longest allowed. */
        default_ttl_s: int(60, 365 * 86_400, 86_400),
        max_ttl_s: int(60, 365 * 86_400, 7 * 86_400),
      })
      .strict()
      .prefault({}),
    /**
     * SSH public keys (OpenSSH lines) of the provider's own operators: every slice a deployment
     * creates lists the provider as a user with these keys, so they can log in to its slivers.
     */
    ssh_keys: z
      .array(
        z
          .string()
          .refine(
            isSshKey,
            'must be an OpenSSH public key line of type ssh-ed25519, ecdsa-sha2-nistp256/384 or ssh-rsa (2048 bits or more)',
          ),
      )
      .max(16)
      .default([]),
    /** Lifetime of slice credentials the provider asks its slice authority for (s); 0: until the slice expires. */
    slice_credential_ttl_s: int(0, 365 * 86_400, 0),
  })
  .strict()
  .refine((c) => isUrn(c.urn) && parseUrn(c.urn).kind === 'sp', {
    message: 'a service provider runs as a provider: urn must be urn:fedlab:<domain>:sp:<name>',
    path: ['urn'],
  })
  .refine((c) => c.registration.retry_ms <= c.registration.max_retry_ms, {
    message: 'retry_ms must not exceed max_retry_ms',
    path: ['registration'],
  })
  .refine((c) => c.retention.request_id_s >= c.retention.deleted_deployment_s, {
    message: 'request_id_s must be at least deleted_deployment_s (a request id outlives its deployment record, as a tombstone)',
    path: ['retention', 'request_id_s'],
  })
  .refine((c) => c.supervision.backoff_initial_ms <= c.supervision.backoff_max_ms, {
    message: 'backoff_initial_ms must not exceed backoff_max_ms',
    path: ['supervision'],
  })
  .refine((c) => c.members.default_ttl_s <= c.members.max_ttl_s, { message: 'default_ttl_s must not exceed max_ttl_s', path: ['members'] })
  .refine((c) => new Set(c.sites.map((s) => s.domain)).size === c.sites.length, {
    message: 'a site domain appears at most once',
    path: ['sites'],
  });

/** The compiled service provider config. */
export type SpConfig = z.infer<typeof spConfigSchema>;

/** Config fields holding paths, beyond the common ones. */
export const SP_PATH_FIELDS: readonly string[] = [];

/** The service provider's settings, resolved from its config once (see {@link toSpSettings}): one group per part of the role. */
export interface SpSettings {
  readonly urn: string;
  /** Who may operate (admins) and read (readers) the provider. */
  readonly access: { readonly admins: readonly string[]; readonly readers: readonly string[] };
  /** The clients' servers and call deadlines. */
  readonly remotes: Omit<RemotesOptions, 'tls' | 'trust'>;
  readonly registrations: Omit<RegistrationsOptions, 'store' | 'clock' | 'log' | 'remotes' | 'certificatePem' | 'key' | 'kid'>;
  readonly sliceCredentials: Pick<SliceCredentialsOptions, 'ttlS' | 'deadlineMs'>;
  readonly deployments: Omit<DeploymentsOptions, 'store' | 'clock' | 'log' | 'remotes' | 'credentials'>;
  readonly members: Omit<MembersOptions, 'store' | 'clock' | 'log' | 'credentials' | 'intents' | 'key' | 'ownsSlice'>;
  readonly memberIntents: Pick<MemberIntentsOptions, 'deadlineMs' | 'retryMs' | 'maxRetryMs'>;
}

/** Compiles a service provider config into its settings. */
export function toSpSettings(config: SpConfig): SpSettings {
  const { calls, supervision, registration, members } = config;
  const sites = config.sites.map((s) => ({
    domain: s.domain,
    maUrn: s.ma_urn,
    endpoint: s.endpoint,
    acceptTermsDigest: s.accept_terms_digest,
  }));
  return {
    urn: config.urn,
    access: { admins: config.admins, readers: config.readers },
    remotes: {
      sliceAuthority: config.slice_authority,
      deadlines: { ma: calls.ma_deadline_ms, sa: calls.sa_deadline_ms, nm: calls.nm_deadline_ms },
    },
    registrations: {
      providerUrn: config.urn,
      contact: config.contact,
      sites,
      retryMs: registration.retry_ms,
      maxRetryMs: registration.max_retry_ms,
      refreshMs: registration.refresh_ms,
      deadlineMs: calls.ma_deadline_ms,
    },
    sliceCredentials: { ttlS: config.slice_credential_ttl_s, deadlineMs: calls.sa_deadline_ms },
    deployments: {
      sliceAuthorityUrn: config.slice_authority.urn,
      sites,
      supervision: {
        backoffInitialMs: supervision.backoff_initial_ms,
        backoffMaxMs: supervision.backoff_max_ms,
        backoffResetMs: supervision.backoff_reset_ms,
        outputLines: supervision.output_lines,
        execTimeoutMs: supervision.exec_timeout_ms,
        retryMs: supervision.retry_ms,
      },
      sliceDeadlineMs: calls.slice_deadline_ms,
      maDeadlineMs: calls.ma_deadline_ms,
      renewal: {
        marginS: config.deployments.renew_margin_s,
        lifetimeS: config.deployments.renew_lifetime_s,
        checkMs: config.deployments.renew_check_ms,
      },
      retention: {
        deletedMs: config.retention.deleted_deployment_s * 1000,
        requestIdMs: config.retention.request_id_s * 1000,
        intervalMs: config.retention.interval_ms,
        batch: config.retention.batch,
      },
      sliceUsers: config.ssh_keys.length
        ? [{ urn: config.urn, sshKeys: [...new Set(config.ssh_keys.map((k) => parseSshPublicKey(k, 'ssh_keys').line))] }]
        : [],
    },
    members: {
      providerUrn: config.urn,
      defaultPrivileges: members.default_privileges,
      defaultTtlS: members.default_ttl_s,
      maxTtlS: members.max_ttl_s,
    },
    // Member keys and removals go to the slice authority, which hands them to the sites: the slice calls' deadline.
    memberIntents: { deadlineMs: calls.slice_deadline_ms, retryMs: registration.retry_ms, maxRetryMs: registration.max_retry_ms },
  };
}
