/**
 * Writing the dashboard's current one-time login link to the file its config
 * names (`dashboard.login_link_file`), for `fedlab up` or an operator to
 * read: written whole to a new file (created exclusively, mode 0600, under
 * an unpredictable name beside it) and renamed into place, so a reader
 * never sees half a link and no one else can read it.
 */
import { rm } from 'node:fs/promises';
import { replaceFileAtomically } from '../atomic-file.js';

/** Replaces the content of `file` with `text` (mode 0600). */
export async function writeLoginLinkFile(file: string, text: string): Promise<void> {
  await replaceFileAtomically(file, text, 0o600);
}

/** Removes the link file (at stop: its link died with the process). */
export async function removeLoginLinkFile(file: string): Promise<void> {
  await rm(file, { force: true });
}
