/** A credential chain file, as `fedlab cred`, `fedlab sliver` and the slice authority's `chain_file` read it. */
import { writeOutputFile } from '../certs/output-file.js';

/** Options of {@link writeChainFile}. */
export interface ChainFileOptions {
  /** Replace an existing file (`--force`); without it an existing file is refused. */
  readonly replace?: boolean;
}

/**
 * Writes a chain (root first) to `file`, one compact JWS per line, 0600 and whole (see
 * certs/output-file.ts: never through a symbolic link, an existing file only with `replace`, created
 * exclusively under an unpredictable temporary name), so a reader never sees half a chain. Returns `file`.
 */
export function writeChainFile(file: string, chain: readonly string[], options: ChainFileOptions = {}): string {
  return writeOutputFile(file, `${chain.join('\n')}\n`, { mode: 0o600, replace: options.replace === true });
}
