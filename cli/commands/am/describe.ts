/** `fedlab am describe`: the manifest of a slice's slivers at this site. */
import type { Command } from 'commander';
import { AggregateDescribeResponse } from '../../../services/generated/fedlab/v1/aggregate.js';
import { action, printJson } from '../../cli-support.js';
import { writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { amChain, checkUrns, withAm, withAmClient, type AmFlags } from './am-client.js';
import { sliverTable } from './am-view.js';

/** Registers `fedlab am describe`. */
export function registerAmDescribe(am: Command): void {
  withAm(
    am
      .command('describe')
      .description("a slice's slivers at this site, and its manifest document")
      .argument('<urns...>', 'a slice URN, or sliver URNs of one slice')
      .option('--document', 'print only the manifest document'),
    true,
  ).action(
    action(async (urns: string[], flags: AmFlags & { document?: boolean }) => {
      const req = { urns: checkUrns(urns) };
      const chain = amChain(flags);
      const res = await withAmClient(flags, (c) => c.describe(req, { chain }).catch((err: unknown) => refused(err, 'describe failed')));
      if (flags.document) process.stdout.write(`${res.manifestDocument}\n`);
      else if (flags.json) printJson(AggregateDescribeResponse.toJSON(res));
      else {
        const notes = [res.swappedOut ? 'swapped out' : '', res.shutDown ? 'shut down' : ''].filter(Boolean);
        writeOut(`slice ${res.sliceUrn}${notes.length ? ` (${notes.join(', ')})` : ''}\n${sliverTable(res.slivers)}\n`);
      }
    }),
  );
}
