/**
 * `fedlab member ls`: the provider's members, one line per credential delegated to each (its jti for
 * `fedlab member revoke`, its slice, expiry, whether it is live, revoked or expired, and whether it
 * carried an SSH key); `--all` lists removed members too; `--json` prints the members as JSON.
 * Administrators and readers of the provider may list.
 */
import type { Command } from 'commander';
import type { Member } from '../../../services/generated/fedlab/v1/service_provider.js';
import { action, printJson } from '../../cli-support.js';
import { printableLine, writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { table } from '../../text-table.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';

/** A member as `--json` prints it. */
export function memberJson(m: Member): Record<string, unknown> {
  return {
    urn: m.urn,
    display_name: m.displayName,
    key_thumbprint: m.keyThumbprint,
    added_at: m.addedAt?.toISOString() ?? null,
    removed_at: m.removedAt?.toISOString() ?? null,
    ssh_public_keys: m.sshPublicKeys,
    credentials: m.credentials.map((c) => ({
      jti: c.jti,
      slice_urn: c.sliceUrn,
      expires_at: c.expiresAt?.toISOString() ?? null,
      revoked: c.revoked,
      with_ssh_key: c.withSshKey,
    })),
  };
}

/** The table's rows: one per credential, a member without any on a line of its own. */
function rows(members: readonly Member[], now: number): string[][] {
  const out: string[][] = [];
  for (const m of members) {
    const who = [printableLine(m.urn), printableLine(m.displayName)];
    if (m.removedAt) {
      out.push([...who, '-', '-', '-', `removed ${m.removedAt.toISOString()}`, '']);
      continue;
    }
    if (m.credentials.length === 0) out.push([...who, '-', '-', '-', 'no credentials', '']);
    for (const c of m.credentials) {
      const exp = c.expiresAt?.getTime() ?? 0;
      const state = c.revoked ? 'revoked' : exp <= now ? 'expired' : 'live';
      out.push([...who, c.jti, printableLine(c.sliceUrn), c.expiresAt?.toISOString() ?? '-', state, c.withSshKey ? 'yes' : 'no']);
    }
  }
  return out;
}

/** Registers `fedlab member ls`. */
export function registerMemberLs(member: Command): void {
  withSp(member.command('ls').description("list the provider's members and the credentials delegated to each"))
    .option('--all', 'also list removed members')
    .option('--json', 'print JSON')
    .action(
      action(async (flags: SpFlags & { json?: boolean; all?: boolean }) => {
        const client = spClient(flags);
        const all: Member[] = [];
        try {
          let token = '';
          do {
            const page = await client
              .listMembers({ pageSize: 1000, pageToken: token, includeRemoved: flags.all === true })
              .catch((err: unknown) => refused(err, 'could not list members'));
            all.push(...page.members);
            token = page.nextPageToken;
          } while (token);
        } finally {
          client.close();
        }
        if (flags.json) return printJson(all.map(memberJson));
        const head = ['MEMBER', 'NAME', 'JTI', 'SLICE', 'EXPIRES', 'STATE', 'SSH KEY'];
        writeOut(`${table(head, rows(all, Date.now()))}\n`);
      }),
    );
}
