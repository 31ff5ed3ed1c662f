/**
 * The `container` driver: every sliver is an OCI container run by runc (root
 * only), one bundle per sliver under the node's data directory and runc's
 * state under `<data_dir>/runc`. The container has a user namespace over the
 * sliver's own id range, its own PID, mount, UTS, IPC, network and cgroup
 * namespaces, no_new_privs, the default capability set, the seccomp profile,
 * a devices cgroup and the sliver's CPU, memory, pids and block IO limits (see
 * oci-spec.ts). Commands run through `runc exec` with the process given as
 * OCI process JSON: nothing of the caller's is run or looked up on the host.
 * Containers outlive the node manager on purpose; a restarted one adopts them.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { assertSafeName } from '../names.js';
import type { IdRange } from '../runtime/id-ranges.js';
import { imageName, parseImageName, type ImageStore } from '../runtime/images.js';
import { ociProcess, sliverSpec, SLIVER_PATH, type ProcessSpec, type SliverRlimits } from '../runtime/oci-spec.js';
import { HOST_TOOL_ENV, type Runc } from '../runtime/runc.js';
import { sliverSeccomp } from '../runtime/seccomp.js';
import { INIT_PATH, SLIVER_HOME, type SliverFiles } from '../runtime/sliver-files.js';
import type { Cgroups } from './cgroups.js';
import { spawnAttached } from './attached.js';
import type {
  AttachedCommand,
  AttachSpec,
  DriverSliver,
  ExecChunk,
  ExecSpec,
  ExecTty,
  RuntimeRef,
  SliverDriver,
  SliverMeasure,
} from './driver.js';
import { ExecPid } from './exec-pid.js';
import { streamProcess } from './exec-stream.js';
import { streamTerminal } from './exec-terminal.js';
import { isSameProcessAlive, readStat, signalQuietly } from './procfs.js';
import { checkTerminalSize } from './terminal-control.js';

export { SLIVER_PATH } from '../runtime/oci-spec.js';

/** The first process of every sliver: a shell loop that reaps orphans (PID 1's duty) and otherwise sleeps. */
const KEEPER: readonly string[] = [INIT_PATH, 'sh', '-c', `trap '' HUP; while :; do ${INIT_PATH} sleep 2147483647 & wait $!; done`];

/** A sliver as the container driver is given it: with the sliver network's hook when the node has one. */
export interface ContainerSliver extends DriverSliver {
  /**
   * Runs after `runc create`, before `runc start`: the container's namespaces exist (its network namespace is
   * `/proc/<pid>/ns/net`) and nothing of the sliver runs yet. The sliver network wires its interfaces here
   * (network/networked-driver.ts); a failure fails the start and removes the container.
   */
  readonly onCreated?: (initPid: number) => Promise<void>;
}

/** Options of {@link ContainerDriver}. */
export interface ContainerDriverOptions {
  readonly runc: Runc;
  readonly files: SliverFiles;
  readonly images: ImageStore;
  readonly cgroups: Cgroups;
  readonly rlimits: SliverRlimits;
  readonly log: Logger;
  /** How long runc may take to create and start a container. */
  readonly startTimeoutMs?: number;
  /** A static busybox on the host, run in a sliver's network namespace as the relay of a forwarded connection. */
  readonly relay?: string;
}

/** The container driver. */
export class ContainerDriver implements SliverDriver {
  readonly kind = 'container' as const;
  readonly description: string;
  private blkioWeight = false;

  constructor(private readonly o: ContainerDriverOptions) {
    this.description = `container (runc): user namespace with its own id range; own PID, mount, UTS, IPC, network and cgroup namespaces; seccomp; default capabilities only; no_new_privs; cgroup v${o.cgroups.version} CPU, memory (no swap), pids and devices limits; own root file system`;
  }

  async init(): Promise<void> {
    const version = await this.o.runc.version();
    await mkdir(this.o.runc.root, { recursive: true, mode: 0o700 });
    await this.o.files.setup();
    await this.o.images.init();
    await this.o.cgroups.init();
    // Loads and checks the profile now: a broken one stops start-up, not a create.
    sliverSeccomp();
    this.blkioWeight = this.o.cgroups.hasBlkioWeight();
    this.o.log.debug({ runc: this.o.runc.binary, version, blkioWeight: this.blkioWeight }, 'container runtime ready');
  }

  /** The sliver's home inside it: where its commands start. */
  workDir(): string {
    return SLIVER_HOME;
  }

  images(): string[] {
    return this.o.images.list();
  }

  checkImage(image: string): void {
    this.o.images.check(parseImageName(image));
  }

  private idsOf(s: DriverSliver): IdRange {
    if (!s.ids) throw new FailedPreconditionError(`sliver ${s.name} has no user id range; delete it and create it again`);
    return s.ids;
  }

  /** Writes the bundle (root file system ready, config.json replaced whole). Idempotent. */
  async provision(s: DriverSliver): Promise<void> {
    assertSafeName(s.name, 'sliver name');
    const ids = this.idsOf(s);
    const root = await this.o.files.prepare(s.name, parseImageName(s.image ?? ''), ids);
    const spec = sliverSpec({
      hostname: s.name,
      ids,
      resources: s.resources,
      cgroupsPath: this.o.cgroups.runcPath(s.name),
      rootfs: root.rootfs,
      rootReadonly: root.readonly,
      mounts: root.mounts,
      init: { args: KEEPER, env: [`PATH=${SLIVER_PATH}`], cwd: '/' },
      seccomp: sliverSeccomp(),
      rlimits: this.o.rlimits,
      blkioWeight: this.blkioWeight,
      cgroupVersion: this.o.cgroups.version,
    });
    // A crash mid-write leaves the old file or a stray temporary one, never half a config.
    const dir = this.o.files.dir(s.name);
    const tmp = join(dir, `config.json.${randomBytes(4).toString('hex')}`);
    await writeFile(tmp, JSON.stringify(spec), { mode: 0o600 });
    await rename(tmp, join(dir, 'config.json'));
  }

  async start(s: ContainerSliver): Promise<RuntimeRef> {
    const dir = this.o.files.dir(s.name);
    // The sliver manager provisions before every first start; a later start (restart, recovery) reuses the bundle.
    if (!existsSync(join(dir, 'config.json'))) await this.provision(s);
    // A container left from an earlier start (stopped, or half-created by a crash) goes first: one container per sliver.
    if (existsSync(join(this.o.runc.root, s.name))) await this.o.runc.delete(s.name, true);
    const log = join(dir, 'runc.log');
    const pidFile = join(dir, 'init.pid');
    await rm(log, { force: true });
    await rm(pidFile, { force: true });
    try {
      await this.o.runc.create(s.name, dir, log, this.o.startTimeoutMs ?? 30_000, pidFile);
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      if (s.onCreated) await s.onCreated(pid);
      await this.o.runc.start(s.name);
      const stat = Number.isSafeInteger(pid) && pid > 0 ? await readStat(pid) : undefined;
      if (!stat || stat.state === 'Z') throw new FailedPreconditionError(`the container of sliver ${s.name} exited right after its start`);
      return { pid, startTicks: stat.startTicks };
    } catch (err) {
      await this.o.runc.delete(s.name, true).catch(() => undefined);
      if (err instanceof FailedPreconditionError) throw err;
      throw new FailedPreconditionError(`cannot start the container of sliver ${s.name}: ${(err as Error).message}`, {}, { cause: err });
    }
  }

  async isRunning(_s: DriverSliver, ref: RuntimeRef): Promise<boolean> {
    return isSameProcessAlive(ref.pid, ref.startTicks);
  }

  async stop(s: DriverSliver, _ref: RuntimeRef | undefined): Promise<void> {
    // delete --force kills every process of the container (its init first: the PID namespace goes with it).
    await this.o.runc.delete(s.name, true);
  }

  async destroy(name: string): Promise<void> {
    assertSafeName(name, 'sliver name');
    await this.o.runc.delete(name, true);
    await this.o.files.remove(name);
    // runc removes the cgroups it made; one left by a crash between mkdir and delete goes here.
    await this.o.cgroups.remove(name);
  }

  exec(s: DriverSliver, ref: RuntimeRef, spec: ExecSpec, signal: AbortSignal): AsyncIterable<ExecChunk> {
    return this.execStream(s, ref, spec, signal);
  }

  /**
   * `runc exec` in the foreground. runc starts the command in a session of
   * its own, out of reach of a kill of runc's process group: on timeout,
   * cancellation or too much output the command's session is killed too, found
   * through runc's pid file (see ExecPid).
   */
  private async *execStream(s: DriverSliver, ref: RuntimeRef, spec: ExecSpec, signal: AbortSignal): AsyncIterable<ExecChunk> {
    if (spec.tty) {
      yield* this.execTerminal(s, ref, spec, spec.tty, signal);
      return;
    }
    const file = await this.writeProcess(s, { args: spec.argv, env: this.envOf(s, spec.env), cwd: spec.cwd ?? SLIVER_HOME });
    const pidFile = `${file}.pid`;
    try {
      yield* streamProcess(this.o.runc.binary, this.o.runc.execArgs(s.name, file, { pidFile }), {
        env: HOST_TOOL_ENV,
        stdin: spec.stdin,
        timeoutMs: spec.timeoutMs,
        maxOutputBytes: spec.maxOutputBytes,
        signal,
        alsoKill: new ExecPid(pidFile, ref),
      });
    } finally {
      await rm(file, { force: true });
      await rm(pidFile, { force: true });
    }
  }

  /**
   * PTY mode: `runc exec --tty` in the foreground on a host terminal. runc
   * makes the container's own terminal, copies it to and from ours, resizes it
   * when ours is resized (SIGWINCH) and puts it in raw mode, so echo and line
   * editing happen inside the sliver. Signals go straight to the command's
   * host pid (from runc's pid file; runc forwards them until that exists), and
   * a kill reaches the command's whole session, which runc starts apart from
   * its own process group.
   */
  private async *execTerminal(
    s: DriverSliver,
    ref: RuntimeRef,
    spec: ExecSpec,
    tty: ExecTty,
    signal: AbortSignal,
  ): AsyncIterable<ExecChunk> {
    checkTerminalSize(tty.rows, tty.cols);
    const env = this.envOf(s, spec.env, { TERM: tty.term ?? 'xterm' });
    const file = await this.writeProcess(s, {
      args: spec.argv,
      env,
      cwd: spec.cwd ?? SLIVER_HOME,
      terminal: { rows: tty.rows, cols: tty.cols },
    });
    const pidFile = `${file}.pid`;
    const command = new ExecPid(pidFile, ref);
    try {
      yield* streamTerminal(this.o.runc.binary, this.o.runc.execArgs(s.name, file, { tty: true, pidFile }), {
        env: HOST_TOOL_ENV,
        rows: tty.rows,
        cols: tty.cols,
        ...(spec.stdin ? { stdin: spec.stdin } : {}),
        ...(tty.control ? { control: tty.control } : {}),
        timeoutMs: spec.timeoutMs,
        maxOutputBytes: spec.maxOutputBytes,
        signal,
        sendSignal: async (sig, runcPid) => signalQuietly((await command.pid()) ?? runcPid, sig),
        killAll: () => command.killSession(),
      });
    } finally {
      await rm(file, { force: true });
      await rm(pidFile, { force: true });
    }
  }

  /** `runc exec` with pipes the caller holds (SSH exec, sftp); the command's session dies with a kill. */
  async attach(s: DriverSliver, ref: RuntimeRef, spec: AttachSpec): Promise<AttachedCommand> {
    const file = await this.writeProcess(s, { args: spec.argv, env: this.envOf(s, spec.env), cwd: spec.cwd ?? SLIVER_HOME });
    const pidFile = `${file}.pid`;
    const command = new ExecPid(pidFile, ref);
    return spawnAttached(this.o.runc.binary, this.o.runc.execArgs(s.name, file, { pidFile }), {
      env: HOST_TOOL_ENV,
      alsoKill: command,
      sendSignal: async (sig, runcPid) => signalQuietly((await command.pid()) ?? runcPid, sig),
      cleanup: async () => {
        await rm(file, { force: true });
        await rm(pidFile, { force: true });
      },
    });
  }

  /**
   * A TCP relay inside the sliver's network namespace only (nsenter into the namespace of the sliver's
   * first process, checked to be the same process): it reaches what the sliver itself reaches, no more.
   * It joins the sliver's cgroup before it connects, so the sliver's pids and memory limits count it.
   * An IP literal and a port only, after `--`: a name would resolve in the host's view, and nothing
   * may read as an option of nc.
   */
  async connect(s: DriverSliver, ref: RuntimeRef, host: string, port: number): Promise<AttachedCommand> {
    if (isIP(host) === 0 || host.includes('%') || !Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new FailedPreconditionError(
        `a forward goes to an IP address and a port 1-65535 only, not ${JSON.stringify(host.slice(0, 64))}:${port}`,
      );
    }
    if (!(await isSameProcessAlive(ref.pid, ref.startTicks))) throw new FailedPreconditionError(`sliver ${s.name} is not running`);
    const relay = this.o.relay ?? '/bin/busybox';
    // Every value is a positional parameter of the script, never part of its text.
    const script = 'h=$1; p=$2; shift 2; for f in "$@"; do echo $$ > "$f" || exit 111; done; exec "$0" nc -- "$h" "$p"';
    const procs = this.o.cgroups.procsFiles(s.name);
    return spawnAttached(
      'nsenter',
      [`--net=/proc/${ref.pid}/ns/net`, '--', relay, 'sh', '-c', script, relay, host, String(port), ...procs],
      {
        env: HOST_TOOL_ENV,
      },
    );
  }

  /** The environment of a sliver process: the base, then the caller's (which applies inside the sliver only), then the sliver's names. */
  envOf(s: DriverSliver, env: Readonly<Record<string, string>>, extra: Readonly<Record<string, string>> = {}): string[] {
    const all: Record<string, string> = {
      PATH: SLIVER_PATH,
      HOME: SLIVER_HOME,
      LANG: 'C.UTF-8',
      ...extra,
      ...env,
      FEDLAB_SLIVER_URN: s.urn,
      FEDLAB_SLICE_URN: s.sliceUrn,
    };
    return Object.entries(all).map(([k, v]) => `${k}=${v}`);
  }

  /** Writes a process spec for `runc exec --process` (root-only directory; the caller removes it). */
  async writeProcess(s: DriverSliver, p: ProcessSpec): Promise<string> {
    const dir = join(this.o.files.dir(s.name), 'exec');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${randomBytes(8).toString('hex')}.json`);
    await writeFile(file, JSON.stringify(ociProcess(p, this.o.rlimits)), { mode: 0o600 });
    return file;
  }

  async measure(s: DriverSliver): Promise<SliverMeasure | undefined> {
    if (!this.o.cgroups.exists(s.name)) return undefined;
    return this.o.cgroups.stats(s.name);
  }

  async diskUsageBytes(name: string): Promise<number> {
    return this.o.files.usageBytes(name);
  }

  async listArtifacts(): Promise<string[]> {
    const names = new Set<string>([...(await this.o.files.list()), ...(await this.o.cgroups.list())]);
    for (const c of await this.o.runc.list()) names.add(c.id);
    return [...names];
  }

  async purge(): Promise<void> {
    for (const name of await this.listArtifacts()) await this.destroy(name);
    await this.o.cgroups.removeInstance();
  }

  async releaseIdle(): Promise<void> {
    await this.o.cgroups.removeEmptyBases();
  }

  /** The image of a sliver, by its canonical name. */
  static imageOf(s: DriverSliver): string {
    return imageName(parseImageName(s.image ?? ''));
  }
}
