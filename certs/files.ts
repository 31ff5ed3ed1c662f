/**
 * Writing the tooling's files so that a command either writes everything or
 * nothing: each file is first written in full to a temporary file beside its
 * target (with its final mode, fsynced), and only when every file is staged
 * are they renamed into place. Any failure removes the temporaries, the
 * targets already renamed that did not exist before, and the directories the
 * transaction created. Nothing is ever written through a symbolic link (one at
 * a target is refused and left as it was), and a file that must be new (a key
 * without --force) is hard-linked into place, which refuses a name made
 * meanwhile. Also a lock so that two issuances never interleave their
 * read-modify-write of a CA's ca.json.
 */
import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AbortedError, InvalidArgumentError } from '../services/core/errors.js';

/** File mode of private keys. */
export const PRIVATE_MODE = 0o600;
/** File mode of certificates, bundles and records. */
export const PUBLIC_MODE = 0o644;
/** Mode of directories the tooling creates (a CA directory holds a private key). */
export const DIR_MODE = 0o700;

interface Staged {
  readonly target: string;
  readonly tmp: string;
  /** The target must not exist: put in place with a hard link, which refuses an existing name. */
  readonly exclusive: boolean;
  existed: boolean;
  committed: boolean;
}

/** Options of {@link FileTransaction.stage}. */
export interface StageOptions {
  /** Refuse an existing target, also one made between staging and commit (default: replace it). */
  readonly exclusive?: boolean;
}

/** What is at `path` without following a link, or undefined. */
async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** A symbolic link at a target is refused: nothing is written through one, and the link stays as it was. */
function symlinkRefused(target: string): InvalidArgumentError {
  return new InvalidArgumentError(`${target} is a symbolic link; files are never written through one: remove it or choose another path`, {
    rule: 'symlink',
  });
}

function existingRefused(target: string): InvalidArgumentError {
  return new InvalidArgumentError(`${target} already exists; choose another path, or pass --force to replace it`, { rule: 'exists' });
}

/** True when `path` exists (of any type). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** A set of files written all together or not at all. */
export class FileTransaction {
  private readonly staged: Staged[] = [];
  private readonly createdDirs: string[] = [];
  private done = false;

  /** Creates `dir` (and its parents) if missing; a directory created here is removed on rollback. */
  async ensureDir(dir: string, mode = DIR_MODE): Promise<void> {
    const first = await mkdir(resolve(dir), { recursive: true, mode });
    if (first !== undefined) this.createdDirs.push(first);
  }

  /**
   * Writes `data` to a temporary file beside `target` with its final `mode`; nothing is visible at
   * `target` yet. A symbolic link at `target` is refused, and with `exclusive` an existing target.
   */
  async stage(target: string, data: string | Uint8Array, mode: number, options: StageOptions = {}): Promise<void> {
    const abs = resolve(target);
    const there = await lstatOrUndefined(abs);
    if (there?.isSymbolicLink()) throw symlinkRefused(target);
    if (there && options.exclusive) throw existingRefused(target);
    // Same directory as the target, so the final rename is atomic on one file system.
    const tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const entry: Staged = { target: abs, tmp, exclusive: options.exclusive === true, existed: false, committed: false };
    this.staged.push(entry);
    // `wx` never follows or reuses an existing file; the mode is set at creation, so the key is never readable by others.
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Renames every staged file into place, in staging order; on failure undoes what it can and rethrows. */
  async commit(): Promise<void> {
    try {
      for (const s of this.staged) {
        if (s.exclusive) {
          // link() fails on any existing name (a link planted meanwhile too): never overwrites.
          await link(s.tmp, s.target).catch(async (err: NodeJS.ErrnoException) => {
            if (err.code === 'EEXIST')
              throw (await lstatOrUndefined(s.target))?.isSymbolicLink() ? symlinkRefused(s.target) : existingRefused(s.target);
            throw err;
          });
          s.committed = true;
          await unlink(s.tmp);
          continue;
        }
        const there = await lstatOrUndefined(s.target);
        if (there?.isSymbolicLink()) throw symlinkRefused(s.target);
        s.existed = there !== undefined;
        await rename(s.tmp, s.target);
        s.committed = true;
      }
      this.done = true;
    } catch (err) {
      await this.rollback();
      throw err;
    }
  }

  /** Removes temporaries, newly created targets and created directories. Safe to call more than once. */
  async rollback(): Promise<void> {
    if (this.done) return;
    this.done = true;
    for (const s of this.staged.slice().reverse()) {
      await unlink(s.tmp).catch(() => undefined);
      if (s.committed && !s.existed) await unlink(s.target).catch(() => undefined);
    }
    for (const d of this.createdDirs.slice().reverse()) await rm(d, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Runs `fn` with a transaction: commits when `fn` returns, rolls back when it throws. */
export async function inTransaction<T>(fn: (tx: FileTransaction) => Promise<T>): Promise<T> {
  const tx = new FileTransaction();
  let result: T;
  try {
    result = await fn(tx);
  } catch (err) {
    await tx.rollback();
    throw err;
  }
  await tx.commit();
  return result;
}

const LOCK_NAME = '.lock';
const LOCK_WAIT_MS = 15_000;
const inProcess = new Map<string, Promise<unknown>>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function acquire(dir: string, waitMs: number): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_NAME);
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      const fh = await open(path, 'wx', PRIVATE_MODE);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => unlink(path).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    // A lock left by a process that died is stale; one still being written (no pid yet) is not.
    if (Number.isSafeInteger(holder) && holder > 0 && !processAlive(holder)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (Date.now() > until) {
      throw new AbortedError(
        `the CA directory ${dir} is busy (locked by process ${Number.isNaN(holder) ? 'unknown' : holder}); retry, or remove ${path} if no fedlab command is running`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Runs `fn` holding the lock of directory `dir`: calls in this process queue
 * up, and other processes wait on a `.lock` file (a lock of a dead process is broken).
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>, options: { readonly waitMs?: number } = {}): Promise<T> {
  const key = resolve(dir);
  const previous = inProcess.get(key) ?? Promise.resolve();
  const run = previous
    .catch(() => undefined)
    .then(async () => {
      const release = await acquire(key, options.waitMs ?? LOCK_WAIT_MS);
      try {
        return await fn();
      } finally {
        await release();
      }
    });
  inProcess.set(key, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(key) === run) inProcess.delete(key);
  }
}
