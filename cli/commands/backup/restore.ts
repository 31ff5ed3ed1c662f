/**
 * `fedlab restore --config FILE --in FILE`: puts a backup made by `fedlab
 * backup` into the service's data directory, which must be empty or missing
 * (a restore never mixes a backup with a store that is there). The whole
 * file is checked (count and digest) before anything is written, and it must
 * be a backup of the service the config names. Then start the service, and
 * run `fedlab federation check` to see what changed since the backup.
 * Exit codes: 0 restored; 1 the write failed (nothing is left behind);
 * 2 bad input — a data directory that is not empty, a damaged file, a backup of another service.
 */
import type { Command } from 'commander';
import { openBackupFile } from '../../../services/core/admin/backup-file.js';
import { dataDirProblem, restoreIntoEmptyDir } from '../../../services/core/admin/restore-store.js';
import { action, CliExit, EXIT_USAGE, printJson } from '../../cli-support.js';
import { counted } from '../../printable.js';
import { readServiceConfig } from './service-config.js';

interface RestoreFlags {
  config: string;
  in: string;
  dataDir?: string;
  json?: boolean;
}

/** Registers `fedlab restore`. */
export function registerRestoreCommand(program: Command): void {
  program
    .command('restore')
    .description("put a backup back into a service's empty data directory (the service stopped)")
    .requiredOption('--config <file>', "the service's config (its URN, role and data directory)")
    .requiredOption('--in <file>', 'the backup file (`fedlab backup --out`)')
    .option('--data-dir <dir>', "restore into this directory instead of the config's data_dir (it must be empty)")
    .option('--json', 'print the result as JSON')
    .action(
      action(async (flags: RestoreFlags) => {
        const config = readServiceConfig(flags.config, { data_dir: flags.dataDir });
        const problem = dataDirProblem(config.data_dir);
        if (problem) throw new CliExit(EXIT_USAGE, `nothing was restored: ${problem}`);
        const backup = await openBackupFile(flags.in);
        const { header } = backup;
        if (header.serviceUrn !== config.urn || header.role !== config.role) {
          throw new CliExit(
            EXIT_USAGE,
            `nothing was restored: ${flags.in} is a backup of ${header.serviceUrn} (${header.role}), but ${flags.config} is the config of ${config.urn} (${config.role})`,
          );
        }
        const trailer = await restoreIntoEmptyDir(config.data_dir, backup);
        const result = {
          data_dir: config.data_dir,
          service_urn: header.serviceUrn,
          role: header.role,
          taken_at: header.takenAt,
          entries: trailer.entryCount,
          digest: trailer.digest,
        };
        if (flags.json) printJson(result);
        else
          process.stdout.write(
            `restored ${counted(result.entries, 'entry', 'entries')} of ${result.service_urn} (${result.role}) as of ${result.taken_at} into ${result.data_dir}; ` +
              'start the service, then run `fedlab federation check` to see what changed since the backup\n',
          );
      }),
    );
}
