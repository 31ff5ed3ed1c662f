/** Who this management authority process is: its software version and the short id of its instance. */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../core/paths.js';

/** The management authority's software version. */
export function maVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** A short id of this MA instance (from its data directory): part of the names of the namespaces it makes. */
export function maInstance(dataDir: string): string {
  let dir = dataDir;
  try {
    dir = realpathSync(dataDir);
  } catch {
    // Not created yet: the configured path will do.
  }
  return createHash('sha256').update(dir).digest('hex').slice(0, 4);
}
