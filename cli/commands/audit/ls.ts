/** `fedlab audit ls`: a service's audit records, filtered, oldest first. */
import type { Command } from 'commander';
import { AUDIT_TABLE } from '../../../services/core/audit/audit-log.js';
import type { AuditRecord } from '../../../services/core/audit/audit-chain.js';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { action, printJson } from '../../cli-support.js';
import { printable, writeOut } from '../../printable.js';
import { withServiceStore } from './audit-store.js';

interface LsFlags {
  config: string;
  since?: string;
  caller?: string;
  object?: string;
  method?: string;
  limit: string;
  json?: boolean;
}

/** Registers `fedlab audit ls`. */
export function registerAuditLs(audit: Command): void {
  audit
    .command('ls')
    .description("list a service's audit records, oldest first (the service must be stopped)")
    .requiredOption('--config <file>', "the service's config file")
    .option('--since <time>', 'only records at or after this ISO 8601 time')
    .option('--caller <urn>', 'only calls by this principal')
    .option('--object <urn-or-name>', 'only calls on this object')
    .option('--method <name>', 'only this method (its name, e.g. Allocate, or its full path)')
    .option('--limit <n>', 'at most this many records', '100')
    .option('--json', 'print JSON lines')
    .action(
      action(async (flags: LsFlags) => {
        const limit = Number(flags.limit);
        if (!Number.isSafeInteger(limit) || limit < 1 || limit > 100_000)
          throw new InvalidArgumentError('--limit must be a whole number from 1 to 100000');
        const since = flags.since === undefined ? undefined : Date.parse(flags.since);
        if (since !== undefined && Number.isNaN(since))
          throw new InvalidArgumentError('--since must be an ISO 8601 time, e.g. 2026-12-01T00:00:00Z');
        const rows = await withServiceStore(flags.config, async (store) => {
          const out: AuditRecord[] = [];
          for await (const [, r] of store.table<AuditRecord>(AUDIT_TABLE).entries()) {
            if (since !== undefined && r.time < since) continue;
            if (flags.caller && r.caller !== flags.caller) continue;
            if (flags.object && r.object !== flags.object) continue;
            if (flags.method && r.method !== flags.method && !r.method.endsWith(`/${flags.method}`)) continue;
            out.push(r);
            if (out.length >= limit) break;
          }
          return out;
        });
        if (flags.json) {
          for (const r of rows) printJson(r);
          return;
        }
        for (const r of rows) {
          const rule = r.rule ? ` (rule ${r.rule})` : '';
          writeOut(
            `${printable(`${r.seq}  ${new Date(r.time).toISOString()}  ${r.method.split('/').pop()}  ${r.caller}  ${r.object || '-'}  ${r.outcome}${rule}`)}\n`,
          );
        }
      }),
    );
}
