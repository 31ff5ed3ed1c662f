/** `fedlab slice ls`: your slices (every slice for administrators). */
import { Option, type Command } from 'commander';
import { Slice, SliceState } from '../../../services/generated/fedlab/v1/slice_authority.js';
import { action, printJson } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { saClient, withConn, type ConnFlags } from './sa-client.js';
import { sliceTable } from './slice-view.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab slice ls`. */
export function registerSliceLs(slice: Command): void {
  withConn(
    slice
      .command('ls')
      .description('list your slices (all slices for administrators)')
      .addOption(
        new Option('--state <state>', 'only slices in this state (default: all but deleted and expired)').choices([
          'pending',
          'ready',
          'partial',
          'failed',
          'deleting',
          'deleted',
          'expired',
        ]),
      ),
  ).action(
    action(async (flags: ConnFlags & { state?: string }) => {
      const client = saClient(flags);
      try {
        const state = flags.state
          ? (SliceState[`SLICE_STATE_${flags.state.toUpperCase()}` as keyof typeof SliceState] as SliceState)
          : SliceState.SLICE_STATE_UNSPECIFIED;
        const all: Slice[] = [];
        let token = '';
        do {
          const page = await client
            .listSlices({ pageSize: 1000, pageToken: token, state })
            .catch((err: unknown) => refused(err, 'cannot list slices'));
          all.push(...page.slices);
          token = page.nextPageToken;
        } while (token);
        if (flags.json) printJson(all.map((s) => Slice.toJSON(s)));
        else writeOut(`${all.length ? sliceTable(all) : 'no slices'}\n`);
      } finally {
        client.close();
      }
    }),
  );
}
