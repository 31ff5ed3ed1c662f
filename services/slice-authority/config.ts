/**
 * The slice authority's configuration: the common service settings plus the
 * sites it may create slices on (each site's domain, Aggregate endpoint, the
 * management authority's URN, the `MA → SA` chain the site's admin gave it,
 * and optionally the CA certificates that verify that site's server), the
 * provider accounts with their quotas, administrators, and limits (slice
 * lifetimes, the per-site call deadline, background schedules, how long ended
 * records are kept). Compiled once
 * by `fedlab serve sa --config FILE`; unknown keys and bad values stop
 * start-up naming the field. `toSaSettings` turns the compiled config into
 * what the role's parts are built from.
 */
import { z } from 'zod';
import { commonConfigSchema } from '../core/config.js';
import { revocationCaps, type RevocationCaps } from '../core/credentials/revocation-config.js';
import { isUrn, isValidDomain, parseUrn } from '../core/identity/urn.js';

const path = z.string().min(1, 'must be a non-empty path');
const int = (min: number, max: number, dflt: number) => z.number().int().min(min).max(max).default(dflt);
const urnOf = (kind: string) =>
  z.string().refine((u) => isUrn(u) && parseUrn(u).kind === kind, `must be a URN urn:fedlab:<domain>:${kind}:<name>`);
const quota = (max: number) => z.number().int().min(0).max(max).optional();

const DAY_S = 86_400;

/** One site the slice authority may use. */
export const saSiteSchema = z
  .object({
    /** The site's domain: what slice requests name it by (`SiteRequest.site`). */
    domain: z.string().refine(isValidDomain, 'must be a lower-case DNS name'),
    /** host:port of the site's management authority (its Aggregate service). */
    endpoint: z.string().regex(/^[^\s:]+:[0-9]{1,5}$|^\[[0-9a-fA-F:]+\]:[0-9]{1,5}$/, 'must be host:port'),
    /** URN of the site's management authority; its server certificate must name it. */
    ma_urn: urnOf('authority'),
    /** File with the MA → SA chain the site's admin issued to this SA: one compact JWS per line, root first (`fedlab cred` chain format). */
    chain_file: path,
    /** PEM CA certificates that verify this site's server certificate; default: the SA's own tls.ca. */
    ca: path.optional(),
  })
  .strict()
  .refine((s) => parseUrn(s.ma_urn).domain === s.domain, { message: "ma_urn must be in the site's domain", path: ['ma_urn'] });

/** One service provider's account and quotas (absent quota: no cap). */
export const saProviderSchema = z
  .object({
    /** The provider's URN, as its mTLS client certificate names it. */
    urn: urnOf('sp'),
    quotas: z
      .object({
        /** Live slices at once (not FAILED, DELETED or EXPIRED). */
        slices: quota(1_000_000),
        /** Slivers over all its live slices. */
        slivers: quota(100_000_000),
        /** Total CPU (thousandths of a core), memory and disk (MiB) over all its live slivers. */
        cpu_millis: quota(1_000_000_000),
        mem_mb: quota(1_000_000_000_000),
        disk_mb: quota(1_000_000_000_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The slice authority's config. */
export const saConfigSchema = commonConfigSchema
  .extend({
    /** URNs of administrators (see every slice; Revoke anything). */
    admins: z.array(urnOf('user')).default([]),
    /** Sites slices may use, each once. */
    sites: z.array(saSiteSchema).max(256).default([]),
    /** Provider accounts; a provider not listed is refused. */
    providers: z.array(saProviderSchema).default([]),
    limits: z
      .object({
        /** Slice lifetime when a request names none (s). */
        default_slice_lifetime_s: int(60, 10 * 365 * DAY_S, 7 * DAY_S),
        /** No slice lives past now + this (s). */
        max_slice_lifetime_s: int(60, 10 * 365 * DAY_S, 8 * 7 * DAY_S),
        /** Budget of one site's part of a call (Allocate + Provision + start, Renew, Delete) (ms). */
        site_deadline_ms: int(100, 600_000, 15_000),
        /** Budget of one site's Status when GetSlice asks the sites for their slivers' current state (ms). */
        status_deadline_ms: int(100, 600_000, 5_000),
        /** Most sites and nodes in one slice request. */
        max_sites_per_slice: int(1, 1000, 64),
        max_nodes_per_site: int(1, 100_000, 10_000),
        /**
         * Events queued for one WatchSlice reader; a reader further behind is cut off (RESOURCE_EXHAUSTED).
         * Above the largest burst one step publishes (an event per node of a site, max_nodes_per_site).
         */
        watch_queue_events: int(64, 1_000_000, 16_384),
      })
      .strict()
      .prefault({}),
    /** Per-sliver resources counted against quotas for request fields left 0 (the sites' own defaults may differ). */
    quota_defaults: z
      .object({
        cpu_millis: int(1, 1_024_000, 250),
        mem_mb: int(1, 16 * 1024 * 1024, 256),
        disk_mb: int(1, 1024 * 1024 * 1024, 1024),
      })
      .strict()
      .prefault({}),
    /** How often expired slices are deleted everywhere (ms). */
    sweep_interval_ms: int(10, 600_000, 1_000),
    /** How often unfinished intents (a site that was down during a delete) are retried (ms). */
    intent_retry_interval_ms: int(10, 3_600_000, 5_000),
    /**
     * How long ended records are kept before the background purge drops them (retention.ts):
     * ended slices (deleted, expired, failed) after they ended, issued-credential records after the
     * credential expired, CreateSlice / UpdateSliceUsers request ids after they were made (kept
     * longer, as tombstones: a retry of a request id whose slice is gone is refused, never a new slice).
     */
    retention: z
      .object({
        ended_slice_s: int(60, 365 * DAY_S, 7 * DAY_S),
        credential_s: int(60, 365 * DAY_S, 7 * DAY_S),
        request_id_s: int(60, 3 * 365 * DAY_S, 30 * DAY_S),
        /** How often the purge runs (ms). */
        interval_ms: int(100, 86_400_000, 600_000),
        /** Most records one purge batch (one atomic write) drops. */
        batch: int(1, 10_000, 500),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((c) => isUrn(c.urn) && parseUrn(c.urn).kind === 'authority', {
    message: 'a slice authority runs as an authority: urn must be urn:fedlab:<domain>:authority:<name>',
    path: ['urn'],
  })
  .refine((c) => new Set(c.sites.map((s) => s.domain)).size === c.sites.length, {
    message: 'each site may be listed once',
    path: ['sites'],
  })
  .refine((c) => new Set(c.providers.map((p) => p.urn)).size === c.providers.length, {
    message: 'each provider may be listed once',
    path: ['providers'],
  })
  .refine((c) => c.retention.request_id_s >= c.retention.ended_slice_s, {
    message: 'request_id_s must be at least ended_slice_s (a request id outlives its slice record, as a tombstone)',
    path: ['retention', 'request_id_s'],
  })
  .refine((c) => c.limits.default_slice_lifetime_s <= c.limits.max_slice_lifetime_s, {
    message: 'default_slice_lifetime_s must not exceed max_slice_lifetime_s',
    path: ['limits', 'default_slice_lifetime_s'],
  });

/** The compiled slice authority config. */
export type SaConfig = z.infer<typeof saConfigSchema>;
/** One configured site. */
export type SaSiteConfig = SaConfig['sites'][number];
/** One provider account. */
export type SaProviderConfig = SaConfig['providers'][number];

/** Most sites one slice authority is configured with. */
export const MAX_SITES = 256;

/** Config fields holding paths, resolved against the config file's folder (every site's `chain_file` and `ca`). */
export const SA_PATH_FIELDS: readonly string[] = Array.from({ length: MAX_SITES }, (_, i) => [
  `sites.${i}.chain_file`,
  `sites.${i}.ca`,
]).flat();

/** The slice authority's settings, resolved from its config once (see {@link toSaSettings}). */
export interface SaSettings {
  readonly urn: string;
  /** Sites to load (chain files and CAs are read when the role is built). */
  readonly sites: readonly SaSiteConfig[];
  readonly providers: readonly SaProviderConfig[];
  readonly admins: readonly string[];
  /** Budget of one site's call (ms): Create, Delete, Renew, revocation pushes, GetVersion. */
  readonly siteDeadlineMs: number;
  /** What the slice book needs beyond its collaborators. */
  readonly book: { readonly saUrn: string; readonly limits: SaConfig['limits']; readonly quotaDefaults: SaConfig['quota_defaults'] };
  /** Background schedules (ms). */
  readonly intervals: { readonly sweepMs: number; readonly intentRetryMs: number; readonly revocationPushMs: number };
  /** Caps on the revocation list's live entries. */
  readonly revocationCaps: RevocationCaps;
  /** How long ended records are kept (ms) and how the purge runs. */
  readonly retention: RetentionSettings;
}

/** The retention of ended records (see the config's `retention`). */
export interface RetentionSettings {
  readonly endedSliceMs: number;
  readonly credentialMs: number;
  readonly requestIdMs: number;
  readonly intervalMs: number;
  readonly batch: number;
}

/** Compiles a slice authority config into its settings. */
export function toSaSettings(config: SaConfig): SaSettings {
  return {
    urn: config.urn,
    sites: config.sites,
    providers: config.providers,
    admins: config.admins,
    siteDeadlineMs: config.limits.site_deadline_ms,
    book: { saUrn: config.urn, limits: config.limits, quotaDefaults: config.quota_defaults },
    // Revocation pushes are retried on the intent schedule: both wait for a site that was down.
    intervals: {
      sweepMs: config.sweep_interval_ms,
      intentRetryMs: config.intent_retry_interval_ms,
      revocationPushMs: config.intent_retry_interval_ms,
    },
    revocationCaps: revocationCaps(config.revocation),
    retention: {
      endedSliceMs: config.retention.ended_slice_s * 1000,
      credentialMs: config.retention.credential_s * 1000,
      requestIdMs: config.retention.request_id_s * 1000,
      intervalMs: config.retention.interval_ms,
      batch: config.retention.batch,
    },
  };
}
