/** `fedlab audit verify`: walks a service's audit chain and names the first record that does not match. */
import type { Command } from 'commander';
import { verifyAuditStore } from '../../../services/core/audit/audit-log.js';
import { action, CliExit, EXIT_FAILURE, printJson } from '../../cli-support.js';
import { writeOut } from '../../printable.js';
import { withServiceStore } from './audit-store.js';

/** Registers `fedlab audit verify`. */
export function registerAuditVerify(audit: Command): void {
  audit
    .command('verify')
    .description("check a service's audit log, record by record (the service must be stopped)")
    .requiredOption('--config <file>', "the service's config file (its data directory holds the log)")
    .option('--json', 'print JSON')
    .action(
      action(async (flags: { config: string; json?: boolean }) => {
        const check = await withServiceStore(flags.config, (store) => verifyAuditStore(store));
        if (flags.json) printJson(check);
        if (!check.ok)
          throw new CliExit(EXIT_FAILURE, `the audit log does not verify at record ${check.seq} (key ${check.key}): ${check.why}`);
        if (!flags.json) writeOut(`the audit log verifies: ${check.records} record(s), head ${check.head}\n`);
      }),
    );
}
