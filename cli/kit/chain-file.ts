/** A credential chain file as `fedlab cred` and the slice authority's `chain_file` read it. */
import { writeFileSync } from 'node:fs';

/** Writes a chain (root first) to `file`, one compact JWS per line, readable by its owner only; returns `file`. */
export function writeChainFile(file: string, chain: readonly string[]): string {
  writeFileSync(file, `${chain.join('\n')}\n`, { mode: 0o600 });
  return file;
}
