/**
 * The management authority's configuration: the common service settings plus
 * the site's style, its administrators, the enrolment listener and CA, the
 * heartbeat schedule, allocation and lifetime limits, resource defaults, the
 * site policy and terms, and the bounds of calls to node managers. Parsed
 * once by `fedlab serve ma --config FILE` (unknown keys and bad values stop
 * start-up naming the field), then compiled by {@link toMaSettings} into the
 * settings the role builds from.
 */
import { z } from 'zod';
import { commonConfigSchema } from '../core/config.js';
import { isUrn, isValidDomain, parseUrn } from '../core/identity/urn.js';
import type { AggregateSettings } from './aggregate/index.js';
import type { DelegationPolicy } from './delegations.js';
import { maInstance, maVersion } from './instance.js';

const path = z.string().min(1, 'must be a non-empty path');
const positive = z.number().int().positive();
const int = (min: number, max: number, dflt: number) => z.number().int().min(min).max(max).default(dflt);

const WEEK_S = 7 * 86_400;

/** The site's terms of use when the config gives none. */
export const DEFAULT_TERMS =
  'Slivers at this site are for research and testing. Do not attack other hosts, do not send unsolicited traffic, ' +
  'and stop any experiment when the site administrators ask. The site may stop slices that break these terms.';

/** Site styles (docs/design.md §3). */
export const STYLES = ['planetlab', 'emulab', 'protogeni'] as const;
/** One site style. */
export type StyleName = (typeof STYLES)[number];

/** The management authority's config. */
export const maConfigSchema = commonConfigSchema
  .extend({
    /** How the site shares and allocates its nodes. */
    style: z.enum(STYLES).default('planetlab'),
    /** URNs of the site's administrators (their TLS certificates name them). */
    admins: z.array(z.string().refine(isUrn, 'must be a URN')).default([]),
    /** The enrolment listener (TLS server authentication only; the token authenticates the node) and the CA that certifies nodes. */
    enrolment: z
      .object({
        listen: z
          .object({ host: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(0) })
          .strict()
          .prefault({}),
        /** The site CA directory (`fedlab certs init-ca`); its key signs node certificates. */
        ca_dir: path.optional(),
        /** Or an intermediate CA given to the MA: its certificate and key (PEM) ... */
        ca_cert: path.optional(),
        ca_key: path.optional(),
        /** ... and the certificates above it (PEM, issuer first), returned to enrolling nodes. */
        ca_chain: path.optional(),
        /** Token lifetime when the request asks for none (s), and the longest allowed. */
        token_ttl_s: int(60, 30 * 86_400, 86_400),
        max_token_ttl_s: int(60, 365 * 86_400, 30 * 86_400),
        /** Validity of node certificates (days). */
        cert_days: int(1, 3650, 365),
      })
      .strict()
      .prefault({}),
    heartbeat: z
      .object({
        /** Interval node managers are asked to beat at (ms); a node is DOWN after three missed. */
        interval_ms: int(50, 3_600_000, 5_000),
        /** How often health is written to the store, coalesced (ms). */
        flush_interval_ms: int(10, 600_000, 1_000),
        /**
         * After a restart, how long enrolled nodes count as UNKNOWN until their first heartbeat (ms);
         * unset: three heartbeat intervals.
         */
        restart_grace_ms: z.number().int().min(0).max(3_600_000).optional(),
      })
      .strict()
      .prefault({}),
    /** Length of an allocation hold (s). */
    allocation_hold_s: int(1, 86_400, 600),
    /** Sliver lifetime when a request names none (s). */
    default_sliver_lifetime_s: int(60, 10 * 365 * 86_400, WEEK_S),
    /** The site maximum: no sliver lives past now + this (s). */
    max_sliver_lifetime_s: int(60, 10 * 365 * 86_400, 8 * WEEK_S),
    /** Lifetime of an MA → SA credential when the request names none (s), and the longest allowed. */
    delegation_ttl_s: int(60, 10 * 365 * 86_400, 8 * WEEK_S),
    max_delegation_ttl_s: int(60, 10 * 365 * 86_400, 365 * 86_400),
    /** What zero fields of a request get. */
    defaults: z
      .object({
        cpu_millis: positive.max(1_024_000).default(250),
        mem_mb: positive.max(16 * 1024 * 1024).default(256),
        disk_mb: positive.max(1024 * 1024 * 1024).default(1024),
        pids: positive.max(4_194_304).default(256),
      })
      .strict()
      .prefault({}),
    policy: z
      .object({
        /** Refuse slices of providers that have not registered (RegisterServiceProvider). */
        require_registered_providers: z.boolean().default(false),
        /** The site's terms of use (GetVersion shows them; providers accept their digest). */
        terms_of_use: z.string().min(1).max(65_536).default(DEFAULT_TERMS),
        /** Take links stitched to other sites (emulab-style sites); false: such an Allocate is FAILED_PRECONDITION naming the site and link. */
        stitching: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /** Calls to node managers: each one's deadline and how many run at once. */
    node_calls: z
      .object({
        deadline_ms: int(50, 120_000, 10_000),
        concurrency: int(1, 4096, 64),
        /** Most open channels to node managers (least recently used ones close). */
        max_channels: int(1, 100_000, 2_048),
      })
      .strict()
      .prefault({}),
    /**
     * Which slice authorities this MA may delegate to (DelegateToSliceAuthority). Its own domain's
     * authorities unless `allow_own_domain` is false; a peered domain's only when listed in `allow`,
     * by domain (`emu.test`: any of its authorities) or by an authority's URN. Others are
     * PERMISSION_DENIED (rule `delegation_policy`).
     */
    delegation_policy: z
      .object({
        allow_own_domain: z.boolean().default(true),
        allow: z
          .array(
            z
              .string()
              .refine(
                (v) => isValidDomain(v) || (isUrn(v) && parseUrn(v).kind === 'authority'),
                'must be a domain (e.g. emu.test) or an authority URN urn:fedlab:<domain>:authority:<name>',
              ),
          )
          .default([]),
      })
      .strict()
      .prefault({}),
    /** How often expired holds are released (ms). */
    sweep_interval_ms: int(10, 600_000, 1_000),
    /** How often unfinished intents (e.g. a delete on a node that was down) are retried (ms). */
    intent_retry_interval_ms: int(10, 3_600_000, 5_000),
    emulab: z
      .object({
        /** Largest bandwidth a link may ask for (kbit/s). */
        max_link_kbps: positive.max(100_000_000).default(10_000_000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((c) => isUrn(c.urn) && parseUrn(c.urn).kind === 'authority', {
    message: 'a management authority runs as an authority: urn must be urn:fedlab:<domain>:authority:<name>',
    path: ['urn'],
  })
  .refine((c) => (c.enrolment.ca_cert === undefined) === (c.enrolment.ca_key === undefined), {
    message: 'give ca_cert and ca_key together (an intermediate CA), or ca_dir',
    path: ['enrolment'],
  })
  .refine((c) => !(c.enrolment.ca_dir !== undefined && c.enrolment.ca_cert !== undefined), {
    message: 'give either ca_dir or ca_cert + ca_key, not both',
    path: ['enrolment'],
  })
  .refine((c) => c.default_sliver_lifetime_s <= c.max_sliver_lifetime_s, {
    message: 'default_sliver_lifetime_s must not exceed max_sliver_lifetime_s',
    path: ['default_sliver_lifetime_s'],
  });

/** The compiled management authority config. */
export type MaConfig = z.infer<typeof maConfigSchema>;

/** Config fields holding paths, resolved against the config file's folder. */
export const MA_PATH_FIELDS = ['enrolment.ca_dir', 'enrolment.ca_cert', 'enrolment.ca_key', 'enrolment.ca_chain'] as const;

/** Where the CA that certifies enrolling nodes comes from (paths already resolved). */
export interface SiteCaSettings {
  /** The site CA directory, or ... */
  readonly caDir?: string | undefined;
  /** ... an intermediate CA's certificate and key, and the certificates above it. */
  readonly caCert?: string | undefined;
  readonly caKey?: string | undefined;
  readonly caChain?: string | undefined;
  /** Validity of node certificates (days). */
  readonly certDays: number;
}

/** The management authority's settings, compiled once from its config: defaults applied, names and units as the domain classes take them. */
export interface MaSettings {
  readonly urn: string;
  readonly domain: string;
  readonly style: StyleName;
  readonly admins: readonly string[];
  /** The short id of this instance (from the data directory); part of the names of the namespaces it makes. */
  readonly instance: string;
  readonly heartbeat: { readonly intervalMs: number; readonly flushIntervalMs: number; readonly restartGraceMs: number };
  readonly enrolment: {
    readonly listen: { readonly host: string; readonly port: number };
    readonly tokenTtlS: number;
    readonly maxTokenTtlS: number;
    readonly ca: SiteCaSettings;
  };
  readonly delegation: { readonly defaultTtlS: number; readonly maxTtlS: number; readonly policy: DelegationPolicy };
  readonly termsOfUse: string;
  readonly nodeCalls: { readonly deadlineMs: number; readonly concurrency: number; readonly maxChannels: number };
  readonly aggregate: AggregateSettings;
  /** Intervals of the background tasks (ms). */
  readonly tasks: {
    readonly healthMonitorMs: number;
    readonly healthFlushMs: number;
    readonly sweepMs: number;
    readonly intentRetryMs: number;
  };
}

/** Compiles a parsed config into the role's settings (once, at start-up). */
export function toMaSettings(config: MaConfig): MaSettings {
  const interval = config.heartbeat.interval_ms;
  const e = config.enrolment;
  return {
    urn: config.urn,
    domain: parseUrn(config.urn).domain,
    style: config.style,
    admins: config.admins,
    instance: maInstance(config.data_dir),
    heartbeat: {
      intervalMs: interval,
      flushIntervalMs: config.heartbeat.flush_interval_ms,
      restartGraceMs: config.heartbeat.restart_grace_ms ?? 3 * interval,
    },
    enrolment: {
      listen: { host: e.listen.host, port: e.listen.port },
      tokenTtlS: e.token_ttl_s,
      maxTokenTtlS: e.max_token_ttl_s,
      ca: { caDir: e.ca_dir, caCert: e.ca_cert, caKey: e.ca_key, caChain: e.ca_chain, certDays: e.cert_days },
    },
    delegation: {
      defaultTtlS: config.delegation_ttl_s,
      maxTtlS: config.max_delegation_ttl_s,
      policy: { allowOwnDomain: config.delegation_policy.allow_own_domain, allow: config.delegation_policy.allow },
    },
    termsOfUse: config.policy.terms_of_use,
    nodeCalls: {
      deadlineMs: config.node_calls.deadline_ms,
      concurrency: config.node_calls.concurrency,
      maxChannels: config.node_calls.max_channels,
    },
    aggregate: {
      style: config.style,
      holdS: config.allocation_hold_s,
      defaultLifetimeS: config.default_sliver_lifetime_s,
      maxLifetimeS: config.max_sliver_lifetime_s,
      defaults: {
        cpuMillis: config.defaults.cpu_millis,
        memMb: config.defaults.mem_mb,
        diskMb: config.defaults.disk_mb,
        pids: config.defaults.pids,
      },
      maxLinkKbps: config.emulab.max_link_kbps,
      requireRegisteredProviders: config.policy.require_registered_providers,
      stitching: config.policy.stitching,
      terms: config.policy.terms_of_use,
      softwareVersion: maVersion(),
    },
    tasks: {
      // The monitor checks four times per heartbeat interval.
      healthMonitorMs: Math.max(10, Math.floor(interval / 4)),
      healthFlushMs: config.heartbeat.flush_interval_ms,
      sweepMs: config.sweep_interval_ms,
      intentRetryMs: config.intent_retry_interval_ms,
    },
  };
}
