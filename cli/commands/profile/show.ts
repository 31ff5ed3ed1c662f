/** `fedlab profile show NAME`: one profile, field by field. */
import type { Command } from 'commander';
import { action, printJson } from '../../cli-support.js';
import { printable, writeOut } from '../../printable.js';
import { loadProfile, profileJson, type ProfileLocation } from '../../profiles.js';

/** Registers `fedlab profile show`. */
export function registerProfileShow(profile: Command, location: ProfileLocation): void {
  profile
    .command('show')
    .description('show a saved profile')
    .argument('<name>', 'the profile name')
    .option('--json', 'print JSON')
    .action(
      action((name: string, flags: { json?: boolean }) => {
        const p = profileJson(loadProfile(name, location));
        if (flags.json) {
          printJson({ name, profile: p });
          return;
        }
        const lines = Object.entries(p).map(
          ([k, v]) => `${k}: ${Array.isArray(v) ? v.map((x) => printable(String(x))).join(', ') : printable(String(v))}`,
        );
        writeOut(`${[`profile ${printable(name)}`, ...lines.map((l) => `  ${l}`)].join('\n')}\n`);
      }),
    );
}
