/**
 * `fedlab sliver delete`: deletes a sliver directly on its node manager, with a chain rooted at the
 * node's owner (`owner → MA`, or one the owner or MA delegated further) granting `sliver.delete`.
 * This is how an operator removes a sliver that no record explains (an orphan `fedlab federation
 * check` found); a slice's own slivers are deleted through its slice authority (`fedlab slice delete`).
 */
import type { Command } from 'commander';
import { action, printJson } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { nodeClient, withSliver, type SliverFlags } from './node-client.js';

/** Registers `fedlab sliver delete`. */
export function registerSliverDelete(sliver: Command): void {
  withSliver(
    sliver
      .command('delete')
      .description("delete a sliver on its node manager (a chain rooted at the node's owner, with sliver.delete; e.g. an orphan)"),
  )
    .option('--json', 'print JSON')
    .action(
      action(async (flags: SliverFlags & { json?: boolean }) => {
        const { client, chain } = await nodeClient(flags, 30);
        try {
          const res = await client
            .deleteSliver({ sliverUrn: flags.sliver }, { chain })
            .catch((err: unknown) => refused(err, `could not delete ${flags.sliver}`));
          if (flags.json) printJson({ sliver_urn: flags.sliver, existed: res.existed });
          else process.stdout.write(`${res.existed ? 'deleted' : 'already gone:'} ${flags.sliver}\n`);
        } finally {
          client.close();
        }
      }),
    );
}
