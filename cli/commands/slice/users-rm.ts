/** `fedlab slice users rm SLICE --user URN`: a user taken off a live slice (its keys may no longer log in), at every site. */
import type { Command } from 'commander';
import { checkSliceUserUrn } from '../../../services/core/identity/ssh-keys.js';
import { action } from '../../cli-support.js';
import { repeatable } from '../../flag-values.js';
import { resolveSlice, saClient, withConn, type ConnFlags } from './sa-client.js';
import { changeUsers } from './users-change.js';
import { InvalidArgumentError } from '../../../services/core/errors.js';

/** Registers `fedlab slice users rm`. */
export function registerSliceUsersRm(users: Command): void {
  withConn(
    users
      .command('rm <slice>')
      .description('take users off a slice: their SSH keys may no longer log in to its slivers')
      .option('--user <urn>', 'the user to remove; repeatable', repeatable, [] as string[])
      .option('--request-id <id>', 'idempotency key'),
  ).action(
    action(async (ref: string, flags: ConnFlags & { user: string[]; requestId?: string }) => {
      if (flags.user.length === 0) throw new InvalidArgumentError('give --user URN (the user to take off the slice)');
      const remove = flags.user.map((u) => checkSliceUserUrn(u, '--user'));
      const client = saClient(flags);
      try {
        const urn = await resolveSlice(client, ref);
        await changeUsers(
          client,
          urn,
          { add: [], remove, ...(flags.requestId ? { requestId: flags.requestId } : {}) },
          flags.json === true,
        );
      } finally {
        client.close();
      }
    }),
  );
}
