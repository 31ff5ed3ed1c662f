/**
 * One file the tooling writes (a key, a chain, a state file), the safe way for secrets:
 *
 * - written whole into a temporary file beside the target with an unpredictable name, created
 *   exclusively (`O_EXCL`, `O_NOFOLLOW`) with its final mode set on the open descriptor, so the
 *   umask cannot widen it and no one can open it first;
 * - never through a symbolic link: a link at the target is refused, whatever it points to, and the
 *   link and its target are left as they were;
 * - an existing file is refused unless `replace` (`--force` on the command line); a replaced file is
 *   a new file with the new mode, never the old one with its old (possibly wider) mode;
 * - put in place atomically: a hard link when the target must not exist (the kernel refuses an
 *   existing name at that moment, so a file made meanwhile is not overwritten), a rename otherwise.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InvalidArgumentError } from '../services/core/errors.js';

/** Options of {@link writeOutputFile}. */
export interface OutputFileOptions {
  /** The file's mode (default 0600). */
  readonly mode?: number;
  /** Replace an existing regular file (`--force`); a symbolic link is refused even then. */
  readonly replace?: boolean;
  /** How the flag that replaces is called, for the message (default `--force`). */
  readonly replaceFlag?: string;
}

const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function lstatOrUndefined(file: string): Stats | undefined {
  try {
    return lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function refusedLink(file: string): InvalidArgumentError {
  return new InvalidArgumentError(`${file} is a symbolic link; files are never written through one: remove it or choose another path`, {
    rule: 'symlink',
  });
}

function refusedExisting(file: string, flag: string): InvalidArgumentError {
  return new InvalidArgumentError(`${file} already exists; choose another path, or pass ${flag} to replace it`, { rule: 'exists' });
}

/**
 * Throws (bad input: nothing written) when `file` may not be written: a symbolic link always, anything
 * that is not a regular file, and an existing file unless `replace`. Call it before work that cannot
 * be undone (e.g. a remote call) so that its result is not lost; {@link writeOutputFile} checks again.
 */
export function checkOutputFile(file: string, options: Pick<OutputFileOptions, 'replace' | 'replaceFlag'> = {}): void {
  const st = lstatOrUndefined(resolve(file));
  if (!st) return;
  if (st.isSymbolicLink()) throw refusedLink(file);
  if (!st.isFile()) throw new InvalidArgumentError(`${file} exists and is not a regular file`, { rule: 'exists' });
  if (!options.replace) throw refusedExisting(file, options.replaceFlag ?? '--force');
}

/** Writes all of `data` to an open descriptor. */
function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/** Creates `path` exclusively (never following a link) with `mode`, holding `data`, synced; removed again on failure. */
function createExclusive(path: string, data: Buffer, mode: number): void {
  const fd = openSync(path, CREATE_NEW, mode);
  try {
    // The umask narrowed the mode at creation; set exactly what was asked.
    fchmodSync(fd, mode);
    writeAll(fd, data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw err;
  }
  closeSync(fd);
}

/** Writes `data` to `file` as the module comment says. Returns `file`. */
export function writeOutputFile(file: string, data: string | Uint8Array, options: OutputFileOptions = {}): string {
  const mode = options.mode ?? 0o600;
  const target = resolve(file);
  checkOutputFile(file, options);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(12).toString('hex')}.tmp`);
  createExclusive(tmp, bytes, mode);
  try {
    if (options.replace) {
      // A rename replaces a link planted meanwhile (not its target); still, refuse one seen now.
      if (lstatOrUndefined(target)?.isSymbolicLink()) throw refusedLink(file);
      renameSync(tmp, target);
      return file;
    }
    try {
      linkSync(tmp, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        throw lstatOrUndefined(target)?.isSymbolicLink() ? refusedLink(file) : refusedExisting(file, options.replaceFlag ?? '--force');
      }
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err;
      // A file system without hard links: create the target itself, still exclusively.
      try {
        createExclusive(target, bytes, mode);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw refusedExisting(file, options.replaceFlag ?? '--force');
        throw e;
      }
    }
    return file;
  } finally {
    rmSync(tmp, { force: true });
  }
}
