/**
 * `fedlab slice create|ls|show|renew|delete|users`: slices, against a slice
 * authority, as one of its providers (or an administrator, for ls/show).
 * `create` asks for nodes per site (`--site plc.test=3`, or named nodes
 * `--site plc.test=n1,n2`) and follows the slice's progress per node — a
 * progress bar in a terminal, plain lines otherwise; `--json` on every
 * command prints the slice (or slices) as JSON instead. `create --ssh-key FILE`
 * and `users add|rm|ls` give the slice's users and their SSH keys.
 * Exit codes: 0 done; 1 the SA refused, could not be reached, or the slice
 * FAILED (the message names each failed site and node and why); 2 bad input.
 */
import type { Command } from 'commander';
import { registerSliceCreate } from './create.js';
import { registerSliceDelete } from './delete.js';
import { registerSliceLs } from './ls.js';
import { registerSliceRenew } from './renew.js';
import { registerSliceShow } from './show.js';
import { registerSliceUsers } from './users.js';

/** Registers `fedlab slice`. */
export function registerSliceCommand(program: Command): void {
  const slice = program.command('slice').description('slices at a slice authority: create, list, show, renew, delete, users');
  registerSliceCreate(slice);
  registerSliceLs(slice);
  registerSliceShow(slice);
  registerSliceRenew(slice);
  registerSliceDelete(slice);
  registerSliceUsers(slice);
}
