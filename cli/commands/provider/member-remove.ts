/**
 * `fedlab member remove URN`: the provider revokes every credential it delegated to the member and
 * takes the member's SSH keys off every slice they were added to. Again on a removed member prints
 * the same; a member the provider never had is refused (NOT_FOUND, exit 1).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, parseUrn } from '../../../services/core/identity/urn.js';
import { action, printJson } from '../../cli-support.js';
import { counted, writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';

/** Registers `fedlab member remove`. */
export function registerMemberRemove(member: Command): void {
  withSp(
    member
      .command('remove <urn>')
      .description("remove a member: revoke its credentials and take its SSH keys off every slice (the provider's administrators)"),
  )
    .option('--json', 'print JSON')
    .action(
      action(async (urn: string, flags: SpFlags & { json?: boolean }) => {
        if (!isUrn(urn) || parseUrn(urn).kind !== 'user')
          throw new InvalidArgumentError(`${JSON.stringify(urn)} is not a member URN urn:fedlab:<domain>:user:<name>`);
        // The slice authority hands the change on to every site: more than the default 30 s may be needed.
        const client = spClient(flags, 120);
        try {
          const res = await client.removeMember({ memberUrn: urn }).catch((err: unknown) => refused(err, `cannot remove ${urn}`));
          if (flags.json) printJson({ member: urn, revoked_jtis: res.revokedJtis, slice_urns: res.sliceUrns });
          else {
            const lines = [
              `removed ${urn}: ${counted(res.revokedJtis.length, 'credential')} revoked, SSH keys taken off ${counted(res.sliceUrns.length, 'slice')}`,
              ...res.revokedJtis.map((j) => `  revoked ${j}`),
              ...res.sliceUrns.map((s) => `  off ${s}`),
            ];
            writeOut(`${lines.join('\n')}\n`);
          }
        } finally {
          client.close();
        }
      }),
    );
}
