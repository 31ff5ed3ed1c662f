/**
 * The OCI runtime spec of a sliver (the bundle's config.json) and of each
 * process run in it (`runc exec --process`): user namespace over the
 * sliver's own id range; PID, mount, UTS, IPC, network and cgroup
 * namespaces; no_new_privs; the default container capability set and nothing
 * more; the seccomp profile; masked and read-only kernel paths; a devices
 * cgroup of null, zero, full, random, urandom, tty, ptmx and pts only; and
 * CPU, memory (no swap), pids and block IO limits from the sliver's resources.
 */
import type { SliverResources } from '../drivers/driver.js';
import type { IdRange } from './id-ranges.js';
import type { OciSeccomp } from './seccomp.js';

/** The capabilities container runtimes give by default (inside the user namespace: they reach only the sliver's own objects). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const;

/** Kernel files a sliver must not read. */
export const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
] as const;

/** Kernel files a sliver may read but not write. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'] as const;

/** Character devices a sliver may use (type, major, minor; -1: any minor). */
export const ALLOWED_DEVICES: readonly { readonly name: string; readonly major: number; readonly minor: number }[] = [
  { name: 'null', major: 1, minor: 3 },
  { name: 'zero', major: 1, minor: 5 },
  { name: 'full', major: 1, minor: 7 },
  { name: 'random', major: 1, minor: 8 },
  { name: 'urandom', major: 1, minor: 9 },
  { name: 'tty', major: 5, minor: 0 },
  { name: 'ptmx', major: 5, minor: 2 },
  { name: 'pts', major: 136, minor: -1 },
];

/** The PATH sliver programs see (inside the sliver). */
export const SLIVER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A mount of the bundle. */
export interface OciMount {
  readonly destination: string;
  readonly type: string;
  readonly source: string;
  readonly options: string[];
}

/** Resource limits of every sliver process (the owner's; a sliver cannot raise a hard limit). */
export interface SliverRlimits {
  /** Open files: soft and hard. */
  readonly nofileSoft: number;
  readonly nofileHard: number;
}

/** Default rlimits. */
export const DEFAULT_RLIMITS: SliverRlimits = { nofileSoft: 1024, nofileHard: 4096 };

/** A process to run in a sliver. */
export interface ProcessSpec {
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly terminal?: { readonly rows: number; readonly cols: number };
}

/** What a sliver's config.json is made of. */
export interface SliverSpecInput {
  readonly hostname: string;
  readonly ids: IdRange;
  readonly resources: SliverResources;
  /** runc's cgroupsPath (relative: under runc's own cgroup on v1; absolute below the v2 mount). */
  readonly cgroupsPath: string;
  readonly rootfs: string;
  readonly rootReadonly: boolean;
  /** Mounts beyond the kernel file systems (the image's binds), in order. */
  readonly mounts: readonly OciMount[];
  /** The long-lived first process. */
  readonly init: ProcessSpec;
  readonly seccomp: OciSeccomp;
  readonly rlimits: SliverRlimits;
  /** Whether the host offers a block IO weight (v1 needs a proportional I/O scheduler). */
  readonly blkioWeight: boolean;
  /** cgroup v1 or v2 (v2 has no memory swappiness). */
  readonly cgroupVersion: 1 | 2;
}

const CFS_PERIOD_US = 100_000;
const MIN_QUOTA_US = 1_000;

function capabilities(): Record<'bounding' | 'effective' | 'permitted', string[]> {
  return { bounding: [...DEFAULT_CAPABILITIES], effective: [...DEFAULT_CAPABILITIES], permitted: [...DEFAULT_CAPABILITIES] };
}

/** The OCI process object of a sliver process (runs as the sliver's root: uid 0 inside its user namespace). */
export function ociProcess(p: ProcessSpec, rlimits: SliverRlimits): Record<string, unknown> {
  return {
    terminal: p.terminal !== undefined,
    ...(p.terminal ? { consoleSize: { height: p.terminal.rows, width: p.terminal.cols } } : {}),
    user: { uid: 0, gid: 0, additionalGids: [] },
    args: [...p.args],
    env: [...p.env],
    cwd: p.cwd,
    capabilities: capabilities(),
    rlimits: [{ type: 'RLIMIT_NOFILE', soft: rlimits.nofileSoft, hard: rlimits.nofileHard }],
    noNewPrivileges: true,
  };
}

/** The kernel file systems every sliver gets. */
function kernelMounts(memMb: number): OciMount[] {
  const shmMb = Math.max(16, Math.min(memMb, 1024));
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmMb}m`] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', 'size=16m'] },
  ];
}

/** The cgroup resources of a sliver. */
export function ociResources(r: SliverResources, o: { blkioWeight: boolean; cgroupVersion: 1 | 2 }): Record<string, unknown> {
  const mem = r.memMb * 1024 * 1024;
  return {
    devices: [
      { allow: false, access: 'rwm' },
      ...ALLOWED_DEVICES.map((d) => ({ allow: true, type: 'c', major: d.major, minor: d.minor, access: 'rwm' })),
    ],
    // Swap limit = memory limit: over it the kernel kills, it does not page out.
    memory: { limit: mem, swap: mem, ...(o.cgroupVersion === 1 ? { swappiness: 0 } : {}) },
    cpu: {
      quota: Math.max(MIN_QUOTA_US, Math.round((r.cpuMillis * CFS_PERIOD_US) / 1000)),
      period: CFS_PERIOD_US,
      shares: Math.max(2, Math.round((r.cpuMillis * 1024) / 1000)),
    },
    pids: { limit: r.pids },
    ...(o.blkioWeight ? { blockIO: { weight: blkioWeightOf(r.cpuMillis) } } : {}),
  };
}

/** Block IO weight in proportion to CPU: cpu_millis / 2, between 10 and 1000. */
export function blkioWeightOf(cpuMillis: number): number {
  return Math.min(1000, Math.max(10, Math.round(cpuMillis / 2)));
}

/** The bundle's config.json of a sliver. */
export function sliverSpec(s: SliverSpecInput): Record<string, unknown> {
  const map = [{ containerID: 0, hostID: s.ids.hostId, size: s.ids.size }];
  return {
    ociVersion: '1.0.2',
    process: ociProcess(s.init, s.rlimits),
    root: { path: s.rootfs, readonly: s.rootReadonly },
    hostname: s.hostname,
    mounts: [...kernelMounts(s.resources.memMb), ...s.mounts],
    linux: {
      uidMappings: map,
      gidMappings: map,
      namespaces: ['pid', 'mount', 'uts', 'ipc', 'network', 'cgroup', 'user'].map((type) => ({ type })),
      cgroupsPath: s.cgroupsPath,
      resources: ociResources(s.resources, s),
      seccomp: s.seccomp,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      rootfsPropagation: 'private',
    },
  };
}
