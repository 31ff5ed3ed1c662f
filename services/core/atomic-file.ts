/**
 * Replacing a file whole: the text goes to a new file beside it (created exclusively under an
 * unpredictable name, so nothing planted there is followed or reused), is synced, and is renamed over
 * the old one — a reader sees the old content or the new, never half, and the mode is set at creation.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Replaces the content of `file` with `text`, created with `mode`. */
export async function replaceFileAtomically(file: string, text: string, mode: number): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
