/**
 * The `process` driver, for machines without root or cgroups: a sliver is a
 * work directory and a long-lived marker process, and commands are plain child
 * processes of the node manager in that directory. It does NOT isolate: the
 * sliver's programs run as the node manager's user, see every process and
 * every file that user can, and resource limits are not enforced (only the
 * exec timeout, the output cap and the disk quota check apply). Every sliver
 * and the node say so (isolation PROCESS) so no one mistakes it for a container.
 */
import { spawn } from 'node:child_process';
import { FailedPreconditionError } from '../../core/errors.js';
import { assertSafeName } from '../names.js';
import { SLIVER_PATH } from '../runtime/oci-spec.js';
import { spawnAttached } from './attached.js';
import {
  checkHostOnlyImage,
  type AttachedCommand,
  type AttachSpec,
  type DriverSliver,
  type ExecChunk,
  type ExecSpec,
  type RuntimeRef,
  type SliverDriver,
  type SliverMeasure,
} from './driver.js';
import { streamProcess } from './exec-stream.js';
import { streamTerminal } from './exec-terminal.js';
import { findMarkedProcesses, INSTANCE_ENV, isSameProcessAlive, readStat, signalQuietly, SLIVER_ENV } from './procfs.js';
import type { WorkDirs } from './work-dirs.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Options of {@link ProcessDriver}. */
export interface ProcessDriverOptions {
  readonly workDirs: WorkDirs;
  readonly instance: string;
}

/** The process driver. */
export class ProcessDriver implements SliverDriver {
  readonly kind = 'process' as const;
  readonly description =
    'process: plain child processes in a work directory; NO isolation (same user, same namespaces, limits not enforced)';

  constructor(private readonly o: ProcessDriverOptions) {}

  async init(): Promise<void> {
    await this.o.workDirs.init();
  }

  workDir(name: string): string {
    return this.o.workDirs.path(name);
  }

  async provision(s: DriverSliver): Promise<void> {
    assertSafeName(s.name, 'sliver name');
    await this.o.workDirs.create(s.name);
  }

  private env(name: string): NodeJS.ProcessEnv {
    return { [INSTANCE_ENV]: this.o.instance, [SLIVER_ENV]: name };
  }

  async start(s: DriverSliver): Promise<RuntimeRef> {
    await this.provision(s);
    await this.stop(s, undefined);
    // The marker process stands for "running" and survives a node manager crash, to be adopted.
    const child = spawn('sleep', ['2147483647'], {
      detached: true,
      stdio: 'ignore',
      cwd: this.workDir(s.name),
      env: { PATH: SLIVER_PATH, ...this.env(s.name) },
    });
    child.unref();
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid as number));
      child.once('error', (err) =>
        reject(new FailedPreconditionError(`cannot start sliver ${s.name}: ${err.message}`, {}, { cause: err })),
      );
    });
    const st = await readStat(pid);
    if (!st) throw new FailedPreconditionError(`sliver ${s.name}'s process ended as soon as it started`);
    return { pid, startTicks: st.startTicks };
  }

  async isRunning(_s: DriverSliver, ref: RuntimeRef): Promise<boolean> {
    return isSameProcessAlive(ref.pid, ref.startTicks);
  }

  async stop(s: DriverSliver, ref: RuntimeRef | undefined): Promise<void> {
    if (ref && (await isSameProcessAlive(ref.pid, ref.startTicks))) signalQuietly(ref.pid, 'SIGKILL');
    await this.killMarked(s.name);
  }

  /** Kills every process carrying the sliver's marker, and waits (bounded) until they are gone. */
  private async killMarked(name: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const left = (await findMarkedProcesses(this.o.instance)).filter((p) => p.sliver === name);
      if (left.length === 0) return;
      for (const p of left) signalQuietly(p.pid, 'SIGKILL');
      await sleep(10);
    }
  }

  async destroy(name: string): Promise<void> {
    assertSafeName(name, 'sliver name');
    await this.killMarked(name);
    await this.o.workDirs.remove(name);
  }

  private commandEnv(s: DriverSliver, env: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
    return {
      PATH: SLIVER_PATH,
      HOME: this.workDir(s.name),
      LANG: 'C.UTF-8',
      ...env,
      ...this.env(s.name),
      FEDLAB_SLIVER_URN: s.urn,
      FEDLAB_SLICE_URN: s.sliceUrn,
    };
  }

  /** A plain child with piped streams, in the work directory (no isolation, like every command here). */
  async attach(s: DriverSliver, _ref: RuntimeRef, spec: AttachSpec): Promise<AttachedCommand> {
    const [program, ...args] = spec.argv as [string, ...string[]];
    return spawnAttached(program, args, { cwd: this.workDir(s.name), env: this.commandEnv(s, spec.env) });
  }

  exec(s: DriverSliver, _ref: RuntimeRef, spec: ExecSpec, signal: AbortSignal): AsyncIterable<ExecChunk> {
    const work = this.workDir(s.name);
    const [program, ...args] = spec.argv as [string, ...string[]];
    const env = this.commandEnv(s, spec.env);
    if (spec.tty) {
      // On a terminal too: a plain child of the node manager, nothing isolated.
      return streamTerminal(program, args, {
        cwd: work,
        env: { TERM: spec.tty.term ?? 'xterm', ...env },
        rows: spec.tty.rows,
        cols: spec.tty.cols,
        term: spec.env.TERM ?? spec.tty.term ?? 'xterm',
        ...(spec.stdin ? { stdin: spec.stdin } : {}),
        ...(spec.tty.control ? { control: spec.tty.control } : {}),
        timeoutMs: spec.timeoutMs,
        maxOutputBytes: spec.maxOutputBytes,
        signal,
      });
    }
    return streamProcess(program, args, {
      cwd: work,
      env,
      stdin: spec.stdin,
      timeoutMs: spec.timeoutMs,
      maxOutputBytes: spec.maxOutputBytes,
      signal,
    });
  }

  async measure(_s: DriverSliver): Promise<SliverMeasure | undefined> {
    return undefined;
  }

  async diskUsageBytes(name: string): Promise<number> {
    return this.o.workDirs.usageBytes(name);
  }

  images(): string[] {
    return ['host'];
  }

  checkImage(image: string): void {
    checkHostOnlyImage(this.kind, image);
  }

  async listArtifacts(): Promise<string[]> {
    const names = new Set<string>(await this.o.workDirs.list());
    for (const p of await findMarkedProcesses(this.o.instance)) names.add(p.sliver);
    return [...names];
  }

  async purge(): Promise<void> {
    for (const name of await this.listArtifacts()) await this.destroy(name);
  }

  async releaseIdle(): Promise<void> {
    // Nothing of the driver's own outlives its slivers: their work dirs are theirs.
  }
}
