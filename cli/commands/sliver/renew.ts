/**
 * `fedlab sliver renew`: moves a sliver's expiry on its node manager (RenewSliver), never past what the
 * node's owner allows or the chain's own expiry (the node manager refuses, naming its rule).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { action } from '../../cli-support.js';
import { parseDuration, parseTime } from '../../flag-values.js';
import { writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { nodeClient, withSliver, type SliverFlags } from './node-client.js';
import { sliverJson } from './sliver-view.js';

/** The new expiry from `--expires` or `--ttl` (exactly one), in the future; bad input otherwise. */
export function renewalTime(flags: { expires?: string; ttl?: string }, now = Date.now()): Date {
  if ((flags.expires === undefined) === (flags.ttl === undefined)) throw new InvalidArgumentError('give --expires TIME or --ttl DURATION');
  const at =
    flags.expires !== undefined ? parseTime(flags.expires, '--expires') : new Date(now + parseDuration(flags.ttl as string) * 1000);
  if (at.getTime() <= now) throw new InvalidArgumentError(`--expires must be in the future, got ${at.toISOString()}`);
  return at;
}

/** Registers `fedlab sliver renew`. */
export function registerSliverRenew(sliver: Command): void {
  withSliver(sliver.command('renew').description("move a sliver's expiry on its node manager (needs sliver.renew)"))
    .option('--expires <time>', 'the new expiry (RFC 3339 or epoch seconds)')
    .option('--ttl <duration>', 'the new expiry as a time from now, e.g. 2d')
    .option('--json', 'print JSON')
    .action(
      action(async (flags: SliverFlags & { expires?: string; ttl?: string; json?: boolean }) => {
        const expiresAt = renewalTime(flags);
        const { client, chain } = await nodeClient(flags, 30);
        try {
          const res = await client
            .renewSliver({ sliverUrn: flags.sliver, expiresAt }, { chain })
            .catch((err: unknown) => refused(err, `could not renew ${flags.sliver}`));
          if (!res.sliver) throw new Error('the node manager answered without the sliver');
          const s = res.sliver;
          writeOut(
            `${flags.json ? sliverJson(s) : `renewed ${s.urn}: expires ${s.expiresAt?.toISOString().replace(/\.\d{3}Z$/, 'Z') ?? '-'}`}\n`,
          );
        } finally {
          client.close();
        }
      }),
    );
}
