/**
 * `fedlab sliver ls`: the slivers on one node manager (ListSlivers) — every sliver with a chain rooted
 * at the node's owner, or one slice's (`--slice`) with that slice's credential.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, parseUrn } from '../../../services/core/identity/urn.js';
import { Sliver } from '../../../services/generated/fedlab/v1/common.js';
import { action } from '../../cli-support.js';
import { printableJson, writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { nodeConnection, withNode, type NodeFlags } from './node-client.js';
import { sliverLsTable } from './sliver-view.js';

/** Registers `fedlab sliver ls`. */
export function registerSliverLs(sliver: Command): void {
  withNode(sliver.command('ls').description("list a node manager's slivers (one slice's with --slice)"))
    .option('--slice <urn>', "only this slice's slivers (needed with a slice credential)")
    .option('--json', 'print JSON')
    .action(
      action(async (flags: NodeFlags & { slice?: string; json?: boolean }) => {
        if (flags.slice !== undefined && (!isUrn(flags.slice) || parseUrn(flags.slice).kind !== 'slice'))
          throw new InvalidArgumentError(`--slice must be a slice URN, got ${JSON.stringify(flags.slice)}`);
        const { client, chain } = await nodeConnection(flags, undefined, 30);
        const slivers: Sliver[] = [];
        try {
          let pageToken = '';
          do {
            const res = await client
              .listSlivers({ pageSize: 1000, pageToken, sliceUrn: flags.slice ?? '' }, { chain })
              .catch((err: unknown) => refused(err, 'could not list the slivers'));
            slivers.push(...res.slivers);
            pageToken = res.nextPageToken;
          } while (pageToken);
        } finally {
          client.close();
        }
        if (flags.json) process.stdout.write(`${printableJson({ slivers: slivers.map((s) => Sliver.toJSON(s)) }, 2)}\n`);
        else writeOut(`${sliverLsTable(slivers)}\n`);
      }),
    );
}
