/**
 * What a local federation is made of, and where it lives under its directory:
 * the sites (one domain, CA, MA and node managers each), the slice authority
 * and service provider (in the first site's domain), the ports chosen up
 * front, and the state file that lets a second `fedlab up` on the same
 * directory reuse it (or refuse, saying why).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { writeOutputFile } from '../../certs/output-file.js';
import { freePort } from './processes.js';

/** The site styles `fedlab up` knows, each with its own domain. */
export const SITE_DOMAINS = { planetlab: 'plc.test', emulab: 'emu.test', protogeni: 'geni.test' } as const;
/** A site style. */
export type SiteStyleName = keyof typeof SITE_DOMAINS;
/** The styles in their default order. */
export const ALL_STYLES: readonly SiteStyleName[] = ['planetlab', 'emulab', 'protogeni'];

/** Name of the state file in the federation's directory. */
export const STATE_FILE = 'fedlab-up.json';

const stateSchema = z
  .object({
    v: z.literal(1),
    created_at: z.string(),
    /** True once every node is enrolled and the PKI is complete. */
    complete: z.boolean(),
    home: z.string(),
    sites: z.array(
      z
        .object({
          style: z.enum(['planetlab', 'emulab', 'protogeni']),
          domain: z.string(),
          ma_port: z.number().int(),
          enrol_port: z.number().int(),
          /** The MA's public bundle endpoint (TLS server authentication only), where peers fetch the bundle they pin. */
          bundle_port: z.number().int(),
          /** The MA's dashboard (HTTPS); absent in directories made before dashboards (then chosen at open). */
          dashboard_port: z.number().int().optional(),
          nodes: z.array(z.object({ name: z.string(), port: z.number().int() }).strict()),
        })
        .strict(),
    ),
    sa_port: z.number().int(),
    sp_port: z.number().int(),
    /** The slice authority's dashboard (HTTPS); absent in directories made before dashboards. */
    sa_dashboard_port: z.number().int().optional(),
    /** Process ids of the last run's services (a run that did not stop leaves them running: the next one stops them). */
    pids: z.array(z.number().int()).default([]),
    /** The `fedlab up` that runs the federation: its process id and start time (to tell it from a reused id). */
    up: z.object({ pid: z.number().int(), started: z.number() }).strict().optional(),
    /** The block of sliver subnets, bridges and forwarded ports of its node managers (node-networks.ts); chosen at the first start. */
    net_block: z.number().int().min(0).max(99).optional(),
    /** How many times the federation was started (names each run's deployment). */
    runs: z.number().int().min(0).default(0),
  })
  .strict();

/** The saved plan of a federation directory. */
export type UpState = z.infer<typeof stateSchema>;
/** One site of the plan. */
export type SitePlan = UpState['sites'][number];

/** A fresh plan: every site's domain, node names and ports (each a distinct free one), the SA's and SP's ports. */
export async function planFederation(styles: readonly SiteStyleName[], nodes: number): Promise<UpState> {
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const candidate = await freePort();
      if (!taken.has(candidate)) {
        taken.add(candidate);
        return candidate;
      }
    }
  };
  const sites: SitePlan[] = [];
  for (const style of styles) {
    const domain = SITE_DOMAINS[style];
    const names = Array.from({ length: nodes }, (_, i) => `${domain.split('.')[0]}${i + 1}`);
    const planned = {
      style,
      domain,
      ma_port: await port(),
      enrol_port: await port(),
      bundle_port: await port(),
      dashboard_port: await port(),
      nodes: [] as { name: string; port: number }[],
    };
    for (const name of names) planned.nodes.push({ name, port: await port() });
    sites.push(planned);
  }
  return {
    v: 1,
    created_at: new Date().toISOString(),
    complete: false,
    home: (sites[0] as SitePlan).domain,
    sites,
    sa_port: await port(),
    sp_port: await port(),
    sa_dashboard_port: await port(),
    pids: [],
    runs: 0,
  };
}

/** Every port of a plan. */
export function plannedPorts(state: UpState): number[] {
  return [
    state.sa_port,
    state.sp_port,
    ...(state.sa_dashboard_port !== undefined ? [state.sa_dashboard_port] : []),
    ...state.sites.flatMap((s) => [
      s.ma_port,
      s.enrol_port,
      s.bundle_port,
      ...(s.dashboard_port !== undefined ? [s.dashboard_port] : []),
      ...s.nodes.map((n) => n.port),
    ]),
  ];
}

/** Gives a plan made before dashboards their ports (free ones, distinct from the plan's); true when it changed. */
export async function addDashboardPorts(state: UpState): Promise<boolean> {
  const taken = new Set(plannedPorts(state));
  const port = async (): Promise<number> => {
    for (;;) {
      const candidate = await freePort();
      if (!taken.has(candidate)) {
        taken.add(candidate);
        return candidate;
      }
    }
  };
  let changed = false;
  for (const site of state.sites) {
    if (site.dashboard_port === undefined) {
      site.dashboard_port = await port();
      changed = true;
    }
  }
  if (state.sa_dashboard_port === undefined) {
    state.sa_dashboard_port = await port();
    changed = true;
  }
  return changed;
}

/** Replaces a port of the plan (in place); false when the plan has no such port. */
export function replacePort(state: UpState, taken: number, fresh: number): boolean {
  if (state.sa_port === taken) return ((state.sa_port = fresh), true);
  if (state.sp_port === taken) return ((state.sp_port = fresh), true);
  if (state.sa_dashboard_port === taken) return ((state.sa_dashboard_port = fresh), true);
  for (const site of state.sites) {
    if (site.dashboard_port === taken) return ((site.dashboard_port = fresh), true);
    if (site.ma_port === taken) return ((site.ma_port = fresh), true);
    if (site.enrol_port === taken) return ((site.enrol_port = fresh), true);
    if (site.bundle_port === taken) return ((site.bundle_port = fresh), true);
    for (const n of site.nodes) if (n.port === taken) return ((n.port = fresh), true);
  }
  return false;
}

/** Reads the state file, or undefined when there is none. Throws when it is unreadable. */
export function readState(dir: string): UpState | undefined {
  const file = join(dir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(
      `${file} is not readable JSON (${(err as Error).message}); remove the directory ${dir} or choose another --dir`,
    );
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success)
    throw new InvalidArgumentError(
      `${file} is not a fedlab up state file (${parsed.error.issues[0]?.message ?? 'bad shape'}); remove ${dir} or choose another --dir`,
    );
  return parsed.data;
}

/** Writes the state file atomically (0600, never through a symbolic link). */
export function writeState(dir: string, state: UpState): void {
  writeOutputFile(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, replace: true });
}

/** Whether a directory is missing or empty (a fresh federation may be made there). */
export function isFreshDir(dir: string): boolean {
  return !existsSync(dir) || readdirSync(dir).length === 0;
}

/** Whether a process id is alive and is a `fedlab serve` of this directory. */
export function isOurProcess(pid: number, dir: string): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmd.includes('serve') && cmd.some((a) => a.startsWith(dir));
  } catch {
    return false;
  }
}

/** Parses `--sites`: known styles, each once, at least one. */
export function parseSites(value: string): SiteStyleName[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError('--sites needs at least one of planetlab, emulab, protogeni');
  const out: SiteStyleName[] = [];
  for (const n of names) {
    if (!(n in SITE_DOMAINS))
      throw new InvalidArgumentError(`--sites: unknown site style ${JSON.stringify(n)}; choose among planetlab, emulab, protogeni`);
    if (out.includes(n as SiteStyleName)) throw new InvalidArgumentError(`--sites names ${n} twice`);
    out.push(n as SiteStyleName);
  }
  return out;
}

/** Paths of one site's files. */
export function sitePaths(dir: string, domain: string) {
  const root = join(dir, domain);
  return {
    root,
    ca: join(root, 'ca'),
    bundle: join(root, 'bundle.json'),
    /** The domain's peers directory, shared by its services (beside the bundle). */
    peers: join(root, 'peers'),
    ma: join(root, 'ma'),
    admin: join(root, 'admin'),
    owner: join(root, 'owner'),
    maConfig: join(root, 'ma.json'),
    maData: join(root, 'ma-data'),
    /** Where the MA writes its dashboard's current one-time login link. */
    maDashboardLink: join(root, 'ma-dashboard-link'),
    nodes: join(root, 'nodes'),
  };
}

/** Paths of one node's files. */
export function nodePaths(dir: string, domain: string, name: string) {
  const root = join(sitePaths(dir, domain).nodes, name);
  return {
    root,
    key: join(root, 'key.pem'),
    cert: join(root, 'cert.pem'),
    ca: join(root, 'ca.pem'),
    ownerChain: join(root, 'owner-ma.chain'),
    config: join(root, 'nm.json'),
    data: join(root, 'data'),
  };
}

/** Paths of the slice authority's and service provider's files (in the home domain). */
export function homePaths(dir: string, home: string) {
  const root = join(dir, home);
  return {
    sa: join(root, 'sa'),
    saConfig: join(root, 'sa.json'),
    saData: join(root, 'sa-data'),
    /** Where the SA writes its dashboard's current one-time login link. */
    saDashboardLink: join(root, 'sa-dashboard-link'),
    sp: join(root, 'sp'),
    spConfig: join(root, 'sp.json'),
    spData: join(root, 'sp-data'),
    operator: join(root, 'operator'),
    member: join(root, 'member'),
  };
}

/** Log file of a service. */
export function logFile(dir: string, name: string): string {
  return join(dir, 'logs', `${name.replace(/[^a-z0-9.-]/gi, '-')}.log`);
}
