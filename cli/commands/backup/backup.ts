/**
 * `fedlab backup --config FILE --out FILE`: a consistent online backup of a
 * running service's store. The service streams its store as of one LevelDB
 * snapshot (Admin.Snapshot) while it goes on serving; the file is written
 * beside its final name and moved there only once whole, checked and synced.
 * By default the call is made as the service itself, with the TLS files its
 * config names (so run it where the service runs); `--tls-dir` calls as one of
 * its administrators instead.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { BackupWriter } from '../../../services/core/admin/backup-file.js';
import { adminClient, receiveSnapshot } from '../../../services/core/admin/snapshot-client.js';
import { action, checkAddress, printJson, tlsFrom } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { counted } from '../../printable.js';
import { refused } from '../../remote.js';
import { dialAddress, ownTls, readServiceConfig } from './service-config.js';

interface BackupFlags {
  config: string;
  out: string;
  address?: string;
  tlsDir?: string;
  ca?: string;
  timeout?: string;
  json?: boolean;
}

/** Registers `fedlab backup`. */
export function registerBackupCommand(program: Command): void {
  program
    .command('backup')
    .description("write a consistent snapshot of a running service's store to a file, without stopping it")
    .requiredOption('--config <file>', "the service's config (its address, URN and TLS files)")
    .requiredOption('--out <file>', 'the backup file to write (must not exist)')
    .option('--address <host:port>', "where to reach the service (default: its config's listen address)")
    .option('--tls-dir <dir>', "call as one of the service's administrators (key.pem, cert.pem, ca.pem) instead of as the service itself")
    .option('--ca <file>', 'CA certificates that verify the service (with --tls-dir; default its ca.pem)')
    .option('--timeout <duration>', 'deadline of the whole backup, e.g. 10m (default 10m)')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (flags: BackupFlags) => {
        const config = readServiceConfig(flags.config);
        const address = checkAddress(flags.address ?? dialAddress(config), '--address');
        const tls = flags.tlsDir ? tlsFrom({ tlsDir: flags.tlsDir, ...(flags.ca ? { ca: flags.ca } : {}) }) : ownTls(config);
        const deadlineMs = flags.timeout ? parseDuration(flags.timeout, '--timeout') * 1000 : 600_000;
        const out = resolve(flags.out);
        if (existsSync(out)) throw new InvalidArgumentError(`${out} exists; a backup never overwrites a file — choose another --out`);
        const client = adminClient({ address, tls, serverUrn: config.urn, deadlineMs });
        let writer: BackupWriter | undefined;
        try {
          const got = await receiveSnapshot(client, [], {
            onHeader: async (h) => {
              writer = await BackupWriter.create(out, {
                serviceUrn: h.serviceUrn,
                role: h.role,
                takenAt: (h.takenAt ?? new Date()).toISOString(),
                softwareVersion: h.softwareVersion,
              });
            },
            onRun: async (run) => writer?.add(run),
          }).catch((err: unknown) => refused(err, `could not back up ${config.urn} at ${address}`));
          const w = writer as BackupWriter;
          writer = undefined;
          const trailer = await w.finish({ entryCount: got.entryCount, digest: got.digest });
          const result = {
            file: out,
            service_urn: got.header.serviceUrn,
            role: got.header.role,
            taken_at: (got.header.takenAt ?? new Date()).toISOString(),
            entries: trailer.entryCount,
            digest: trailer.digest,
          };
          if (flags.json) printJson(result);
          else
            process.stdout.write(
              `backed up ${result.service_urn} (${result.role}) as of ${result.taken_at}: ${counted(result.entries, 'entry', 'entries')}, ${result.digest}, in ${out}\n`,
            );
        } finally {
          await writer?.abort();
          client.close();
        }
      }),
    );
}
