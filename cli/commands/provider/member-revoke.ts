/**
 * `fedlab member revoke URN JTI` (or `--jti JTI`, which takes an id beginning with '-'): the provider
 * revokes one credential it delegated to the member (the slice authority puts it on its list, the
 * nodes then refuse it) and takes its SSH key off the slice unless another live credential of the
 * member there carries it. Again on a revoked one says so (exit 0); an unknown member or jti is
 * refused (NOT_FOUND, exit 1). `fedlab member ls` lists the jtis.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, parseUrn } from '../../../services/core/identity/urn.js';
import { action, printJson } from '../../cli-support.js';
import { printableLine, writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';

/** Registers `fedlab member revoke`. */
export function registerMemberRevoke(member: Command): void {
  withSp(
    member
      .command('revoke <urn> [jti]')
      .description("revoke one credential delegated to a member (the provider's administrators; fedlab member ls lists them)"),
  )
    .option('--jti <id>', "the credential id, as an option: a value beginning with '-' needs no --")
    .option('--json', 'print JSON')
    .action(
      action(async (urn: string, given: string | undefined, flags: SpFlags & { json?: boolean; jti?: string }) => {
        if (!isUrn(urn) || parseUrn(urn).kind !== 'user')
          throw new InvalidArgumentError(`${JSON.stringify(urn)} is not a member URN urn:fedlab:<domain>:user:<name>`);
        if ((given === undefined) === (flags.jti === undefined))
          throw new InvalidArgumentError('give the credential id once: as JTI after the URN or as --jti (fedlab member ls lists them)');
        const jti = given ?? (flags.jti as string);
        // The slice authority hands a key change on to every site: more than the default 30 s may be needed.
        const client = spClient(flags, 120);
        try {
          const res = await client
            .revokeMemberCredential({ memberUrn: urn, jti })
            .catch((err: unknown) => refused(err, `cannot revoke ${jti} of ${urn}`));
          if (flags.json) {
            printJson({ member: urn, jti: res.jti, already_revoked: res.alreadyRevoked, slice_urns: res.sliceUrns });
            return;
          }
          const head = res.alreadyRevoked
            ? `${res.jti} of ${urn} was revoked already`
            : `revoked ${res.jti} of ${urn}${res.sliceUrns.length > 0 ? '; its SSH key taken off the slice' : ''}`;
          writeOut(`${[head, ...res.sliceUrns.map((s) => `  off ${printableLine(s)}`)].join('\n')}\n`);
        } finally {
          client.close();
        }
      }),
    );
}
