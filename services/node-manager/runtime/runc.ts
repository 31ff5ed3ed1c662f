/**
 * runc, driven by its command line: always by absolute path, with its own
 * `--root` under the node's data directory, with a fixed, clean environment,
 * and with every value passed as a separate argument (never through a shell).
 * Nothing a caller sends is looked up or run on the host.
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { FailedPreconditionError } from '../../core/errors.js';
import { assertSafeName } from '../names.js';

/** The environment of every program the container runtime starts on the host: nothing of the node manager's or a caller's. */
export const HOST_TOOL_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' });

/** Where runc is looked for when the config names none. */
export const RUNC_PATHS = ['/usr/bin/runc', '/usr/sbin/runc', '/usr/local/bin/runc', '/usr/local/sbin/runc'] as const;

/** Oldest runc the driver is tested with. */
export const MIN_RUNC = [1, 1] as const;

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
    return { ok: false, reason: `the container driver needs runc ${MIN_RUNC.join('.')} or newer (not found at ${candidates.join(', ')}); install it: apt-get install runc` };
  }
  return { ok: true, path, version: '' };
}

/** Parses `runc --version` output ("runc version 1.1.5+ds1 ..."). */
export function parseRuncVersion(text: string): [number, number, number] | undefined {
  const m = /runc version (\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
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

  /** `runc --version`, checked against {@link MIN_RUNC}. */
  async version(): Promise<string> {
    const text = await new Promise<string>((resolve, reject) =>
      execFile(this.binary, ['--version'], { env: HOST_TOOL_ENV, timeout: 10_000 }, (err, out) => (err ? reject(new RuncError('--version', err.message)) : resolve(out))),
    );
    const v = parseRuncVersion(text);
    if (!v) throw new FailedPreconditionError(`cannot tell the version of ${this.binary} from "${text.trim().split('\n')[0]}"; install runc ${MIN_RUNC.join('.')} or newer: apt-get install runc`);
    if (v[0] < MIN_RUNC[0] || (v[0] === MIN_RUNC[0] && v[1] < MIN_RUNC[1])) {
      throw new FailedPreconditionError(`runc ${v.join('.')} at ${this.binary} is too old: the container driver needs ${MIN_RUNC.join('.')} or newer (apt-get install runc)`);
    }
    return v.join('.');
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
        else reject(new RuncError('create', lastLogError(logFile) ?? (signal ? `killed by ${signal} after ${timeoutMs} ms` : `exit ${code}`)));
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
    return [...this.globalArgs(), 'exec', ...(o.tty ? ['--tty'] : []), ...(o.pidFile ? ['--pid-file', o.pidFile] : []), '--process', processFile, id];
  }
}
