/** `fedlab profile rm NAME`: removes a saved profile. */
import type { Command } from 'commander';
import { action, CliExit, EXIT_FAILURE, printJson } from '../../cli-support.js';
import { writeOut } from '../../printable.js';
import { checkProfileName, removeProfile, type ProfileLocation } from '../../profiles.js';

/** Registers `fedlab profile rm`. */
export function registerProfileRm(profile: Command, location: ProfileLocation): void {
  profile
    .command('rm')
    .description('remove a saved profile')
    .argument('<name>', 'the profile name')
    .option('--json', 'print JSON')
    .action(
      action((name: string, flags: { json?: boolean }) => {
        if (!removeProfile(checkProfileName(name), location)) throw new CliExit(EXIT_FAILURE, `no profile named ${name}`);
        if (flags.json) printJson({ name, removed: true });
        else writeOut(`profile ${name} removed\n`);
      }),
    );
}
