/** `fedlab profile ls`: the saved profiles, one line each. */
import type { Command } from 'commander';
import { action, printJson } from '../../cli-support.js';
import { printable, writeOut } from '../../printable.js';
import { profileJson, profilesFile, readProfiles, type ProfileLocation } from '../../profiles.js';
import { table } from '../../text-table.js';

/** Registers `fedlab profile ls`. */
export function registerProfileLs(profile: Command, location: ProfileLocation): void {
  profile
    .command('ls')
    .description('list the saved profiles')
    .option('--json', 'print JSON')
    .action(
      action((flags: { json?: boolean }) => {
        const all = readProfiles(location);
        const names = Object.keys(all).sort();
        if (flags.json) {
          printJson({ file: profilesFile(location), profiles: Object.fromEntries(names.map((n) => [n, profileJson(all[n] ?? {})])) });
          return;
        }
        if (names.length === 0) {
          writeOut(`no profiles (${profilesFile(location)}); add one with \`fedlab profile add NAME --sa … --tls-dir …\`\n`);
          return;
        }
        const rows = names.map((n) => {
          const p = all[n] ?? {};
          return [n, p.sa ?? '-', p.sp ?? '-', p.ma ?? '-', p.tlsDir ?? '-', String(p.chains?.length ?? 0)].map(printable);
        });
        writeOut(`${table(['NAME', 'SA', 'SP', 'MA', 'TLS DIR', 'CHAINS'], rows)}\n`);
      }),
    );
}
