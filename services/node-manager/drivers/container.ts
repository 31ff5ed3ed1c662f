/**
 * The `container` driver: real isolation with namespaces and cgroups (root only).
 *
 * Each sliver gets a cgroup (CPU quota, memory without swap, pids) and a
 * keeper process, PID 1 of its own PID, mount, UTS and IPC namespaces (and
 * optionally a network namespace), started inside the cgroup so everything it
 * forks is limited from birth. Commands run through `nsenter` into the
 * keeper's namespaces after joining the cgroup, then drop to the sliver's own
 * unprivileged uid with no capabilities and no_new_privs, so setuid programs
 * cannot win root back. Killing the keeper kills the whole namespace.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FailedPreconditionError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { assertSafeName } from '../names.js';
import type { Cgroups } from './cgroups.js';
import { JOIN_SCRIPT, KEEPER_SCRIPT } from './container-scripts.js';
import type { DriverSliver, ExecChunk, ExecSpec, RuntimeRef, SliverDriver, SliverMeasure } from './driver.js';
import { streamProcess } from './exec-stream.js';
import { childrenOf, findMarkedProcesses, INSTANCE_ENV, isSameProcessAlive, signalQuietly, SLIVER_ENV } from './procfs.js';
import type { WorkDirs } from './work-dirs.js';

/** The PATH sliver programs see. */
export const SLIVER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Options of {@link ContainerDriver}. */
export interface ContainerDriverOptions {
  readonly cgroups: Cgroups;
  readonly workDirs: WorkDirs;
  /** This node manager's instance id (the environment marker of its processes). */
  readonly instance: string;
  /** Give each sliver its own network namespace (loopback only) instead of the host's network. */
  readonly netNamespace: boolean;
  readonly log: Logger;
  /** How long a keeper may take to say it is ready. */
  readonly startTimeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The container driver. */
export class ContainerDriver implements SliverDriver {
  readonly kind = 'container' as const;
  readonly description: string;

  constructor(private readonly o: ContainerDriverOptions) {
    this.description = `container: own PID/mount/UTS/IPC${o.netNamespace ? '/network' : ''} namespaces, cgroup v${o.cgroups.version} CPU, memory (no swap) and pids limits, private work dir and /tmp, unprivileged uid`;
  }

  async init(): Promise<void> {
    await this.checkTraversable();
    await this.o.cgroups.init();
    await this.o.workDirs.init();
  }

  /**
   * Sliver users (unprivileged uids) must reach their work directory through
   * the directories above the data dir; inside a sliver the data dir itself is
   * replaced by a tmpfs, and /tmp and /var/tmp are private, so only what lies
   * above the data dir outside those matters.
   */
  private async checkTraversable(): Promise<void> {
    const dataDir = dirname(this.o.workDirs.root);
    if (/^\/(var\/)?tmp\//.test(dataDir)) return;
    for (let d = dirname(dataDir); ; d = dirname(d)) {
      const st = await stat(d);
      if ((st.mode & 0o001) === 0) {
        throw new FailedPreconditionError(
          `sliver users cannot traverse ${d} (mode ${(st.mode & 0o777).toString(8)}) to reach their work directories under ${dataDir}; run "chmod o+x ${d}" or choose a data_dir under /var/lib`,
        );
      }
      if (d === dirname(d)) return;
    }
  }

  workDir(name: string): string {
    return this.o.workDirs.path(name);
  }

  async provision(s: DriverSliver): Promise<void> {
    assertSafeName(s.name, 'sliver name');
    if (s.uid === undefined) throw new FailedPreconditionError(`sliver ${s.name} has no uid; the container driver runs every sliver under its own uid`);
    await this.o.cgroups.create(s.name, { cpuMillis: s.resources.cpuMillis, memMb: s.resources.memMb, pids: s.resources.pids });
    await this.o.workDirs.create(s.name, s.uid);
  }

  private markerEnv(name: string): NodeJS.ProcessEnv {
    return { [INSTANCE_ENV]: this.o.instance, [SLIVER_ENV]: name };
  }

  async start(s: DriverSliver): Promise<RuntimeRef> {
    await this.provision(s);
    // A keeper left from an earlier start would hold the old namespaces: start from an empty cgroup.
    await this.o.cgroups.killAll(s.name);
    const work = this.workDir(s.name);
    const tmpMb = String(Math.max(16, s.resources.memMb));
    const unshare = ['unshare', '--fork', '--pid', '--mount', '--uts', '--ipc', ...(this.o.netNamespace ? ['--net'] : []), '--mount-proc', '--'];
    const keeper = ['/bin/sh', '-c', KEEPER_SCRIPT, 'fedlab-keeper', work, s.name, dirname(this.o.workDirs.root), tmpMb, this.o.netNamespace ? 'net' : 'host'];
    const child = spawn('/bin/sh', ['-c', JOIN_SCRIPT, 'fedlab-join', ...this.o.cgroups.procsFiles(s.name), '--', ...unshare, ...keeper], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: SLIVER_PATH, ...this.markerEnv(s.name) },
    });
    // The keeper outlives this process on purpose: a restarted node manager adopts it.
    child.unref();
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const timeoutMs = this.o.startTimeoutMs ?? 10_000;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new FailedPreconditionError(`the keeper of sliver ${s.name} did not start within ${timeoutMs} ms`)), timeoutMs);
        const check = (): void => {
          if (stdout.includes('ready\n')) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on('data', check);
        child.on('error', (err) => {
          clearTimeout(timer);
          reject(new FailedPreconditionError(`cannot start the keeper of sliver ${s.name}: ${err.message}`, {}, { cause: err }));
        });
        child.on('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new FailedPreconditionError(`the keeper of sliver ${s.name} failed to start (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
        });
      });
      if (child.pid === undefined) throw new FailedPreconditionError(`the keeper of sliver ${s.name} has no pid`);
      // unshare --fork waits for its child, the namespace's PID 1: that child is the keeper.
      let keeper: RuntimeRef | undefined;
      for (let i = 0; i < 200 && !keeper; i++) {
        const kids = await childrenOf(child.pid);
        if (kids[0]) keeper = { pid: kids[0].pid, startTicks: kids[0].startTicks };
        else await sleep(5);
      }
      if (!keeper) throw new FailedPreconditionError(`the keeper of sliver ${s.name} said ready but cannot be found`);
      return keeper;
    } catch (err) {
      await this.o.cgroups.killAll(s.name).catch(() => undefined);
      throw err;
    } finally {
      child.stdout.destroy();
      child.stderr.destroy();
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
    }
  }

  async isRunning(s: DriverSliver, ref: RuntimeRef): Promise<boolean> {
    return this.o.cgroups.exists(s.name) && (await isSameProcessAlive(ref.pid, ref.startTicks));
  }

  async stop(s: DriverSliver, ref: RuntimeRef | undefined): Promise<void> {
    // PID 1 dying takes the whole namespace with it; the cgroup sweep catches what is outside (nsenter, unshare).
    if (ref && (await isSameProcessAlive(ref.pid, ref.startTicks))) signalQuietly(ref.pid, 'SIGKILL');
    if (this.o.cgroups.exists(s.name)) await this.o.cgroups.killAll(s.name);
    await this.killMarked(s.name);
  }

  async destroy(name: string): Promise<void> {
    assertSafeName(name, 'sliver name');
    await this.o.cgroups.remove(name);
    await this.killMarked(name);
    await this.o.workDirs.remove(name);
  }

  /** Kills processes that carry the sliver's marker but escaped its cgroup (none should). */
  private async killMarked(name: string): Promise<void> {
    for (const p of await findMarkedProcesses(this.o.instance)) if (p.sliver === name) signalQuietly(p.pid, 'SIGKILL');
  }

  exec(s: DriverSliver, ref: RuntimeRef, spec: ExecSpec, signal: AbortSignal): AsyncIterable<ExecChunk> {
    const work = this.workDir(s.name);
    const uid = String(s.uid);
    const enter = ['nsenter', '-t', String(ref.pid), '-p', '-m', '-u', '-i', ...(this.o.netNamespace ? ['-n'] : []), `--wdns=${work}`, '--'];
    const drop = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--no-new-privs', '--bounding-set=-all', '--'];
    const env: NodeJS.ProcessEnv = {
      PATH: SLIVER_PATH,
      HOME: work,
      LANG: 'C.UTF-8',
      ...spec.env,
      ...this.markerEnv(s.name),
      FEDLAB_SLIVER_URN: s.urn,
      FEDLAB_SLICE_URN: s.sliceUrn,
    };
    return streamProcess('/bin/sh', ['-c', JOIN_SCRIPT, 'fedlab-join', ...this.o.cgroups.procsFiles(s.name), '--', ...enter, ...drop, ...spec.argv], {
      env,
      stdin: spec.stdin,
      timeoutMs: spec.timeoutMs,
      maxOutputBytes: spec.maxOutputBytes,
      signal,
    });
  }

  async measure(s: DriverSliver): Promise<SliverMeasure | undefined> {
    if (!this.o.cgroups.exists(s.name)) return undefined;
    return this.o.cgroups.stats(s.name);
  }

  async diskUsageBytes(name: string): Promise<number> {
    return this.o.workDirs.usageBytes(name);
  }

  async listArtifacts(): Promise<string[]> {
    const names = new Set<string>([...(await this.o.cgroups.list()), ...(await this.o.workDirs.list())]);
    for (const p of await findMarkedProcesses(this.o.instance)) names.add(p.sliver);
    return [...names];
  }

  async purge(): Promise<void> {
    for (const name of await this.listArtifacts()) await this.destroy(name);
    await this.o.cgroups.removeInstance();
  }
}
