/**
 * `fedlab profile add|ls|show|rm`: named sets of connection flags (`--sa`, `--sp`, `--ma`, `--tls-dir`,
 * `--chain`, URN pins) kept in `$XDG_CONFIG_HOME/fedlab/profiles.json` (see cli/profiles.ts), so that
 * `--profile NAME` (or FEDLAB_PROFILE=NAME) stands for them on every command that calls a service.
 * Exit codes: 0 done; 1 `rm` of a profile that does not exist; 2 bad input.
 */
import type { Command } from 'commander';
import type { ProgramContext } from '../../program-context.js';
import { registerProfileAdd } from './add.js';
import { registerProfileLs } from './ls.js';
import { registerProfileRm } from './rm.js';
import { registerProfileShow } from './show.js';

/** Registers `fedlab profile`. */
export function registerProfileCommand(program: Command, context: ProgramContext): void {
  const location = context.profiles?.location ?? {};
  const profile = program.command('profile').description('named sets of addresses and TLS files for the commands that call services');
  registerProfileAdd(profile, location);
  registerProfileLs(profile, location);
  registerProfileShow(profile, location);
  registerProfileRm(profile, location);
}
