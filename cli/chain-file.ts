/** A credential chain file, as `fedlab cred`, `fedlab sliver` and the slice authority's `chain_file` read it. */
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a chain (root first) to `file`, one compact JWS per line, readable by its owner only; whole
 * (a temporary file beside it, then a rename), so a reader never sees half a chain. Returns `file`.
 */
export function writeChainFile(file: string, chain: readonly string[]): string {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, `${chain.join('\n')}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return file;
}
