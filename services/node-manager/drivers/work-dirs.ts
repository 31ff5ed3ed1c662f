/**
 * Private work directories, one per sliver, under `<data_dir>/slivers`. Only
 * names checked by {@link assertSafeName} reach a path here, removal never
 * follows symbolic links out of the tree, and disk use is measured du-style
 * (allocated blocks, hard links counted once) for the disk quota check.
 */
import { chown, chmod, lstat, mkdir, opendir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assertSafeName } from '../names.js';

/** The work directory root of one node manager. */
export class WorkDirs {
  constructor(readonly root: string) {}

  /** Path of one sliver's work directory. */
  path(name: string): string {
    assertSafeName(name, 'sliver name');
    return join(this.root, name);
  }

  /** Creates the root: traversable by sliver users, listable only by the node manager. */
  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await chmod(this.root, 0o711);
  }

  /** Creates a sliver's directory (owned by `uid` when given, mode 0700). Idempotent. */
  async create(name: string, uid?: number): Promise<string> {
    const dir = this.path(name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (uid !== undefined) await chown(dir, uid, uid);
    await chmod(dir, 0o700);
    return dir;
  }

  /** Removes a sliver's directory and everything in it. Idempotent. */
  async remove(name: string): Promise<void> {
    await rm(this.path(name), { recursive: true, force: true, maxRetries: 3 });
  }

  /** Names of the directories present. */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return [];
    }
  }

  /** Bytes allocated on disk under a sliver's directory (0 when it does not exist). */
  async usageBytes(name: string): Promise<number> {
    return diskUsage(this.path(name));
  }
}

/** du-style disk use of a tree: allocated blocks, each inode once, symbolic links not followed. */
export async function diskUsage(root: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const path = stack.pop() as string;
    let st;
    try {
      st = await lstat(path, { bigint: false });
    } catch {
      continue;
    }
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) continue;
    seen.add(id);
    total += st.blocks * 512;
    if (!st.isDirectory()) continue;
    try {
      const dir = await opendir(path);
      for await (const e of dir) stack.push(join(path, e.name));
    } catch {
      // Vanished or unreadable meanwhile: what was measured stands.
    }
  }
  return total;
}
