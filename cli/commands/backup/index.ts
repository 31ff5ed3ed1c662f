/**
 * `fedlab backup` and `fedlab restore`: a running service's store written to
 * a file as of one LevelDB snapshot, and put back into an empty data
 * directory. See docs/architecture.md ("Backup and restore").
 * Exit codes: 0 done; 1 the service refused or could not be reached, or the
 * write failed; 2 bad input (a data directory that is not empty, a damaged
 * backup, a backup of another service, an existing --out).
 */
import type { Command } from 'commander';
import { registerBackupCommand } from './backup.js';
import { registerRestoreCommand } from './restore.js';

/** Registers `fedlab backup` and `fedlab restore`. */
export function registerBackupCommands(program: Command): void {
  registerBackupCommand(program);
  registerRestoreCommand(program);
}
