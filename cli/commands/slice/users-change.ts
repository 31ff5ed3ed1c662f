/** What `fedlab slice users add|rm` share: the UpdateSliceUsers call and how its answer is shown. */
import { randomBytes } from 'node:crypto';
import type { SliceUser } from '../../../services/generated/fedlab/v1/common.js';
import { CliExit, EXIT_FAILURE, printJson } from '../../cli-support.js';
import { writeErr, writeOut } from '../../printable.js';
import { codeName, refused } from '../../remote.js';
import type { SaClient } from './sa-client.js';
import { usersJson, usersTable } from './users-view.js';

/** The change asked for. */
export interface UsersChange {
  readonly add: readonly SliceUser[];
  readonly remove: readonly string[];
  readonly requestId?: string;
}

/**
 * Sends the change, prints the slice's users after it (and each site's part), and exits 1 when the
 * slice authority refused. A site that has not taken the list yet is retried by the slice authority:
 * it is reported on stderr, not as a failure.
 */
export async function changeUsers(client: SaClient, sliceUrn: string, change: UsersChange, json: boolean): Promise<void> {
  const res = await client
    .updateSliceUsers({
      requestId: change.requestId ?? `cli-users-${randomBytes(8).toString('hex')}`,
      sliceUrn,
      add: [...change.add],
      remove: [...change.remove],
    })
    .catch((err: unknown) => refused(err, `cannot change the users of ${sliceUrn}`));
  const users = res.slice?.users ?? [];
  const behind = res.sites.filter((s) => s.status?.code);
  if (json) {
    printJson({
      slice: sliceUrn,
      users: usersJson(users),
      sites: res.sites.map((s) => ({ site: s.site, code: codeName(s.status?.code ?? 0), reason: s.status?.reason ?? '' })),
    });
  } else {
    writeOut(`${usersTable(users)}\n`);
  }
  if (!res.slice) throw new CliExit(EXIT_FAILURE, 'the slice authority answered without the slice');
  for (const s of behind)
    writeErr(
      `fedlab: ${s.site} does not have the new users yet (${codeName(s.status?.code ?? 0)}: ${s.status?.reason ?? ''}); the slice authority keeps trying\n`,
    );
}
