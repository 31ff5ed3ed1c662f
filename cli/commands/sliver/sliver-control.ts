/** What `fedlab sliver start` and `stop` share: one ControlSliver call, the sliver after it printed. */
import type { Command } from 'commander';
import { SliverAction } from '../../../services/generated/fedlab/v1/node_manager.js';
import { action } from '../../cli-support.js';
import { writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { nodeClient, withSliver, type SliverFlags } from './node-client.js';
import { allocation, operational, sliverJson } from './sliver-view.js';

const ACTIONS = {
  start: { action: SliverAction.SLIVER_ACTION_START, done: 'started' },
  stop: { action: SliverAction.SLIVER_ACTION_STOP, done: 'stopped' },
} as const;

/** Registers `fedlab sliver start` or `stop`. */
export function registerSliverControl(sliver: Command, verb: keyof typeof ACTIONS, description: string): void {
  const { action: what, done } = ACTIONS[verb];
  withSliver(sliver.command(verb).description(description))
    .option('--json', 'print JSON')
    .action(
      action(async (flags: SliverFlags & { json?: boolean }) => {
        const { client, chain } = await nodeClient(flags, 60);
        try {
          const res = await client
            .controlSliver({ sliverUrn: flags.sliver, action: what }, { chain })
            .catch((err: unknown) => refused(err, `could not ${verb} ${flags.sliver}`));
          if (!res.sliver) throw new Error('the node manager answered without the sliver');
          const s = res.sliver;
          writeOut(`${flags.json ? sliverJson(s, { action: verb }) : `${done} ${s.urn}: ${allocation(s)}/${operational(s)}`}\n`);
        } finally {
          client.close();
        }
      }),
    );
}
