/** `fedlab sliver show`: one sliver as its node manager holds it (GetSliver). */
import type { Command } from 'commander';
import { action } from '../../cli-support.js';
import { writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { nodeClient, withSliver, type SliverFlags } from './node-client.js';
import { sliverDetail, sliverJson } from './sliver-view.js';

/** Registers `fedlab sliver show`. */
export function registerSliverShow(sliver: Command): void {
  withSliver(sliver.command('show').description('one sliver as its node manager holds it: state, expiry, resources, SSH login'))
    .option('--json', 'print JSON')
    .action(
      action(async (flags: SliverFlags & { json?: boolean }) => {
        const { client, chain } = await nodeClient(flags, 10);
        try {
          const res = await client
            .getSliver({ sliverUrn: flags.sliver }, { chain })
            .catch((err: unknown) => refused(err, `could not read ${flags.sliver}`));
          if (!res.sliver) throw new Error('the node manager answered without the sliver');
          writeOut(`${flags.json ? sliverJson(res.sliver) : sliverDetail(res.sliver)}\n`);
        } finally {
          client.close();
        }
      }),
    );
}
