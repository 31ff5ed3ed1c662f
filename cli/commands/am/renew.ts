/** `fedlab am renew`: moves slivers' expiry (within the site's maximum and the chain's ttl). */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { action } from '../../cli-support.js';
import { parseDuration, parseTime } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { amChain, checkUrns, withAm, withAmClient, type AmFlags } from './am-client.js';
import { printResults } from './am-view.js';

/** Registers `fedlab am renew`. */
export function registerAmRenew(am: Command): void {
  withAm(
    am
      .command('renew')
      .description("move slivers' expiry")
      .argument('<urns...>', 'a slice URN, or sliver URNs of one slice')
      .option('--expires <time>', 'the new expiry (RFC 3339 or epoch seconds)')
      .option('--ttl <duration>', 'the new expiry as a time from now, e.g. 2d')
      .option('--best-effort', 'renew what can be and report the rest (default: all or nothing)'),
    true,
  ).action(
    action(async (urns: string[], flags: AmFlags & { expires?: string; ttl?: string; bestEffort?: boolean }) => {
      if ((flags.expires === undefined) === (flags.ttl === undefined))
        throw new InvalidArgumentError('give --expires TIME or --ttl DURATION');
      const expiresAt = flags.expires
        ? parseTime(flags.expires, '--expires')
        : new Date(Date.now() + parseDuration(flags.ttl as string) * 1000);
      const req = { urns: checkUrns(urns), expiresAt, bestEffort: flags.bestEffort === true };
      const chain = amChain(flags);
      const res = await withAmClient(flags, (c) => c.renew(req, { chain }).catch((err: unknown) => refused(err, 'renew failed')));
      printResults(flags.json, res.results);
    }),
  );
}
