/**
 * File operations of the node manager (root) on trees a sliver's root can
 * write, none of which follows a symbolic link the sliver put there.
 * Directories are opened with O_NOFOLLOW | O_DIRECTORY and changed through
 * the open descriptor (fchown, fchmod); a child is named relative to its
 * parent's descriptor (`/proc/self/fd/<fd>/<name>`), so a link swapped in
 * anywhere along the path cannot send the call elsewhere. Walks and removals
 * run GNU du and rm, whose traversals (fts, physical) never follow links.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError } from '../../core/errors.js';
import { HOST_TOOL_ENV } from './runc.js';

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** A path naming `name` inside the directory open as `dir` (resolved from the descriptor, not from a path). */
export function under(dir: FileHandle, name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/'))
    throw new Error(`not a single path component: ${JSON.stringify(name)}`);
  return `/proc/self/fd/${dir.fd}/${name}`;
}

/** Opens a real directory; a symbolic link or anything else is refused with a message naming `label`. */
export async function openDirNoFollow(path: string, label = path): Promise<FileHandle> {
  try {
    return await open(path, DIR_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      throw new FailedPreconditionError(
        `${label} is not a directory (a symbolic link or another kind of file); the node manager does not follow it`,
      );
    }
    throw err;
  }
}

/** Whether `name` exists in the open directory (a dangling link exists too). */
export async function existsIn(dir: FileHandle, name: string): Promise<boolean> {
  try {
    await lstat(under(dir, name));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Makes directory `name` in the open directory `dir` if it is missing, then
 * gives it to `uid:gid` with `mode` through its own descriptor. An existing
 * entry is left as it is when `keepExisting`; otherwise it must be a real
 * directory, and is given likewise. Returns whether it was made.
 */
export async function ensureDir(
  dir: FileHandle,
  name: string,
  o: { mode: number; uid: number; gid: number; label: string; keepExisting?: boolean },
): Promise<boolean> {
  let made = false;
  try {
    await mkdir(under(dir, name), { mode: 0o700 });
    made = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (o.keepExisting) return false;
  }
  const fh = await openDirNoFollow(under(dir, name), o.label);
  try {
    await fh.chown(o.uid, o.gid);
    await fh.chmod(o.mode);
  } finally {
    await fh.close();
  }
  return made;
}

function runTool(program: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(program, args, { env: HOST_TOOL_ENV, timeout: 10 * 60_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ ok: !err, stdout, stderr }),
    ),
  );
}

/**
 * Bytes allocated under the given trees (du: each inode once across all of
 * them, links not followed, not crossing into other file systems). Trees that
 * do not exist count 0; files vanishing during the walk are skipped.
 */
export async function diskUsageNoFollow(paths: readonly string[]): Promise<number> {
  const present: string[] = [];
  for (const p of paths)
    if (
      await lstat(p).then(
        (st) => st.isDirectory(),
        () => false,
      )
    )
      present.push(p);
  if (present.length === 0) return 0;
  const { stdout, stderr } = await runTool('/usr/bin/du', [
    '--summarize',
    '--one-file-system',
    '--block-size=1',
    '--total',
    '--',
    ...present,
  ]);
  const total = /^(\d+)\s+total$/m.exec(stdout);
  if (!total) throw new Error(`du of ${present.join(', ')} gave no total: ${stderr.trim().split('\n').pop() ?? ''}`);
  return Number(total[1]);
}

/**
 * Removes a tree in this process (no `rm` to spawn): entries are read with lstat, so a link is
 * removed and never followed, and a directory on another file system (a mount left inside the tree)
 * is neither entered nor removed — the removal fails naming it, like `rm -rf --one-file-system`.
 * Called once the sliver's processes are gone (runc delete), so nothing in it moves meanwhile.
 */
export async function removeTreeNoFollow(path: string): Promise<void> {
  const crossed: string[] = [];
  const remove = async (p: string, dev: number | undefined): Promise<void> => {
    let st;
    try {
      st = await lstat(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (!st.isDirectory()) {
      await unlink(p).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      return;
    }
    if (dev !== undefined && st.dev !== dev) {
      crossed.push(p);
      return;
    }
    for (const entry of await readdir(p)) await remove(join(p, entry), st.dev);
    await rmdir(p);
  };
  try {
    await remove(path, undefined);
  } catch (err) {
    const why = crossed.length ? `${crossed[0]} is a mount point` : (err as Error).message;
    throw new FailedPreconditionError(`cannot remove ${path}: ${why}`, {}, { cause: err });
  }
  if (crossed.length)
    throw new FailedPreconditionError(`cannot remove ${path}: ${crossed[0]} is another file system (a mount); unmount it first`);
}
