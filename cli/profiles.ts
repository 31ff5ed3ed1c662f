/**
 * Profiles: named sets of the addresses and files a `fedlab` command that calls a service would
 * otherwise repeat (`--sa`, `--sp`, `--ma`, `--tls-dir`, `--chain`, the URN pins). They live in one
 * small JSON file, `$XDG_CONFIG_HOME/fedlab/profiles.json` (`~/.config/fedlab/profiles.json` when
 * XDG_CONFIG_HOME is unset or not absolute):
 *
 * ```json
 * { "version": 1, "profiles": { "local": { "sa": "127.0.0.1:7001", "tls_dir": "/abs/dir", "chains": ["/abs/sa.chain"] } } }
 * ```
 *
 * The file is written whole and atomically, mode 0600, never through a symbolic link (see
 * certs/output-file.ts); a symbolic link at its place is refused when reading too. Paths are kept
 * absolute, so a profile works from any folder.
 *
 * Nothing here reads the environment: the entry (cli/main.ts) turns it into a {@link ProfileLocation}
 * with {@link profileLocation} and passes that down.
 */
import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { writeOutputFile } from '../certs/output-file.js';
import { InvalidArgumentError } from '../services/core/errors.js';

/** One profile: every field optional; a command takes what it has flags for. */
export interface Profile {
  /** The slice authority's address (host:port). */
  readonly sa?: string;
  /** Pin the slice authority's certificate to this URN. */
  readonly saUrn?: string;
  /** The service provider's address. */
  readonly sp?: string;
  readonly spUrn?: string;
  /** A management authority's (a site's aggregate's) address. */
  readonly ma?: string;
  readonly maUrn?: string;
  /** Directory with key.pem, cert.pem and ca.pem (absolute). */
  readonly tlsDir?: string;
  /** Credential chain files (absolute); the first is the default `--chain` of `fedlab am`. */
  readonly chains?: readonly string[];
  /** CA certificates to trust (a PEM file, absolute): the default `--ca` (e.g. every peered domain's CA). */
  readonly ca?: string;
  /** A slice credential chain file (absolute): the default `--chain` of `fedlab sliver` (a member's). */
  readonly sliverChain?: string;
}

/** Where the profiles file is: from the environment's XDG_CONFIG_HOME and HOME, read by the entry only. */
export interface ProfileLocation {
  /** XDG_CONFIG_HOME (used only when absolute, as the XDG spec says). */
  readonly configHome?: string;
  /** The home directory (default: the OS's idea of it). */
  readonly home?: string;
}

/** Options of {@link writeProfile}. */
export interface WriteProfileOptions extends ProfileLocation {
  /** Replace a profile of the same name (without it an existing name is refused). */
  readonly replace?: boolean;
}

/** The file's JSON form of a profile (snake_case, as Fedlab's config files). */
interface ProfileJson {
  sa?: string;
  sa_urn?: string;
  sp?: string;
  sp_urn?: string;
  ma?: string;
  ma_urn?: string;
  tls_dir?: string;
  chains?: string[];
  ca?: string;
  sliver_chain?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The location from an environment (the entry passes `process.env`). */
export function profileLocation(env: Readonly<Record<string, string | undefined>>): ProfileLocation {
  return { ...(env.XDG_CONFIG_HOME ? { configHome: env.XDG_CONFIG_HOME } : {}), ...(env.HOME ? { home: env.HOME } : {}) };
}

/** The profiles file's path. */
export function profilesFile(location: ProfileLocation = {}): string {
  const base = location.configHome && isAbsolute(location.configHome) ? location.configHome : join(location.home ?? homedir(), '.config');
  return join(base, 'fedlab', 'profiles.json');
}

/** Throws unless `name` is a profile name (letters, digits, `.`, `_`, `-`; at most 64). */
export function checkProfileName(name: string): string {
  if (!NAME.test(name))
    throw new InvalidArgumentError(
      `a profile name is 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got ${JSON.stringify(name)}`,
    );
  return name;
}

function toJson(p: Profile): ProfileJson {
  const out: ProfileJson = {};
  if (p.sa) out.sa = p.sa;
  if (p.saUrn) out.sa_urn = p.saUrn;
  if (p.sp) out.sp = p.sp;
  if (p.spUrn) out.sp_urn = p.spUrn;
  if (p.ma) out.ma = p.ma;
  if (p.maUrn) out.ma_urn = p.maUrn;
  if (p.tlsDir) out.tls_dir = resolve(p.tlsDir);
  if (p.chains?.length) out.chains = p.chains.map((c) => resolve(c));
  if (p.ca) out.ca = resolve(p.ca);
  if (p.sliverChain) out.sliver_chain = resolve(p.sliverChain);
  return out;
}

function str(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new InvalidArgumentError(`${what} must be a string`);
  return v;
}

function fromJson(j: unknown, where: string): Profile {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new InvalidArgumentError(`${where} must be an object`);
  const o = j as Record<string, unknown>;
  const chains = o.chains;
  if (chains !== undefined && (!Array.isArray(chains) || chains.some((c) => typeof c !== 'string')))
    throw new InvalidArgumentError(`${where}.chains must be a list of file names`);
  const fields: [keyof Profile, string][] = [
    ['sa', 'sa'],
    ['saUrn', 'sa_urn'],
    ['sp', 'sp'],
    ['spUrn', 'sp_urn'],
    ['ma', 'ma'],
    ['maUrn', 'ma_urn'],
    ['tlsDir', 'tls_dir'],
    ['ca', 'ca'],
    ['sliverChain', 'sliver_chain'],
  ];
  const p: Record<string, unknown> = {};
  for (const [key, json] of fields) {
    const v = str(o[json], `${where}.${json}`);
    if (v !== undefined) p[key] = v;
  }
  if (chains !== undefined) p.chains = [...(chains as string[])];
  return p as Profile;
}

/** Every profile in the file (none when it does not exist); a symbolic link or a malformed file is refused. */
export function readProfiles(location: ProfileLocation = {}): Record<string, Profile> {
  const file = profilesFile(location);
  let st;
  try {
    st = lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  if (st.isSymbolicLink())
    throw new InvalidArgumentError(`${file} is a symbolic link; fedlab never reads or writes its profiles through one`, {
      rule: 'symlink',
    });
  if (!st.isFile()) throw new InvalidArgumentError(`${file} is not a regular file`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`${file} is not valid JSON (${(err as Error).message})`);
  }
  const profiles = (parsed as { profiles?: unknown } | null)?.profiles;
  if (typeof profiles !== 'object' || profiles === null || Array.isArray(profiles))
    throw new InvalidArgumentError(`${file} must hold {"version": 1, "profiles": {...}}`);
  const out: Record<string, Profile> = {};
  for (const [name, p] of Object.entries(profiles as Record<string, unknown>)) out[name] = fromJson(p, `${file}: profiles.${name}`);
  return out;
}

/** One profile by name; an unknown name is bad input naming the file. */
export function loadProfile(name: string, location: ProfileLocation = {}): Profile {
  const all = readProfiles(location);
  const p = Object.hasOwn(all, name) ? all[name] : undefined;
  if (!p)
    throw new InvalidArgumentError(
      `no profile named ${JSON.stringify(name)} in ${profilesFile(location)}; add one with \`fedlab profile add ${name} …\` or list them with \`fedlab profile ls\``,
    );
  return p;
}

function save(all: Record<string, Profile>, location: ProfileLocation): string {
  const file = profilesFile(location);
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  const profiles: Record<string, ProfileJson> = {};
  for (const name of Object.keys(all).sort()) profiles[name] = toJson(all[name] as Profile);
  return writeOutputFile(file, `${JSON.stringify({ version: 1, profiles }, null, 2)}\n`, { mode: 0o600, replace: true });
}

/**
 * Adds (or with `replace`, replaces) the profile `name` and rewrites the file atomically (0600).
 * Relative paths are made absolute against the current directory. Returns the file's path.
 * `fedlab up` calls this for the federation it starts.
 */
export function writeProfile(name: string, profile: Profile, options: WriteProfileOptions = {}): string {
  checkProfileName(name);
  const all = readProfiles(options);
  if (Object.hasOwn(all, name) && !options.replace)
    throw new InvalidArgumentError(`a profile named ${name} exists in ${profilesFile(options)}; pass --force to replace it`, {
      rule: 'exists',
    });
  all[name] = profile;
  return save(all, options);
}

/** Removes the profile `name`; returns whether there was one. */
export function removeProfile(name: string, location: ProfileLocation = {}): boolean {
  const all = readProfiles(location);
  if (!Object.hasOwn(all, name)) return false;
  delete all[name];
  save(all, location);
  return true;
}

/** A profile in the file's JSON form (snake_case, absolute paths), as `profile show --json` prints it. */
export function profileJson(profile: Profile): Record<string, unknown> {
  return { ...toJson(profile) };
}
