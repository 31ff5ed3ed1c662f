/**
 * The contract between the sliver manager and the code that makes slivers
 * real. A driver knows nothing about credentials, capacity or the store: it
 * provisions, starts, stops and destroys one sliver's runtime, runs commands
 * in it, measures it, and lists what it left on the node so a restarted node
 * manager can remove what no record explains.
 */

import type { Readable, Writable } from 'node:stream';
import { InvalidArgumentError } from '../../core/errors.js';
import type { IdRange } from '../runtime/id-ranges.js';
import type { TerminalControl } from './terminal-control.js';

/** The three drivers (docs/design.md §3). */
export type DriverKind = 'container' | 'process' | 'simulated';

/** Resources of one sliver, as granted. */
export interface SliverResources {
  /** CPU in thousandths of a core. */
  readonly cpuMillis: number;
  readonly memMb: number;
  readonly diskMb: number;
  readonly pids: number;
  readonly bandwidthKbps: number;
}

/** What a driver needs to know about a sliver. */
export interface DriverSliver {
  /** The name part of the sliver's URN: its name on disk and in the kernel. */
  readonly name: string;
  readonly urn: string;
  readonly sliceUrn: string;
  readonly resources: SliverResources;
  /** Container driver: the sliver's user namespace id range (its root is the range's first host id). */
  readonly ids?: IdRange;
  /** Container driver: the image (`host` or `oci:<name>`); `host` when absent. */
  readonly image?: string;
}

/** How a running sliver is found again, also after a restart: a pid and its start time (pids get reused). */
export interface RuntimeRef {
  readonly pid: number;
  readonly startTicks: number;
}

/** One command to run in a sliver. */
export interface ExecSpec {
  /** Program and arguments; no shell is involved. */
  readonly argv: readonly string[];
  /** Variables added to the sliver's base environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Written to the command's standard input, which is then closed. */
  readonly stdin?: Buffer;
  /** Working directory inside the sliver (the driver's default when absent). */
  readonly cwd?: string;
  /** The command is killed after this long. */
  readonly timeoutMs: number;
  /** Output (stdout + stderr) above this many bytes kills the command and fails the call. */
  readonly maxOutputBytes: number;
  /** Runs the command on a terminal instead of pipes (see {@link ExecTty}). */
  readonly tty?: ExecTty;
}

/**
 * PTY mode: the command's standard input, output and error are one terminal
 * of this size; its output comes as `stdout` chunks (a terminal has no
 * separate error stream), `stdin` is typed into it and not closed, and the
 * control channel carries further keystrokes, window size changes and signals.
 */
export interface ExecTty {
  readonly rows: number;
  readonly cols: number;
  /** TERM inside the sliver; `xterm` when absent (a caller's `env.TERM` wins). */
  readonly term?: string;
  /** Input, resizes and signals while the command runs. */
  readonly control?: TerminalControl;
}

/** A piece of a running command's output, or its end. */
export type ExecChunk =
  | { readonly kind: 'stdout'; readonly data: Buffer }
  | { readonly kind: 'stderr'; readonly data: Buffer }
  | { readonly kind: 'exit'; readonly code?: number; readonly signal?: string; readonly timedOut: boolean; readonly durationMs: number };

/** A command run with the caller holding its streams (see {@link SliverDriver.attach}). */
export interface AttachSpec {
  /** Program and arguments; no shell is involved. */
  readonly argv: readonly string[];
  /** Variables added to the sliver's base environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Working directory inside the sliver (the driver's default when absent). */
  readonly cwd?: string;
}

/** How an attached command ended. */
export interface AttachedExit {
  readonly code?: number;
  readonly signal?: string;
  /** Set when the command could not be started. */
  readonly error?: string;
}

/** A running command whose standard streams the caller holds. */
export interface AttachedCommand {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves once the command exited (its output may still be draining). */
  readonly exit: Promise<AttachedExit>;
  /** Sends a signal to the command. */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** Kills the command and everything it started. Idempotent. */
  kill(): Promise<void>;
}

/** Live measurements of a sliver. */
export interface SliverMeasure {
  /** Total CPU time used since the sliver's cgroup was made (ns); undefined when not measurable. */
  readonly cpuUsageNs?: number;
  readonly memBytes?: number;
  readonly pids?: number;
  /** Processes the kernel killed for exceeding the memory limit. */
  readonly oomKills?: number;
}

/** Makes slivers real. */
export interface SliverDriver {
  readonly kind: DriverKind;
  /** One honest line about what the driver isolates (shown in logs and docs). */
  readonly description: string;
  /** Prepares the driver's roots (cgroup bases, work dir root). */
  init(): Promise<void>;
  /** Path of the sliver's private work directory, if the driver gives one. */
  workDir(name: string): string | undefined;
  /** Creates the sliver's cgroup and work directory. Idempotent. */
  provision(s: DriverSliver): Promise<void>;
  /** Starts the sliver's long-lived keeper; resolves once it is ready. */
  start(s: DriverSliver): Promise<RuntimeRef>;
  /** True when the keeper recorded in `ref` still runs. */
  isRunning(s: DriverSliver, ref: RuntimeRef): Promise<boolean>;
  /** Kills every process of the sliver; its files and cgroup stay. Idempotent. */
  stop(s: DriverSliver, ref: RuntimeRef | undefined): Promise<void>;
  /** Kills everything and removes the cgroup and the work directory. Idempotent. */
  destroy(name: string): Promise<void>;
  /** Runs one command in a running sliver, streaming its output and ending with its exit. */
  exec(s: DriverSliver, ref: RuntimeRef, spec: ExecSpec, signal: AbortSignal): AsyncIterable<ExecChunk>;
  /**
   * Runs one command in a running sliver with its standard streams handed to the caller: input streamed,
   * output unbounded (SSH `exec` and subsystems). Absent on drivers that cannot.
   */
  attach?(s: DriverSliver, ref: RuntimeRef, spec: AttachSpec): Promise<AttachedCommand>;
  /**
   * A relay to `host:port` connected from inside the sliver's own network namespace (SSH `direct-tcpip`):
   * what is written to its stdin goes to the connection, its stdout is what comes back. Absent on drivers
   * whose slivers have no network namespace of their own.
   */
  connect?(s: DriverSliver, ref: RuntimeRef, host: string, port: number): Promise<AttachedCommand>;
  /** Current CPU, memory and process counts (undefined when the driver cannot measure). */
  measure(s: DriverSliver): Promise<SliverMeasure | undefined>;
  /** Bytes the sliver's work directory takes on disk (du-style). */
  diskUsageBytes(name: string): Promise<number>;
  /** The images slivers may name (`host` and those the driver can run); the process and simulated drivers offer `host` only. */
  images(): string[];
  /** Checks that an image can be used here (INVALID_ARGUMENT naming it when not); nothing is created. */
  checkImage(image: string): void;
  /** Names of slivers that have anything on the node: cgroups, work dirs, marked processes. */
  listArtifacts(): Promise<string[]>;
  /** Removes everything this node manager instance has on the node (uninstall, tests). */
  purge(): Promise<void>;
  /**
   * At a stop: removes what the driver made for itself that no sliver uses any more (the container
   * driver's empty instance cgroups), leaving every sliver that still runs untouched.
   */
  releaseIdle(): Promise<void>;
}

/** For drivers without images: only `host` (or no image named) is accepted, anything else is INVALID_ARGUMENT naming it. */
export function checkHostOnlyImage(kind: DriverKind, image: string): void {
  if (image !== '' && image !== 'host') {
    throw new InvalidArgumentError(
      `image ${JSON.stringify(image.slice(0, 80))} is unknown on this node: its ${kind} driver offers only "host"`,
      { field: 'resources.image' },
    );
  }
}
