/**
 * Putting a backup back: only into an empty (or missing) data directory, so
 * a restore can never mix a backup with a store that is there, and only
 * after the whole file has been read once and its count and digest checked.
 * The entries are written as they were, raw, in synced batches; if anything
 * fails the directory is emptied again, so the restore can simply be re-run.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { FailedPreconditionError } from '../errors.js';
import type { BackupFile, BackupTrailer } from './backup-file.js';

/** Why a restore may not go into `dir`, or undefined when it may (the directory is missing or empty). */
export function dataDirProblem(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  if (!statSync(dir).isDirectory()) return `${dir} exists and is not a directory`;
  const names = readdirSync(dir);
  if (names.length === 0) return undefined;
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? ', …' : '');
  return `the data directory ${dir} is not empty (${names.length} entr${names.length === 1 ? 'y' : 'ies'}: ${shown}); a restore goes only into an empty one — stop the service, move that directory aside (keep it until the restored service runs), and run the restore again`;
}

/**
 * Restores a backup into `dir` (missing or empty): checks the file whole first, then writes its
 * entries. Returns the backup's trailer (what was restored).
 */
export async function restoreIntoEmptyDir(dir: string, backup: BackupFile): Promise<BackupTrailer> {
  const problem = dataDirProblem(dir);
  if (problem) throw new FailedPreconditionError(problem);
  // A damaged file is refused before the directory is touched.
  await backup.read();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  try {
    await db.open({ createIfMissing: true, errorIfExists: true });
    const trailer = await backup.read(async (run) => {
      await db.batch(
        run.map((e) => ({ type: 'put' as const, key: e.key, value: e.value })),
        { sync: true },
      );
    });
    await db.close();
    return trailer;
  } catch (err) {
    await db.close().catch(() => undefined);
    // Leave the directory as empty as it was, so the restore can be run again.
    for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
    throw err;
  }
}
