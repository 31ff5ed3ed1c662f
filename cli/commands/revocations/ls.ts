/** `fedlab revocations ls --sa ADDR | --ma ADDR`: what an authority has revoked. */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { RevocationEntry } from '../../../services/generated/fedlab/v1/common.js';
import { action, printJson } from '../../cli-support.js';
import { printable, writeOut } from '../../printable.js';
import { maClient, refused, withTlsFlags, type TlsFlags } from '../../remote.js';
import { table } from '../../text-table.js';
import { saClient } from '../slice/sa-client.js';

interface LsFlags extends TlsFlags {
  sa?: string;
  saUrn?: string;
  ma?: string;
  maUrn?: string;
  json?: boolean;
}

type Page = { version: number; entries: RevocationEntry[]; nextPageToken: string };

/** Every page of a list. */
async function all(list: (token: string) => Promise<Page>): Promise<{ version: number; entries: RevocationEntry[] }> {
  const entries: RevocationEntry[] = [];
  let version = 0;
  let token = '';
  do {
    const page = await list(token);
    entries.push(...page.entries);
    version = page.version;
    token = page.nextPageToken;
  } while (token);
  return { version, entries };
}

/** Registers `fedlab revocations ls`. */
export function registerRevocationsLs(revocations: Command): void {
  withTlsFlags(
    revocations
      .command('ls')
      .description("an authority's revocation list: a slice authority's (--sa) or a management authority's (--ma)")
      .option('--sa <host:port>', 'the slice authority')
      .option('--sa-urn <urn>', "pin the SA's certificate to this URN")
      .option('--ma <host:port>', 'the management authority')
      .option('--ma-urn <urn>', "pin the MA's certificate to this URN"),
  )
    .option('--json', 'print JSON')
    .action(
      action(async (flags: LsFlags, cmd: Command) => {
        // A profile may fill both addresses; --sa/--ma given explicitly choose (see profile-flags.ts).
        if (!flags.sa && !flags.ma) throw new InvalidArgumentError('give --sa ADDR or --ma ADDR');
        const maOnly = flags.ma !== undefined && cmd.getOptionValueSource('ma') === 'cli' && cmd.getOptionValueSource('sa') !== 'cli';
        const useSa = flags.sa !== undefined && !maOnly;
        // Both authorities answer ListRevocations with the same pages.
        const client: {
          listRevocations(req: { pageSize: number; pageToken: string; sinceVersion: number }): Promise<Page>;
          close(): void;
        } = useSa ? saClient({ ...flags, sa: flags.sa as string }) : maClient({ ...flags, ma: flags.ma as string });
        let list: { version: number; entries: RevocationEntry[] };
        try {
          list = await all((t) =>
            client
              .listRevocations({ pageSize: 1000, pageToken: t, sinceVersion: 0 })
              .catch((e: unknown) => refused(e, 'cannot list revocations')),
          );
        } finally {
          client.close();
        }
        const authority = useSa ? `slice authority ${flags.sa}` : `management authority ${flags.ma}`;
        if (flags.json) {
          printJson({ authority: useSa ? 'sa' : 'ma', version: list.version, entries: list.entries.map((e) => RevocationEntry.toJSON(e)) });
          return;
        }
        if (list.entries.length === 0) {
          writeOut(`${authority}: nothing revoked (list version ${list.version})\n`);
          return;
        }
        const rows = list.entries.map((e) =>
          [e.jti || '-', e.keyThumbprint || '-', e.revokedAt?.toISOString() ?? '-', e.revokedBy, e.reason].map(printable),
        );
        writeOut(`${authority}, list version ${list.version}\n${table(['JTI', 'KEY', 'REVOKED AT', 'BY', 'REASON'], rows)}\n`);
      }),
    );
}
