/**
 * A sliver's files on the host, all under `<data_dir>/slivers/<name>/` (root's,
 * group the sliver's root, mode 0710: no other host account reaches them): the
 * OCI bundle (config.json), the root file system runc
 * starts from, and the sliver's writable storage. For the `host` image the
 * root is a private directory on which runc bind-mounts the host's system
 * directories read-only and the sliver's own /root, /home, /tmp and /var
 * writable (inside the container's mount namespace: nothing on the host's
 * mount table). For an `oci:` image the root is an overlay: the image's
 * shared read-only root file system below, the sliver's writable layer above;
 * its files are given to the sliver's id range once, in the writable layer
 * (metadata only where the kernel allows). Inside what the sliver can write,
 * the node manager never follows a link (see no-follow.ts).
 */
import { execFile } from 'node:child_process';
import { chmod, lchown, lstat, mkdir, open, opendir, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { constants, existsSync, lstatSync, readFileSync, realpathSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { FailedPreconditionError } from '../../core/errors.js';
import { assertSafeName } from '../names.js';
import type { IdRange } from './id-ranges.js';
import { HOST_TOOL_ENV } from './runc.js';
import type { ImageRef, ImageStore } from './images.js';
import { diskUsageNoFollow, ensureDir, openDirNoFollow, removeTreeNoFollow, under } from './no-follow.js';
import type { OciMount } from './oci-spec.js';

/** Where the init program is mounted inside every sliver. */
export const INIT_PATH = '/.fedlab/init';
/** The sliver's home and the default working directory of its commands (inside the sliver). */
export const SLIVER_HOME = '/root';
/** A root-owned file beside a sliver's data (outside what it can write): its data directories were made. */
export const DATA_MARKER = 'data-made';

/** Host directories the `host` image shows read-only (those that exist). */
const HOST_SYSTEM_DIRS = ['usr', 'etc', 'opt', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'] as const;
/** The `host` image's writable directories, private to the sliver, and their modes. */
const WRITABLE_DIRS: readonly (readonly [string, number])[] = [
  ['root', 0o700],
  ['home', 0o755],
  ['tmp', 0o1777],
  ['var', 0o755],
];
const VAR_DIRS: readonly (readonly [string, number])[] = [
  ['tmp', 0o1777],
  ['lib', 0o755],
  ['cache', 0o755],
  ['log', 0o755],
  ['spool', 0o755],
];

/** What the bundle's spec needs to know about the root. */
export interface PreparedRoot {
  readonly rootfs: string;
  readonly readonly: boolean;
  readonly mounts: readonly OciMount[];
}

/** Options of {@link SliverFiles}. */
export interface SliverFilesOptions {
  /** `<data_dir>/slivers`. */
  readonly root: string;
  readonly images: ImageStore;
  /** A static program that runs as each sliver's first process (busybox-static). */
  readonly initBinary: string;
}

function run(program: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(program, args, { env: HOST_TOOL_ENV, timeout: 30_000 }, (err, _out, stderr) =>
      err ? reject(new Error(stderr.trim() || err.message)) : resolve(),
    ),
  );
}

/** Mount points at or below `dir`, deepest first, as /proc/self/mountinfo shows them. */
export function mountsUnder(dir: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const point = line.split(' ')[4];
    if (!point) continue;
    const p = point.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === dir || p.startsWith(`${dir}/`)) out.push(p);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** The files of every sliver of one node manager. */
export class SliverFiles {
  private readonly init: string;

  constructor(private readonly o: SliverFilesOptions) {
    this.init = existsSync(o.initBinary) ? realpathSync(o.initBinary) : o.initBinary;
  }

  /**
   * Creates the root: traversable (runc sets a sliver up as the sliver's own
   * root, which must reach its bundle), listable only by root. Every directory
   * above it must be traversable too; the message names the one that is not.
   */
  async setup(): Promise<void> {
    await mkdir(this.o.root, { recursive: true, mode: 0o711 });
    await chmod(this.o.root, 0o711);
    // The data directory is the node manager's own: traversable, still not listable.
    await chmod(dirname(this.o.root), 0o711);
    for (let d = dirname(dirname(this.o.root)); ; d = dirname(d)) {
      const st = await stat(d);
      if ((st.mode & 0o001) === 0) {
        throw new FailedPreconditionError(
          `slivers' root users cannot traverse ${d} (mode ${(st.mode & 0o777).toString(8)}) to reach their bundles under ${this.o.root}; run "chmod o+x ${d}" or choose a data_dir under /var/lib`,
        );
      }
      if (d === dirname(d)) break;
    }
    if (!existsSync(this.init)) {
      throw new FailedPreconditionError(
        `the container driver runs ${this.o.initBinary} as each sliver's first process and it is missing; install it: apt-get install busybox-static`,
      );
    }
  }

  /** The sliver's directory. */
  dir(name: string): string {
    assertSafeName(name, 'sliver name');
    return join(this.o.root, name);
  }

  /** Names of the slivers that have a directory. */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.o.root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return [];
    }
  }

  /** Makes the sliver's root file system ready (idempotent; mounts the overlay of an OCI image). */
  async prepare(name: string, image: ImageRef, ids: IdRange): Promise<PreparedRoot> {
    const dir = this.dir(name);
    // Root's, and reachable only by root and the sliver's own root group (its runc init reaches its rootfs and
    // data through it): no other host account can get to the sliver's files, or run a set-user-id program of its.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await openDirNoFollow(dir);
    try {
      await fh.chown(0, ids.hostId);
      await fh.chmod(0o710);
    } finally {
      await fh.close();
    }
    const initMount: OciMount = { destination: INIT_PATH, type: 'bind', source: this.init, options: ['bind', 'ro', 'nosuid', 'nodev'] };
    return image.kind === 'host' ? this.prepareHost(dir, ids, initMount) : this.prepareOci(dir, image.name, ids, initMount);
  }

  private async prepareHost(dir: string, ids: IdRange, initMount: OciMount): Promise<PreparedRoot> {
    const rootfs = join(dir, 'rootfs');
    const top = await openDirNoFollow(dir);
    try {
      await ensureDir(top, 'rootfs', { mode: 0o755, uid: ids.hostId, gid: ids.hostId, label: rootfs });
    } finally {
      await top.close();
    }
    const mounts: OciMount[] = [];
    for (const d of HOST_SYSTEM_DIRS) {
      const host = `/${d}`;
      let st;
      try {
        st = lstatSync(host);
      } catch {
        continue;
      }
      const inRoot = join(rootfs, d);
      if (st.isSymbolicLink()) {
        // Merged /usr: /bin -> usr/bin and the like are links, made the same inside.
        const target = await readlink(host);
        const cur = await readlink(inRoot).catch(() => undefined);
        if (cur !== target) {
          await rm(inRoot, { recursive: true, force: true });
          await symlink(target, inRoot);
        }
        continue;
      }
      if (!st.isDirectory()) continue;
      await mkdir(inRoot, { recursive: true, mode: 0o755 });
      mounts.push({ destination: host, type: 'bind', source: host, options: ['bind', 'ro', 'nosuid', 'nodev'] });
    }
    await this.prepareData(dir, ids);
    for (const [d] of WRITABLE_DIRS) {
      await mkdir(join(rootfs, d), { recursive: true, mode: 0o755 });
      mounts.push({ destination: `/${d}`, type: 'bind', source: join(dir, 'data', d), options: ['bind', 'rw', 'nosuid', 'nodev'] });
    }
    await mkdir(join(rootfs, '.fedlab'), { recursive: true, mode: 0o755 });
    if (!existsSync(join(rootfs, '.fedlab', 'init'))) await writeFile(join(rootfs, '.fedlab', 'init'), '', { mode: 0o755 });
    for (const m of ['proc', 'dev', 'sys', 'run']) await mkdir(join(rootfs, m), { recursive: true, mode: 0o755 });
    return { rootfs, readonly: true, mounts: [...mounts, initMount] };
  }

  /**
   * The host image's writable directories, in `<dir>/data` (root's). Its
   * direct children are the sliver's but cannot be replaced by it (data is
   * root's): each is made when missing and must be a real directory. What lies
   * below them (var/tmp, var/lib, ...) the sliver may have replaced, by a link
   * to anywhere on the host: those are made once, on the first provision (the
   * marker beside data says it happened), and never touched again; a sliver
   * made before the marker gets only what is missing.
   */
  private async prepareData(dir: string, ids: IdRange): Promise<void> {
    const data = join(dir, 'data');
    const marker = join(dir, DATA_MARKER);
    await mkdir(data, { recursive: true, mode: 0o711 });
    const fd = await openDirNoFollow(data);
    try {
      const own = { uid: ids.hostId, gid: ids.hostId };
      for (const [d, mode] of WRITABLE_DIRS) {
        const made = await ensureDir(fd, d, { mode, ...own, label: join(data, d), keepExisting: true });
        // An existing one is only checked to be a real directory: its mode is the sliver's to choose.
        if (!made) await (await openDirNoFollow(under(fd, d), join(data, d))).close();
      }
      if (existsSync(marker)) return;
      const v = await openDirNoFollow(under(fd, 'var'), join(data, 'var'));
      try {
        for (const [d, mode] of VAR_DIRS) await ensureDir(v, d, { mode, ...own, label: join(data, 'var', d), keepExisting: true });
      } finally {
        await v.close();
      }
    } finally {
      await fd.close();
    }
    await writeFile(marker, `${ids.hostId}\n`, { mode: 0o600 });
  }

  private async prepareOci(dir: string, name: string, ids: IdRange, initMount: OciMount): Promise<PreparedRoot> {
    const image = await this.o.images.unpack(name);
    const rootfs = join(dir, 'rootfs');
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    await mkdir(rootfs, { recursive: true, mode: 0o755 });
    await mkdir(upper, { recursive: true, mode: 0o755 });
    await mkdir(work, { recursive: true, mode: 0o700 });
    if (!mountsUnder(rootfs).includes(rootfs)) {
      const base = `lowerdir=${image.rootfs},upperdir=${upper},workdir=${work}`;
      for (const p of [image.rootfs, upper, work])
        if (/[,:\s]/.test(p)) throw new FailedPreconditionError(`cannot mount an overlay with ${p} in it (comma, colon or space)`);
      try {
        // metacopy: giving the files to the sliver's ids copies their metadata up, not their data.
        await run('/usr/bin/mount', ['-t', 'overlay', 'overlay', '-o', `${base},metacopy=on`, rootfs]);
      } catch {
        await run('/usr/bin/mount', ['-t', 'overlay', 'overlay', '-o', base, rootfs]);
      }
    }
    const marker = join(dir, 'ids');
    const shifted = await readFile(marker, 'utf8').catch(() => '');
    if (shifted && shifted !== String(ids.hostId)) {
      // Never again over a tree the sliver has written: its links would be followed.
      throw new FailedPreconditionError(
        `the files of ${dir} belong to the id range at ${shifted}, not to this sliver's at ${ids.hostId}; delete the sliver and create it again`,
      );
    }
    if (!shifted) {
      // The init's mount point, made before the ids move so that it is the sliver's too.
      await mkdir(join(rootfs, '.fedlab'), { recursive: true, mode: 0o755 });
      if (!existsSync(join(rootfs, '.fedlab', 'init'))) await writeFile(join(rootfs, '.fedlab', 'init'), '', { mode: 0o755 });
      await shiftIds(rootfs, ids);
      await writeFile(marker, String(ids.hostId));
    }
    return { rootfs, readonly: false, mounts: [initMount] };
  }

  /** Unmounts whatever is mounted in the sliver's directory (its overlay). */
  async unmount(name: string): Promise<void> {
    for (const m of mountsUnder(this.dir(name))) {
      try {
        await run('/usr/bin/umount', [m]);
      } catch {
        // Busy: detach it now, the kernel frees it when the last user goes.
        await run('/usr/bin/umount', ['-l', m]);
      }
    }
    const left = mountsUnder(this.dir(name));
    if (left.length) throw new FailedPreconditionError(`cannot unmount ${left.join(', ')}`);
  }

  /** Unmounts and removes everything of the sliver. Idempotent. */
  async remove(name: string): Promise<void> {
    await this.unmount(name);
    await removeTreeNoFollow(this.dir(name));
  }

  /** Bytes the sliver's writable storage takes (the host image's private directories, or the overlay's writable layer). */
  async usageBytes(name: string): Promise<number> {
    const dir = this.dir(name);
    return diskUsageNoFollow([join(dir, 'data'), join(dir, 'upper')]);
  }
}

/**
 * Gives an image's files to a sliver's id range: owner and group n become
 * hostId + n (ids outside the range are left), keeping set-id bits, which a
 * change of owner clears. Symbolic links are never followed.
 */
async function shiftIds(root: string, ids: IdRange): Promise<void> {
  const stack = [root];
  while (stack.length > 0) {
    const path = stack.pop() as string;
    const st = await lstat(path);
    if (st.uid < ids.size && st.gid < ids.size) {
      await lchown(path, ids.hostId + st.uid, ids.hostId + st.gid);
      if ((st.isFile() || st.isDirectory()) && (st.mode & 0o6000) !== 0) await restoreMode(path, st);
    }
    if (!st.isDirectory()) continue;
    const d = await opendir(path);
    for await (const e of d) stack.push(join(path, e.name));
  }
}

/** Sets the mode back through a descriptor of the very file that was looked at (never through a link). */
async function restoreMode(path: string, st: Stats): Promise<void> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const now = await fh.stat();
    if (now.dev === st.dev && now.ino === st.ino) await fh.chmod(st.mode & 0o7777);
  } finally {
    await fh.close();
  }
}
