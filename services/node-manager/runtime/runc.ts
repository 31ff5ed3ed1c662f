/**
 * runc, driven by its command line: always by absolute path, with its own
 * `--root` under the node's data directory, with a fixed, clean environment,
 * and with every value passed as a separate argument (never through a shell).
 * Nothing a caller sends is looked up or run on the host.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { FailedPreconditionError } from '../../core/errors.js';
import { assertSafeName } from '../names.js';

/** The environment of every program the container runtime starts on the host: nothing of the node manager's or a caller's. */
export const HOST_TOOL_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' });

/** Where runc is looked for when the config names none. */
export const RUNC_PATHS = ['/usr/bin/runc', '/usr/sbin/runc', '/usr/local/bin/runc', '/usr/local/sbin/runc'] as const;

/**
 * Oldest upstream runc the driver runs: 1.1.0 to 1.1.11 leak a host file
 * descriptor into the container (CVE-2024-21626), through which a process
 * whose working directory is /proc/self/fd/<n> reaches the host's files.
 */
export const MIN_RUNC = [1, 1, 12] as const;
/** Oldest runc at all (older builds lack what the driver uses), even with the fix backported. */
const OLDEST_RUNC = [1, 1, 0] as const;
/** Distribution builds older than {@link MIN_RUNC} that carry the fix: package version → first fixed `+debNuM` revision. */
export const FIXED_DEBIAN_BUILDS: Readonly<Record<string, { deb: number; update: number }>> = { '1.1.5+ds1-1': { deb: 12, update: 1 } };
/** The Debian package's changelog: a distribution build whose first entry is its version and that names the CVE carries the fix. */
export const RUNC_CHANGELOG = '/usr/share/doc/runc/changelog.Debian.gz';
/** What to install, said whenever runc is missing, too old or unfixed. */
const INSTALL_RUNC =
  'install runc 1.1.12 or newer, or on Debian 12 the security update 1.1.5+ds1-1+deb12u1 or later (bookworm-security in the apt sources, then apt-get update && apt-get install runc)';

/** What `runc state` says about a container. */
export interface RuncState {
  readonly id: string;
  readonly pid: number;
  readonly status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  readonly bundle: string;
}

/** A runc command that failed, with runc's own message. */
export class RuncError extends Error {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(`runc ${command}: ${message}`);
    this.name = 'RuncError';
  }
}

/** Finds runc (the configured path, or the usual places) and checks its version; the reason says what to install. */
export function findRunc(configured?: string): { ok: true; path: string; version: string } | { ok: false; reason: string } {
  const candidates = configured ? [configured] : [...RUNC_PATHS];
  const path = candidates.find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!path) {
    return {
      ok: false,
      reason: `the container driver needs runc ${MIN_RUNC.join('.')} or newer (not found at ${candidates.join(', ')}); ${INSTALL_RUNC}`,
    };
  }
  let text: string;
  try {
    text = execFileSync(path, ['--version'], { env: HOST_TOOL_ENV, timeout: 10_000, encoding: 'utf8' });
  } catch (err) {
    return { ok: false, reason: `cannot run ${path} --version: ${(err as Error).message}` };
  }
  const verdict = judgeRuncVersion(text, path, readChangelog());
  return verdict.ok ? { ok: true, path, version: verdict.version } : verdict;
}

/** The Debian changelog's text, when the package is installed. */
function readChangelog(): string | undefined {
  try {
    return gunzipSync(readFileSync(RUNC_CHANGELOG)).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Parses `runc --version` output ("runc version 1.1.5+ds1 ..."). */
export function parseRuncVersion(text: string): [number, number, number] | undefined {
  const m = /runc version (\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

const atLeast = (v: readonly number[], min: readonly number[]): boolean => {
  for (let i = 0; i < min.length; i++) if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > (min[i] as number);
  return true;
};

/**
 * Whether the runc that printed `text` (`runc --version`) is safe to run: at
 * least {@link MIN_RUNC}, or a distribution build of 1.1.x known to carry the
 * CVE-2024-21626 fix — by its package version on the `commit:` line (e.g.
 * `1.1.5+ds1-1+deb12u1`), or by the package changelog (whose first entry is
 * that version) naming the CVE. Otherwise the reason says what to install.
 */
export function judgeRuncVersion(
  text: string,
  path: string,
  changelog?: string,
): { ok: true; version: string } | { ok: false; reason: string } {
  const v = parseRuncVersion(text);
  if (!v) return { ok: false, reason: `cannot tell the version of ${path} from "${text.trim().split('\n')[0] ?? ''}"; ${INSTALL_RUNC}` };
  const shown = v.join('.');
  if (!atLeast(v, OLDEST_RUNC)) return { ok: false, reason: `runc ${shown} at ${path} is too old: ${INSTALL_RUNC}` };
  if (atLeast(v, MIN_RUNC)) return { ok: true, version: shown };
  const build = /^commit:\s*(\S+)\s*$/m.exec(text)?.[1] ?? '';
  const deb = /^(.+)\+deb(\d+)u(\d+)$/.exec(build);
  const fixed = deb ? FIXED_DEBIAN_BUILDS[deb[1] as string] : undefined;
  if (deb && fixed && Number(deb[2]) === fixed.deb && Number(deb[3]) >= fixed.update)
    return { ok: true, version: `${shown} (${build}, CVE-2024-21626 fixed)` };
  // A distribution build (a package version, not a git commit) whose installed changelog lists the fix.
  if (/^\d[\w.+~]*-[\w.+~]+$/.test(build) && changelog) {
    const first = /^runc \(([^)]+)\)/.exec(changelog)?.[1];
    if (first === build && /CVE-2024-21626/.test(changelog))
      return { ok: true, version: `${shown} (${build}, CVE-2024-21626 fixed per ${RUNC_CHANGELOG})` };
  }
  return {
    ok: false,
    reason: `runc ${shown}${build ? ` (${build})` : ''} at ${path} is open to CVE-2024-21626 (a container reaches the host's files through a leaked file descriptor); ${INSTALL_RUNC}`,
  };
}

/** The last error message runc wrote to its JSON log. */
function lastLogError(logFile: string | undefined): string | undefined {
  if (!logFile || !existsSync(logFile)) return undefined;
  let msg: string | undefined;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if (entry.level === 'error' && entry.msg) msg = entry.msg;
    } catch {
      // Not a JSON line.
    }
  }
  return msg;
}

/** One runc state directory. */
export class Runc {
  constructor(
    /** Absolute path of the runc binary. */
    readonly binary: string,
    /** runc's --root: its state directory for this node manager. */
    readonly root: string,
  ) {
    if (!binary.startsWith('/')) throw new FailedPreconditionError(`runc must be given by absolute path, not ${binary}`);
  }

  /** The arguments before every command. */
  globalArgs(logFile?: string): string[] {
    return ['--root', this.root, ...(logFile ? ['--log', logFile, '--log-format', 'json'] : [])];
  }

  /** Runs one runc command to its end; stdout on success, a RuncError with runc's message otherwise. */
  run(args: readonly string[], o: { logFile?: string; timeoutMs?: number } = {}): Promise<string> {
    const command = args[0] ?? '';
    return new Promise((resolve, reject) => {
      execFile(
        this.binary,
        [...this.globalArgs(o.logFile), ...args],
        { env: HOST_TOOL_ENV, timeout: o.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const msg = lastLogError(o.logFile) ?? (stderr.trim().split('\n').pop() || err.message);
          reject(new RuncError(command, msg));
        },
      );
    });
  }

  /** `runc --version`, judged by {@link judgeRuncVersion}: a runc open to CVE-2024-21626 is refused, saying what to install. */
  async version(): Promise<string> {
    const text = await new Promise<string>((resolve, reject) =>
      execFile(this.binary, ['--version'], { env: HOST_TOOL_ENV, timeout: 10_000 }, (err, out) =>
        err ? reject(new RuncError('--version', err.message)) : resolve(out),
      ),
    );
    const verdict = judgeRuncVersion(text, this.binary, readChangelog());
    if (!verdict.ok) throw new FailedPreconditionError(verdict.reason);
    return verdict.version;
  }

  /**
   * `runc create`: the container's init waits, its stdio on /dev/null (it
   * must hold no pipe of ours open); errors are read from runc's JSON log.
   */
  create(id: string, bundle: string, logFile: string, timeoutMs = 30_000, pidFile?: string): Promise<void> {
    assertSafeName(id, 'container id');
    return new Promise((resolve, reject) => {
      const args = [...this.globalArgs(logFile), 'create', '--bundle', bundle, ...(pidFile ? ['--pid-file', pidFile] : []), id];
      const child = spawn(this.binary, args, { env: HOST_TOOL_ENV, stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new RuncError('create', err.message));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else
          reject(new RuncError('create', lastLogError(logFile) ?? (signal ? `killed by ${signal} after ${timeoutMs} ms` : `exit ${code}`)));
      });
    });
  }

  async start(id: string): Promise<void> {
    await this.run(['start', id]);
  }

  /** The container's state, or undefined when runc knows no such container. */
  async state(id: string): Promise<RuncState | undefined> {
    assertSafeName(id, 'container id');
    try {
      return JSON.parse(await this.run(['state', id])) as RuncState;
    } catch (err) {
      if (err instanceof RuncError && /does not exist|not exist|no such/i.test(err.message)) return undefined;
      throw err;
    }
  }

  /** Every container of this root. */
  async list(): Promise<RuncState[]> {
    if (!existsSync(this.root)) return [];
    const out = (await this.run(['list', '--format', 'json'])).trim();
    if (!out || out === 'null') return [];
    return JSON.parse(out) as RuncState[];
  }

  /** Sends a signal to the container's init (with `all`, to every process of it). */
  async kill(id: string, signal: string, all = false): Promise<void> {
    await this.run(['kill', ...(all ? ['--all'] : []), id, signal]);
  }

  /** Deletes the container (force: kills it first). Deleting one runc does not know succeeds. */
  async delete(id: string, force = true): Promise<void> {
    assertSafeName(id, 'container id');
    try {
      await this.run(['delete', ...(force ? ['--force'] : []), id]);
    } catch (err) {
      if (err instanceof RuncError && /does not exist|not exist|no such/i.test(err.message)) return;
      throw err;
    }
  }

  /** The argv (after the binary) of `runc exec` of a process file; `tty` for a terminal. */
  execArgs(id: string, processFile: string, o: { tty?: boolean; pidFile?: string } = {}): string[] {
    assertSafeName(id, 'container id');
    return [
      ...this.globalArgs(),
      'exec',
      ...(o.tty ? ['--tty'] : []),
      ...(o.pidFile ? ['--pid-file', o.pidFile] : []),
      '--process',
      processFile,
      id,
    ];
  }
}
