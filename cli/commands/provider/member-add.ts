/** `fedlab member add`: a member registered with the provider, bound to its certificate. */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { action, printJson, readFlagFile } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab member add`. */
export function registerMemberAdd(member: Command): void {
  withSp(member.command('add').description('register a member and the certificate its credentials are bound to'))
    .requiredOption('--urn <urn>', "the member's URN (urn:fedlab:<domain>:user:<name>), as its certificate names it")
    .requiredOption('--member-cert <file>', "the member's certificate (PEM, from `fedlab certs issue`)")
    .option('--display-name <text>', 'a display name', '')
    .option('--request-id <id>', 'idempotency key')
    .option('--json', 'print JSON')
    .action(
      action(async (flags: SpFlags & { urn: string; memberCert: string; displayName: string; requestId?: string; json?: boolean }) => {
        const pem = readFlagFile(flags.memberCert, '--member-cert');
        const client = spClient(flags);
        try {
          const m = (
            await client
              .addMember({
                requestId: flags.requestId ?? `cli-member-${randomBytes(6).toString('hex')}`,
                memberUrn: flags.urn,
                certificatePem: pem,
                displayName: flags.displayName,
              })
              .catch((err: unknown) => refused(err, 'the provider refused the member'))
          ).member;
          if (flags.json)
            printJson({ urn: m?.urn, key_thumbprint: m?.keyThumbprint, display_name: m?.displayName, added_at: m?.addedAt?.toISOString() });
          else writeOut(`member ${m?.urn} (key ${m?.keyThumbprint})\n`);
        } finally {
          client.close();
        }
      }),
    );
}
