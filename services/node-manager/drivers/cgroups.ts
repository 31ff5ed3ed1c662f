/**
 * Control groups for container slivers, v1 or v2 (detected at start). Every
 * Fedlab cgroup lives under the cgroup the node manager itself is in, at
 * `<own>/fedlab/<instance>/<sliver>` for each controller, so the node manager
 * never reaches outside the sandbox it was given, and two node managers on one
 * machine never touch each other's slivers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FailedPreconditionError } from '../../core/errors.js';
import { signalQuietly } from './procfs.js';
import { assertSafeName } from '../names.js';

/** Limits applied to one sliver's cgroup. */
export interface CgroupLimits {
  /** CPU in thousandths of a core (a hard cap via CFS quota, and a proportional share). */
  readonly cpuMillis: number;
  readonly memMb: number;
  readonly pids: number;
}

/** What a sliver's cgroup measured. */
export interface CgroupStats {
  /** CPU time used since the cgroup was made, in nanoseconds. */
  readonly cpuUsageNs: number;
  readonly memBytes: number;
  readonly pids: number;
  /** Processes the kernel's OOM killer has killed in this cgroup. */
  readonly oomKills: number;
}

/** The v1 controllers Fedlab uses. */
export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids'] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];

/** Where this process's own cgroups are: per controller for v1, one directory for v2. */
export type CgroupLayout =
  | {
      readonly version: 1;
      readonly own: Readonly<Record<V1Controller, string>>;
      /**
       * Our own directory in every hierarchy we are in (cpuset, devices, freezer, blkio, name=systemd,
       * the hybrid unified one…): runc makes a sliver's relative cgroupsPath in each of them, so the
       * instance's directories are found and removed in each of them too.
       */
      readonly hierarchies: readonly string[];
    }
  | { readonly version: 2; readonly own: string };

/** One line of /proc/self/mountinfo reduced to what matters here. */
interface Mount {
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({
      root: unescape(left[3] ?? '/'),
      mountPoint: unescape(left[4] ?? ''),
      fsType: right[0] ?? '',
      superOptions: (right[2] ?? '').split(','),
    });
  }
  return out;
}

/** Joins a mount point with a cgroup path as /proc/self/cgroup shows it, minding the mount's root. */
function dirFor(mount: Mount, cgroupPath: string): string {
  let rel = cgroupPath;
  if (mount.root !== '/' && (cgroupPath === mount.root || cgroupPath.startsWith(`${mount.root}/`)))
    rel = cgroupPath.slice(mount.root.length);
  const dir = join(mount.mountPoint, rel);
  return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

/**
 * Finds this process's cgroups from the texts of /proc/self/mountinfo and
 * /proc/self/cgroup. Prefers v2 when its hierarchy offers cpu, memory and pids
 * to us; otherwise v1 with cpu, cpuacct, memory and pids mounted. Returns the
 * reason when neither is usable.
 */
export function detectCgroupLayout(
  mountinfo: string,
  procCgroup: string,
  readControllers: (dir: string) => string | undefined = (dir) => {
    try {
      return readFileSync(join(dir, 'cgroup.controllers'), 'utf8');
    } catch {
      return undefined;
    }
  },
): CgroupLayout | { readonly reason: string } {
  const mounts = parseMountinfo(mountinfo);
  const paths = new Map<string, string>();
  const hierarchies = new Set<string>();
  let unifiedPath: string | undefined;
  for (const line of procCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, controllers, path] = m as unknown as [string, string, string, string];
    if (id === '0' && controllers === '') unifiedPath = path;
    for (const c of controllers.split(',')) if (c) paths.set(c, path);
    const options = controllers.split(',').filter(Boolean);
    const mount =
      id === '0' && controllers === ''
        ? mounts.find((x) => x.fsType === 'cgroup2')
        : mounts.find((x) => x.fsType === 'cgroup' && options.every((o) => x.superOptions.includes(o)));
    if (mount) hierarchies.add(dirFor(mount, path));
  }

  const v2 = mounts.find((m) => m.fsType === 'cgroup2');
  if (v2 && unifiedPath !== undefined) {
    const own = dirFor(v2, unifiedPath);
    const available = (readControllers(own) ?? '').trim().split(/\s+/);
    if (['cpu', 'memory', 'pids'].every((c) => available.includes(c))) return { version: 2, own };
  }

  const own: Partial<Record<V1Controller, string>> = {};
  const missing: string[] = [];
  for (const c of V1_CONTROLLERS) {
    const mount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(c));
    const path = paths.get(c);
    if (!mount || path === undefined) missing.push(c);
    else own[c] = dirFor(mount, path);
  }
  if (missing.length === 0) return { version: 1, own: own as Record<V1Controller, string>, hierarchies: [...hierarchies] };
  return {
    reason: v2
      ? `cgroup v2 does not offer cpu, memory and pids to this process, and cgroup v1 lacks ${missing.join(', ')}`
      : `no cgroup v2 hierarchy and cgroup v1 lacks ${missing.join(', ')}`,
  };
}

/** Reads this process's layout from /proc. */
export function detectOwnCgroups(): CgroupLayout | { readonly reason: string } {
  try {
    return detectCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  } catch (err) {
    return { reason: `cannot read /proc/self: ${(err as Error).message}` };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function writeControl(file: string, value: string): Promise<void> {
  try {
    await writeFile(file, value);
  } catch (err) {
    throw new FailedPreconditionError(
      `cannot write ${value} to ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {},
      { cause: err },
    );
  }
}

async function readNumber(file: string): Promise<number> {
  try {
    const n = Number((await readFile(file, 'utf8')).trim().split(/\s+/)[0]);
    return Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}

/** Reads `key value` lines (memory.events, cpu.stat, memory.oom_control). */
async function readKeyed(file: string, key: string): Promise<number> {
  try {
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      const [k, v] = line.trim().split(/\s+/);
      if (k === key) return Number(v) || 0;
    }
  } catch {
    // A missing file reads as zero: not every kernel has every counter.
  }
  return 0;
}

async function readPids(file: string): Promise<number[]> {
  try {
    return (await readFile(file, 'utf8'))
      .split('\n')
      .filter((l) => l.trim())
      .map(Number);
  } catch {
    return [];
  }
}

/** Where runc expects the unified hierarchy. */
const V2_MOUNT = '/sys/fs/cgroup';

const CFS_PERIOD_US = 100_000;
/** The kernel refuses CFS quotas under 1 ms. */
const MIN_QUOTA_US = 1_000;

/** The cgroups of one node manager instance. */
export class Cgroups {
  /** Instance base directories, one per distinct controller directory. */
  private readonly bases: string[];
  /** The instance's directories in every hierarchy runc may use: where slivers are listed and removed. */
  private readonly allBases: string[];

  constructor(
    readonly layout: CgroupLayout,
    readonly instance: string,
  ) {
    assertSafeName(instance, 'instance id');
    this.bases = [...new Set(this.ownDirs().map((d) => join(d, 'fedlab', instance)))];
    const everywhere = layout.version === 1 ? [...this.ownDirs(), ...layout.hierarchies] : this.ownDirs();
    this.allBases = [...new Set(everywhere.map((d) => join(d, 'fedlab', instance)))];
  }

  get version(): 1 | 2 {
    return this.layout.version;
  }

  private ownDirs(): string[] {
    return this.layout.version === 2
      ? [this.layout.own]
      : V1_CONTROLLERS.map((c) => (this.layout as { own: Record<V1Controller, string> }).own[c]);
  }

  private controllerDir(c: V1Controller | 'unified', name: string): string {
    const own = this.layout.version === 2 ? this.layout.own : this.layout.own[c as V1Controller];
    return join(own, 'fedlab', this.instance, name);
  }

  /** Directories of one sliver's cgroup (one for v2; one per distinct v1 mount). */
  dirs(name: string): string[] {
    assertSafeName(name, 'sliver name');
    return this.bases.map((b) => join(b, name));
  }

  /**
   * The sliver's cgroup as runc's cgroupsPath: on v1 relative (runc puts it
   * below its own cgroup in every hierarchy, which is ours); on v2 absolute
   * below the unified mount.
   */
  runcPath(name: string): string {
    assertSafeName(name, 'sliver name');
    if (this.layout.version === 1) return `fedlab/${this.instance}/${name}`;
    const own = this.layout.own.startsWith(V2_MOUNT) ? this.layout.own.slice(V2_MOUNT.length) : this.layout.own;
    return join('/', own, 'fedlab', this.instance, name);
  }

  /** Whether the kernel offers a block IO weight (v1 only with a proportional I/O scheduler). */
  hasBlkioWeight(): boolean {
    if (this.layout.version === 2) {
      try {
        return readFileSync(join(this.layout.own, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('io');
      } catch {
        return false;
      }
    }
    return ['blkio.weight', 'blkio.bfq.weight'].some((f) => existsSync(join('/sys/fs/cgroup/blkio', f)));
  }

  /** Files a process writes its pid to in order to join the sliver's cgroup(s). */
  procsFiles(name: string): string[] {
    return this.dirs(name).map((d) => join(d, 'cgroup.procs'));
  }

  /** Creates the instance's base cgroups (and, on v2, delegates the controllers down to them). */
  async init(): Promise<void> {
    if (this.layout.version === 1) {
      for (const b of this.bases) await mkdir(b, { recursive: true });
      return;
    }
    const own = this.layout.own;
    const enable = async (dir: string): Promise<void> => writeControl(join(dir, 'cgroup.subtree_control'), '+cpu +memory +pids');
    try {
      await enable(own);
    } catch (err) {
      // v2 forbids controllers below a non-root cgroup that holds processes: move ourselves to a leaf first.
      const leaf = join(own, 'fedlab-nm');
      await mkdir(leaf, { recursive: true });
      await writeControl(join(leaf, 'cgroup.procs'), String(process.pid));
      try {
        await enable(own);
      } catch {
        throw new FailedPreconditionError(
          `cannot delegate cpu, memory and pids below ${own}: other processes share the node manager's cgroup; run it in its own cgroup (e.g. a systemd unit with Delegate=yes)`,
          {},
          { cause: err },
        );
      }
    }
    await mkdir(join(own, 'fedlab'), { recursive: true });
    await enable(join(own, 'fedlab'));
    await mkdir(join(own, 'fedlab', this.instance), { recursive: true });
    await enable(join(own, 'fedlab', this.instance));
  }

  /** Creates (or updates) a sliver's cgroup with its limits. Idempotent. */
  async create(name: string, limits: CgroupLimits): Promise<void> {
    for (const d of this.dirs(name)) await mkdir(d, { recursive: true });
    const quota = String(Math.max(MIN_QUOTA_US, Math.round((limits.cpuMillis * CFS_PERIOD_US) / 1000)));
    const mem = String(limits.memMb * 1024 * 1024);
    if (this.layout.version === 2) {
      const d = this.controllerDir('unified', name);
      await writeControl(join(d, 'cpu.max'), `${quota} ${CFS_PERIOD_US}`);
      await writeControl(join(d, 'cpu.weight'), String(Math.min(10_000, Math.max(1, Math.round(limits.cpuMillis / 10)))));
      await writeControl(join(d, 'memory.max'), mem);
      // No swap: over the limit the kernel must kill, not page out.
      if (existsSync(join(d, 'memory.swap.max'))) await writeControl(join(d, 'memory.swap.max'), '0');
      await writeControl(join(d, 'pids.max'), String(limits.pids));
      return;
    }
    const cpu = this.controllerDir('cpu', name);
    await writeControl(join(cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
    await writeControl(join(cpu, 'cpu.cfs_quota_us'), quota);
    await writeControl(join(cpu, 'cpu.shares'), String(Math.max(2, Math.round((limits.cpuMillis * 1024) / 1000))));
    const memory = this.controllerDir('memory', name);
    // Swappiness 0 and memsw = limit: over the limit the kernel must kill, not page out.
    try {
      await writeControl(join(memory, 'memory.swappiness'), '0');
    } catch {
      // Some kernels refuse swappiness below the root; memsw below still keeps swap out.
    }
    const memsw = join(memory, 'memory.memsw.limit_in_bytes');
    // memsw must stay >= the memory limit at every step, so the order of the writes depends on the direction.
    const current = await readNumber(join(memory, 'memory.limit_in_bytes'));
    if (existsSync(memsw) && Number(mem) < current) {
      await writeControl(join(memory, 'memory.limit_in_bytes'), mem);
      await writeControl(memsw, mem);
    } else {
      if (existsSync(memsw)) await writeControl(memsw, mem).catch(() => undefined);
      await writeControl(join(memory, 'memory.limit_in_bytes'), mem);
      if (existsSync(memsw)) await writeControl(memsw, mem);
    }
    await writeControl(join(this.controllerDir('pids', name), 'pids.max'), String(limits.pids));
  }

  /** True when the sliver's cgroup exists. */
  exists(name: string): boolean {
    return this.dirs(name).every((d) => existsSync(d));
  }

  /** The pids in a sliver's cgroup (union over v1 hierarchies). */
  async pids(name: string): Promise<number[]> {
    const all = new Set<number>();
    for (const f of this.procsFiles(name)) for (const p of await readPids(f)) all.add(p);
    return [...all];
  }

  /** Kills every process in the sliver's cgroup and waits until it is empty (bounded). */
  async killAll(name: string, timeoutMs = 5_000): Promise<void> {
    if (this.layout.version === 2) {
      const kill = join(this.controllerDir('unified', name), 'cgroup.kill');
      if (existsSync(kill)) await writeFile(kill, '1').catch(() => undefined);
    }
    const until = Date.now() + timeoutMs;
    for (;;) {
      const pids = await this.pids(name);
      if (pids.length === 0) return;
      for (const p of pids) signalQuietly(p, 'SIGKILL');
      if (Date.now() > until)
        throw new FailedPreconditionError(`processes ${pids.join(', ')} of sliver ${name} did not die within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  /** Kills everything in the sliver's cgroup and removes it, in every hierarchy. Idempotent. */
  async remove(name: string): Promise<void> {
    assertSafeName(name, 'sliver name');
    const everywhere = this.allBases.map((b) => join(b, name));
    if (!everywhere.some((d) => existsSync(d))) return;
    if (this.dirs(name).some((d) => existsSync(d))) await this.killAll(name);
    for (const d of everywhere) {
      for (let attempt = 0; ; attempt++) {
        try {
          await rmdir(d);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          // Exiting tasks can keep a cgroup busy for a moment after they are gone from cgroup.procs.
          if (code === 'EBUSY' && attempt < 300) {
            await sleep(10);
            continue;
          }
          throw new FailedPreconditionError(`cannot remove cgroup ${d}: ${code ?? (err as Error).message}`, {}, { cause: err });
        }
      }
    }
  }

  /** Removes every sliver cgroup of this instance and the instance's own base cgroups. */
  async removeInstance(): Promise<void> {
    for (const name of await this.list()) await this.remove(name);
    await this.removeEmptyBases();
  }

  /**
   * Removes the instance's base cgroups, and the shared `fedlab` parent, where they are empty (a
   * directory that still holds a sliver's cgroup stays: rmdir refuses it). A node manager that stops
   * with no sliver left calls this, so a clean stop leaves no directory behind.
   */
  async removeEmptyBases(): Promise<void> {
    for (const b of this.allBases) await rmdir(b).catch(() => undefined);
    for (const b of this.allBases) await rmdir(dirname(b)).catch(() => undefined);
  }

  /** Names of the sliver cgroups that exist under this instance, in any hierarchy. */
  async list(): Promise<string[]> {
    const names = new Set<string>();
    for (const b of this.allBases) {
      try {
        for (const e of await readdir(b, { withFileTypes: true })) if (e.isDirectory()) names.add(e.name);
      } catch {
        // No base yet: no slivers.
      }
    }
    return [...names];
  }

  /** Usage counters of a sliver's cgroup. */
  async stats(name: string): Promise<CgroupStats> {
    if (this.layout.version === 2) {
      const d = this.controllerDir('unified', name);
      return {
        cpuUsageNs: (await readKeyed(join(d, 'cpu.stat'), 'usage_usec')) * 1000,
        memBytes: await readNumber(join(d, 'memory.current')),
        pids: await readNumber(join(d, 'pids.current')),
        oomKills: await readKeyed(join(d, 'memory.events'), 'oom_kill'),
      };
    }
    const memory = this.controllerDir('memory', name);
    return {
      cpuUsageNs: await readNumber(join(this.controllerDir('cpuacct', name), 'cpuacct.usage')),
      memBytes: await readNumber(join(memory, 'memory.usage_in_bytes')),
      pids: await readNumber(join(this.controllerDir('pids', name), 'pids.current')),
      oomKills: await readKeyed(join(memory, 'memory.oom_control'), 'oom_kill'),
    };
  }
}
