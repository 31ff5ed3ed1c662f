/**
 * `fedlab audit ls`: a service's audit records, filtered. Offline (`--config
 * FILE` alone) it reads the stopped service's store, oldest first; with
 * `--remote` or `--address` it asks the running service (Admin.ListEvents),
 * newest first, as the service itself (its config's TLS files) or as one of
 * its administrators (`--tls-dir`).
 */
import type { Command } from 'commander';
import { AUDIT_TABLE } from '../../../services/core/audit/audit-log.js';
import type { AuditRecord } from '../../../services/core/audit/audit-chain.js';
import { eventFilter, matchesFilter } from '../../../services/core/audit/audit-query.js';
import { adminClient } from '../../../services/core/admin/snapshot-client.js';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn } from '../../../services/core/identity/urn.js';
import { action, checkAddress, tlsFrom } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { printable, printableJson, writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { table } from '../../text-table.js';
import { dialAddress, ownTls, readServiceConfig } from '../backup/service-config.js';
import { withServiceStore } from './audit-store.js';
import { listRemoteEvents } from './remote-events.js';

interface LsFlags {
  config?: string;
  remote?: boolean;
  address?: string;
  serviceUrn?: string;
  tlsDir?: string;
  cert?: string;
  key?: string;
  ca?: string;
  timeout?: string;
  since?: string;
  until?: string;
  caller?: string;
  object?: string;
  method?: string;
  limit: string;
  json?: boolean;
}

function timeFlag(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError(`${flag} must be an ISO 8601 time, e.g. 2026-12-01T00:00:00Z`);
  return new Date(ms);
}

/** Registers `fedlab audit ls`. */
export function registerAuditLs(audit: Command): void {
  audit
    .command('ls')
    .description(
      "list a service's audit records: from its store with --config alone (the service stopped; oldest first), " +
        'or from the running service with --remote or --address (newest first; an administrator or the service itself)',
    )
    .option('--config <file>', "the service's config file (its store; with --remote also its address, URN and TLS files)")
    .option('--remote', "ask the running service at its config's listen address (as the service itself unless --tls-dir)")
    .option('--address <host:port>', 'ask the running service at this address')
    .option('--service-urn <urn>', "pin the service's certificate to this URN (default: the config's URN, else its host name is checked)")
    .option('--tls-dir <dir>', "call as one of the service's administrators (key.pem, cert.pem, ca.pem)")
    .option('--cert <file>', 'your certificate (PEM)')
    .option('--key <file>', 'your private key (PEM)')
    .option('--ca <file>', 'CA certificates that verify the service (PEM)')
    .option('--timeout <duration>', 'deadline of each call, e.g. 30s (default 30s)')
    .option('--since <time>', 'only records at or after this ISO 8601 time')
    .option('--until <time>', 'only records before this ISO 8601 time')
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
        const since = timeFlag(flags.since, '--since');
        const until = timeFlag(flags.until, '--until');
        const request = { caller: flags.caller ?? '', object: flags.object ?? '', method: flags.method ?? '' };
        // The service checks the same filter; checked here too, so offline gets the same answers.
        const filter = eventFilter({ ...request, since, until });
        const remote = flags.remote || flags.address !== undefined || flags.config === undefined;
        let rows: AuditRecord[];
        if (remote) {
          rows = await listRemote(flags, { ...(since ? { since } : {}), ...(until ? { until } : {}), ...request }, limit);
        } else {
          if (flags.tlsDir || flags.cert || flags.key || flags.serviceUrn)
            throw new InvalidArgumentError('--tls-dir, --cert, --key and --service-urn call a running service: add --remote');
          rows = await withServiceStore(flags.config as string, async (store) => {
            const out: AuditRecord[] = [];
            for await (const [, r] of store.table<AuditRecord>(AUDIT_TABLE).entries()) {
              if (!matchesFilter(r, filter)) continue;
              out.push(r);
              if (out.length >= limit) break;
            }
            return out;
          });
        }
        if (flags.json) {
          for (const r of rows) process.stdout.write(`${printableJson(r)}\n`);
          return;
        }
        if (remote) {
          writeOut(`${table(['SEQ', 'TIME', 'METHOD', 'CALLER', 'OBJECT', 'OUTCOME'], rows.map(cells))}\n`);
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

/** A record as table cells. */
function cells(r: AuditRecord): string[] {
  return [
    String(r.seq),
    new Date(r.time).toISOString(),
    r.method.split('/').pop() ?? '',
    r.caller,
    r.object || '-',
    r.rule ? `${r.outcome} (rule ${r.rule})` : r.outcome,
  ].map(printable);
}

/** The records from the running service. */
async function listRemote(flags: LsFlags, filter: Parameters<typeof listRemoteEvents>[1], limit: number): Promise<AuditRecord[]> {
  if (flags.serviceUrn !== undefined && !isUrn(flags.serviceUrn))
    throw new InvalidArgumentError(`--service-urn ${JSON.stringify(flags.serviceUrn)} is not a URN`);
  const config = flags.config !== undefined ? readServiceConfig(flags.config) : undefined;
  if (!config && flags.address === undefined)
    throw new InvalidArgumentError('give --config FILE (the service stopped, or with --remote the running one) or --address HOST:PORT');
  const address = checkAddress(flags.address ?? dialAddress(config as NonNullable<typeof config>), '--address');
  const asCaller = flags.tlsDir !== undefined || flags.cert !== undefined || flags.key !== undefined;
  if (!config && !asCaller)
    throw new InvalidArgumentError('with --address and no --config, give --tls-dir DIR (an administrator of the service)');
  const tls = asCaller || !config ? tlsFrom(flags) : ownTls(config);
  const serverUrn = flags.serviceUrn ?? config?.urn;
  const deadlineMs = flags.timeout ? parseDuration(flags.timeout, '--timeout') * 1000 : 30_000;
  const client = adminClient({ address, tls, deadlineMs, ...(serverUrn ? { serverUrn } : {}) });
  try {
    return await listRemoteEvents(client, filter, limit).catch((err: unknown) =>
      refused(err, `could not list the audit events of ${serverUrn ?? address} at ${address}`),
    );
  } finally {
    client.close();
  }
}
