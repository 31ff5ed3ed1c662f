/** `fedlab am status`: the allocation and operational state of a slice's slivers at this site. */
import type { Command } from 'commander';
import { AggregateStatusResponse } from '../../../services/generated/fedlab/v1/aggregate.js';
import { action, printJson } from '../../cli-support.js';
import { writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { amChain, checkUrns, withAm, withAmClient, type AmFlags } from './am-client.js';
import { sliverTable } from './am-view.js';

/** Registers `fedlab am status`. */
export function registerAmStatus(am: Command): void {
  withAm(
    am
      .command('status')
      .description("the allocation and operational state of a slice's slivers at this site")
      .argument('<urns...>', 'a slice URN, or sliver URNs of one slice'),
    true,
  ).action(
    action(async (urns: string[], flags: AmFlags) => {
      const req = { urns: checkUrns(urns) };
      const chain = amChain(flags);
      const res = await withAmClient(flags, (c) => c.status(req, { chain }).catch((err: unknown) => refused(err, 'status failed')));
      if (flags.json) printJson(AggregateStatusResponse.toJSON(res));
      else {
        const notes = [res.swappedOut ? 'swapped out' : '', res.shutDown ? 'shut down' : ''].filter(Boolean);
        writeOut(`slice ${res.sliceUrn}${notes.length ? ` (${notes.join(', ')})` : ''}\n${sliverTable(res.slivers)}\n`);
      }
    }),
  );
}
