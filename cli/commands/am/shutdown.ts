/** `fedlab am shutdown`: the emergency stop of a slice at this site (frozen until an administrator lifts it). */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, parseUrn } from '../../../services/core/identity/urn.js';
import { action } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { amChain, withAm, withAmClient, type AmFlags } from './am-client.js';
import { printResults } from './am-view.js';

/** Registers `fedlab am shutdown`. */
export function registerAmShutdown(am: Command): void {
  withAm(
    am
      .command('shutdown')
      .description('stop every sliver of a slice at this site and freeze it there (site administrators and the slice authority)')
      .argument('<slice>', 'the slice URN')
      .requiredOption('--reason <text>', "why (recorded and shown to the slice's owner)"),
    true,
  ).action(
    action(async (slice: string, flags: AmFlags & { reason: string }) => {
      if (!isUrn(slice) || parseUrn(slice).kind !== 'slice') throw new InvalidArgumentError(`${JSON.stringify(slice)} is not a slice URN`);
      const chain = amChain(flags);
      const res = await withAmClient(flags, (c) =>
        c.shutdown({ sliceUrn: slice, reason: flags.reason }, { chain }).catch((err: unknown) => refused(err, 'shutdown failed')),
      );
      printResults(flags.json, res.results, { slice_urn: slice });
    }),
  );
}
