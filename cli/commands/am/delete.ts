/** `fedlab am delete`: releases slivers (allocated or provisioned); what is already gone is OK. */
import type { Command } from 'commander';
import { action } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { amChain, checkUrns, withAm, withAmClient, type AmFlags } from './am-client.js';
import { printResults } from './am-view.js';

/** Registers `fedlab am delete`. */
export function registerAmDelete(am: Command): void {
  withAm(
    am
      .command('delete')
      .description('release slivers (allocated or provisioned)')
      .argument('<urns...>', 'a slice URN, or sliver URNs of one slice')
      .option('--best-effort', 'delete what can be and report the rest (default: all or nothing)'),
    true,
  ).action(
    action(async (urns: string[], flags: AmFlags & { bestEffort?: boolean }) => {
      const req = { urns: checkUrns(urns), bestEffort: flags.bestEffort === true };
      const chain = amChain(flags);
      const res = await withAmClient(flags, (c) => c.delete(req, { chain }).catch((err: unknown) => refused(err, 'delete failed')));
      printResults(flags.json, res.results);
    }),
  );
}
