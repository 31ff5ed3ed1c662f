/**
 * `fedlab revocations ls`: the revocation list of a slice authority (`--sa`) or of a management
 * authority (`--ma`), all pages, as a table or `--json`.
 * Exit codes: 0 done; 1 refused or unreachable; 2 bad input.
 */
import type { Command } from 'commander';
import { registerRevocationsLs } from './ls.js';

/** Registers `fedlab revocations`. */
export function registerRevocationsCommand(program: Command): void {
  const revocations = program.command('revocations').description('revocation lists of slice and management authorities');
  registerRevocationsLs(revocations);
}
