/**
 * `fedlab slice users add SLICE --ssh-key FILE [--user URN]`: a user's keys added to a live slice
 * (to the keys it has there already; `--replace` replaces them), handed on to every site.
 */
import type { Command } from 'commander';
import { action } from '../../cli-support.js';
import { repeatable } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { resolveSlice, saClient, withConn, type ConnFlags } from './sa-client.js';
import { sliceUserFromFlags, type SliceUserFlags } from './slice-user-flags.js';
import { changeUsers } from './users-change.js';
import { InvalidArgumentError } from '../../../services/core/errors.js';

interface AddFlags extends ConnFlags, SliceUserFlags {
  replace?: boolean;
  requestId?: string;
}

/** Registers `fedlab slice users add`. */
export function registerSliceUsersAdd(users: Command): void {
  withConn(
    users
      .command('add <slice>')
      .description("add a user's SSH public keys to a slice: they may log in to its slivers")
      .option('--ssh-key <file>', 'an SSH public key (.pub file); repeatable', repeatable, [] as string[])
      .option('--user <urn>', 'whose keys they are (default: you, as your certificate names you)')
      .option('--replace', "replace the user's keys on the slice instead of adding to them")
      .option('--request-id <id>', 'idempotency key'),
  ).action(
    action(async (ref: string, flags: AddFlags) => {
      const user = sliceUserFromFlags(flags);
      if (!user) throw new InvalidArgumentError('give at least one --ssh-key FILE');
      const client = saClient(flags);
      try {
        const urn = await resolveSlice(client, ref);
        let keys = user.sshKeys;
        if (!flags.replace) {
          // UpdateSliceUsers replaces a listed user's keys: keep the ones it has.
          const slice = (await client.getSlice({ sliceUrn: urn }).catch((err: unknown) => refused(err, `cannot read slice ${urn}`))).slice;
          const had = slice?.users.find((u) => u.urn === user.urn)?.sshKeys ?? [];
          keys = [...new Set([...had, ...keys])];
        }
        await changeUsers(
          client,
          urn,
          { add: [{ urn: user.urn, sshKeys: keys }], remove: [], ...(flags.requestId ? { requestId: flags.requestId } : {}) },
          flags.json === true,
        );
      } finally {
        client.close();
      }
    }),
  );
}
