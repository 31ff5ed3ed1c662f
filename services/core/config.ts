/**
 * Service configuration: one typed, frozen object per service, compiled once
 * at start-up from a JSON file, then environment variables, then command-line
 * flags (later sources win). An unknown key or a bad value stops start-up with
 * a message naming the field. Only entry points read `process.env`; they pass
 * it in here.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { InvalidArgumentError } from './errors.js';
import { isValidDomain, isUrn, parseUrn } from './identity/urn.js';
import type { TlsMaterial } from './rpc/server.js';
import type { ServerLimits } from './rpc/server-limits.js';
import { revocationConfigSchema } from './credentials/revocation-config.js';

/** The roles a `fedlab serve` process can take. */
export const ROLES = ['nm', 'ma', 'sa', 'sp'] as const;
export type Role = (typeof ROLES)[number];

const path = z.string().min(1, 'must be a non-empty path');

/** The `federation` section of every service's config. */
export const federationConfigSchema = z
  .object({
    /**
     * The peers directory shared by a domain's services (`fedlab federation peer add` writes it).
     * Default: `peers/` beside `trust_bundle`.
     */
    peers_dir: path.optional(),
    /**
     * A public bundle endpoint: TLS server authentication only, serving Federation.GetBundle and
     * nothing else, so that an admin of a domain that is not peered yet can fetch and pin this
     * domain's bundle. Absent: none (GetBundle is then only on the mutual-TLS listener).
     */
    bundle_listen: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535),
      })
      .strict()
      .optional(),
    // Defaults are applied by federationSettings, so that configs built in code may leave them out.
    /** How often the peers directory and the own bundle are checked for changes (ms); 2000 by default. */
    reload_interval_ms: z.number().int().min(50).max(600_000).optional(),
    /** How often peers' bundles are refreshed over Federation.GetBundle (s); 0 turns refreshing off; 900 by default. */
    refresh_interval_s: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .optional(),
    /** Deadline of one refresh call (ms); 10000 by default. */
    refresh_deadline_ms: z.number().int().min(100).max(120_000).optional(),
  })
  .strict();

/** The federation settings with every default applied. */
export interface FederationSettings {
  readonly peersDir: string;
  readonly bundleListen?: { readonly host: string; readonly port: number };
  readonly reloadIntervalMs: number;
  readonly refreshIntervalS: number;
  readonly refreshDeadlineMs: number;
}

/** A config's federation settings, defaults applied (the peers directory defaults to `peers/` beside the trust bundle). */
export function federationSettings(config: Pick<CommonConfig, 'trust_bundle' | 'federation'>): FederationSettings {
  const f = config.federation;
  return {
    peersDir: f?.peers_dir ?? join(dirname(config.trust_bundle), 'peers'),
    ...(f?.bundle_listen ? { bundleListen: { host: f.bundle_listen.host, port: f.bundle_listen.port } } : {}),
    reloadIntervalMs: f?.reload_interval_ms ?? 2_000,
    refreshIntervalS: f?.refresh_interval_s ?? 900,
    refreshDeadlineMs: f?.refresh_deadline_ms ?? 10_000,
  };
}

/** The `server` section: limits of the main listener (docs/api.md, "Limits"); absent keys keep the defaults. */
export const serverLimitsConfigSchema = z
  .object({
    max_receive_bytes: z
      .number()
      .int()
      .min(4096)
      .max(64 * 1024 * 1024)
      .optional(),
    max_send_bytes: z
      .number()
      .int()
      .min(4096)
      .max(256 * 1024 * 1024)
      .optional(),
    max_concurrent_streams: z.number().int().min(1).max(10_000).optional(),
    max_streams_per_caller: z.number().int().min(1).max(10_000).optional(),
    max_connection_idle_ms: z.number().int().min(1_000).max(86_400_000).optional(),
    /** Connections one client address may hold open on the public listeners (enrolment, bundle); rpc/public-listener.ts. */
    max_connections_per_address: z.number().int().min(1).max(10_000).optional(),
  })
  .strict();

/** The server limits a config sets, as `startServer` takes them (unset keys keep the defaults). */
export function serverLimitsFromConfig(server: z.infer<typeof serverLimitsConfigSchema> | undefined): Partial<ServerLimits> {
  if (!server) return {};
  const out: { -readonly [K in keyof ServerLimits]?: ServerLimits[K] } = {};
  if (server.max_receive_bytes !== undefined) out.maxReceiveBytes = server.max_receive_bytes;
  if (server.max_send_bytes !== undefined) out.maxSendBytes = server.max_send_bytes;
  if (server.max_concurrent_streams !== undefined) out.maxConcurrentStreams = server.max_concurrent_streams;
  if (server.max_streams_per_caller !== undefined) out.maxStreamsPerCaller = server.max_streams_per_caller;
  if (server.max_connection_idle_ms !== undefined) out.maxConnectionIdleMs = server.max_connection_idle_ms;
  return out;
}

/** The `dashboard` section: where the dashboard listens and how its one-time login links and sessions last. */
export const dashboardConfigSchema = z
  .object({
    listen: z.object({ host: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(0).max(65535) }).strict(),
    /**
     * Where the service writes a one-time login link (mode 0600) at start, and a new one whenever the
     * last is used or expires. Absent: no links, client certificates only.
     */
    login_link_file: path.optional(),
    /** How long a login link is valid (s). */
    login_link_ttl_s: z.number().int().min(10).max(86_400).default(900),
    /** How long a session from a login link lasts (s). */
    session_ttl_s: z
      .number()
      .int()
      .min(60)
      .max(7 * 86_400)
      .default(28_800),
  })
  .strict();

/** Settings every service has. Role-specific sections extend this schema. */
export const commonConfigSchema = z
  .object({
    /** Which party this process is. */
    role: z.enum(ROLES),
    /** The principal this service runs as; its certificate must name it. */
    urn: z.string().refine(isUrn, 'must be a URN urn:fedlab:<domain>:<kind>:<name>'),
    /** Where to listen. Port 0 picks a free port (printed at start). */
    listen: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535),
      })
      .strict(),
    /** PEM files for mutual TLS. */
    tls: z.object({ ca: path, cert: path, key: path }).strict(),
    /** This domain's trust bundle (`fedlab certs bundle`), served by Federation.GetBundle. */
    trust_bundle: path,
    /** Directory of the service's LevelDB and other state. */
    data_dir: path,
    log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    /** How long a stop lets calls in flight finish (ms). */
    shutdown_grace_ms: z.number().int().min(0).max(600_000).default(10_000),
    /** Federation peering (docs/federation.md). Absent: the defaults of {@link federationSettings}. */
    federation: federationConfigSchema.optional(),
    /** Limits of the main listener: message sizes, streams, idle connections. */
    server: serverLimitsConfigSchema.optional(),
    /** Revocation list freshness: next_update of the lists this service signs, grace on those it holds. */
    revocation: revocationConfigSchema.optional(),
    /** The audit log: how long records are kept (days; 0 keeps them all). */
    audit: z
      .object({ retention_days: z.number().int().min(0).max(36_500).default(90) })
      .strict()
      .optional(),
    /** Prometheus metrics over plain HTTP (`GET /metrics`); off unless `listen` is set. */
    metrics: z
      .object({
        listen: z.object({ host: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(0).max(65535) }).strict(),
      })
      .strict()
      .optional(),
    /** The federation dashboard over HTTPS (management and slice authorities; docs there); off unless `listen` is set. */
    dashboard: dashboardConfigSchema.optional(),
  })
  .strict();

export type CommonConfig = z.infer<typeof commonConfigSchema>;

/** Where a value came from, so errors can say which source to fix. */
export interface ConfigSources {
  /** Path of the JSON config file. Relative paths inside it resolve against its directory. */
  readonly file?: string;
  /** Environment (only `FEDLAB_*` variables are read). */
  readonly env?: NodeJS.ProcessEnv;
  /** Values from command-line flags, as dotted paths (e.g. `{ "listen.port": 0 }`). */
  readonly flags?: Readonly<Record<string, unknown>>;
}

/** Environment variables that override config fields (dotted path → variable). */
export const ENV_OVERRIDES: Readonly<Record<string, string>> = {
  'listen.host': 'FEDLAB_HOST',
  'listen.port': 'FEDLAB_PORT',
  data_dir: 'FEDLAB_DATA_DIR',
  log_level: 'FEDLAB_LOG_LEVEL',
};

const PATH_FIELDS = ['tls.ca', 'tls.cert', 'tls.key', 'trust_bundle', 'data_dir', 'federation.peers_dir', 'dashboard.login_link_file'];

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1] as string] = value;
}

function getPath(obj: Record<string, unknown>, dotted: string): unknown {
  let cur: unknown = obj;
  for (const k of dotted.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Env values are strings; numeric fields get numbers. */
function envValue(raw: string): unknown {
  return /^-?[0-9]+$/.test(raw) ? Number(raw) : raw;
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.length ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    const at = issue.path.length ? ` in ${field}` : '';
    return `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')}${at}`;
  }
  return `${field}: ${issue.message}`;
}

/**
 * Compiles a config: reads the file, applies env then flags, validates against
 * `schema`, resolves relative paths against the file's directory, and freezes it.
 * `pathFields` names a role's own path fields (dotted), resolved like the common ones.
 */
export function compileConfig<S extends z.ZodType<CommonConfig>>(
  schema: S,
  sources: ConfigSources,
  pathFields: readonly string[] = [],
): Readonly<z.infer<S>> {
  let raw: Record<string, unknown> = {};
  const where = sources.file ?? '(no file)';
  if (sources.file) {
    let text: string;
    try {
      text = readFileSync(sources.file, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError(
        `cannot read config file ${sources.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      raw = parsed as Record<string, unknown>;
    } catch (err) {
      throw new InvalidArgumentError(`config file ${sources.file} is not a JSON object: ${(err as Error).message}`);
    }
  }
  for (const [field, variable] of Object.entries(ENV_OVERRIDES)) {
    const v = sources.env?.[variable];
    if (v !== undefined && v !== '') setPath(raw, field, envValue(v));
  }
  for (const [field, value] of Object.entries(sources.flags ?? {})) if (value !== undefined) setPath(raw, field, value);

  const result = schema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map(formatIssue);
    throw new InvalidArgumentError(`invalid config ${where}: ${lines.join('; ')}`, {
      field: String(result.error.issues[0]?.path.join('.') ?? ''),
    });
  }
  const config = result.data as Record<string, unknown>;
  const base = sources.file ? dirname(resolve(sources.file)) : process.cwd();
  for (const field of [...PATH_FIELDS, ...pathFields]) {
    const v = getPath(config, field);
    if (typeof v === 'string' && !isAbsolute(v)) setPath(config, field, resolve(base, v));
  }
  const urn = parseUrn(config.urn as string);
  if (!isValidDomain(urn.domain)) throw new InvalidArgumentError(`invalid config ${where}: urn: bad domain`);
  return deepFreeze(config) as Readonly<z.infer<S>>;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Reads the TLS PEM files a config names; a missing or unreadable file names its field. */
export function loadTls(config: Pick<CommonConfig, 'tls'>): TlsMaterial {
  const read = (field: 'ca' | 'cert' | 'key'): string => {
    const file = config.tls[field];
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError(`tls.${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return { caCerts: read('ca'), cert: read('cert'), key: read('key') };
}
