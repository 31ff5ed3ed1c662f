/** `fedlab slice users ls SLICE`: who may log in to a slice's slivers with SSH, and with which keys. */
import type { Command } from 'commander';
import { action, printJson } from '../../cli-support.js';
import { writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { resolveSlice, saClient, withConn, type ConnFlags } from './sa-client.js';
import { usersJson, usersTable } from './users-view.js';

/** Registers `fedlab slice users ls`. */
export function registerSliceUsersLs(users: Command): void {
  withConn(users.command('ls <slice>').description("a slice's users and their SSH keys (one row per key)")).action(
    action(async (ref: string, flags: ConnFlags) => {
      const client = saClient(flags);
      try {
        const urn = await resolveSlice(client, ref);
        const slice = (await client.getSlice({ sliceUrn: urn }).catch((err: unknown) => refused(err, `cannot read slice ${urn}`))).slice;
        const list = slice?.users ?? [];
        if (flags.json) printJson({ slice: urn, users: usersJson(list) });
        else writeOut(`${usersTable(list)}\n`);
      } finally {
        client.close();
      }
    }),
  );
}
