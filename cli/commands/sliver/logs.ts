/** `fedlab sliver logs`: the last output lines of a sliver's commands, as its node manager kept them. */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { action, printJson } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { nodeClient, withSliver, type SliverFlags } from './node-client.js';
import { printableLine, writeOut } from '../../printable.js';

/** Registers `fedlab sliver logs`. */
export function registerSliverLogs(sliver: Command): void {
  withSliver(
    sliver
      .command('logs')
      .description("the last output lines of the sliver's commands (its service's included), as its node manager kept them"),
  )
    .option('--lines <n>', 'how many lines (1 to 200)', '50')
    .option('--json', 'print JSON')
    .action(
      action(async (flags: SliverFlags & { lines: string; json?: boolean }) => {
        const n = Number(flags.lines);
        if (!/^[0-9]+$/.test(flags.lines) || n < 1 || n > 200)
          throw new InvalidArgumentError(`--lines must be between 1 and 200, got ${JSON.stringify(flags.lines)}`);
        const { client, chain } = await nodeClient(flags, 10);
        try {
          const res = await client
            .getSliverOutput({ sliverUrn: flags.sliver, lines: n }, { chain })
            .catch((err: unknown) => refused(err, 'could not read the output'));
          if (flags.json) printJson({ sliver_urn: flags.sliver, lines: res.lines });
          else if (res.lines.length > 0) writeOut(`${res.lines.map(printableLine).join('\n')}\n`);
        } finally {
          client.close();
        }
      }),
    );
}
