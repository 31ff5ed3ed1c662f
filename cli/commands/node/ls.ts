/** `fedlab node ls`: the site's nodes with their health and what is committed on them. */
import { Option, type Command } from 'commander';
import { NodeHealth, type Node } from '../../../services/generated/fedlab/v1/common.js';
import { action, printJson } from '../../cli-support.js';
import { parseWholeNumber } from '../../flag-values.js';
import { maClient, refused, withMaFlags, type MaFlags } from '../../remote.js';
import { nodeJson, nodeTable } from './node-view.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab node ls`. */
export function registerNodeLs(node: Command): void {
  withMaFlags(node.command('ls').description("list the site's nodes with their health and what is committed on them"))
    .addOption(new Option('--health <state>', 'only nodes in this state').choices(['up', 'down']))
    .option('--min-free-cpu <millis>', 'only nodes with at least this much CPU not committed')
    .option('--min-free-mem <mb>', 'only nodes with at least this much memory not committed')
    .option('--json', 'print JSON')
    .action(
      action(async (flags: MaFlags & { health?: 'up' | 'down'; minFreeCpu?: string; minFreeMem?: string; json?: boolean }) => {
        const minCpu = parseWholeNumber(flags.minFreeCpu, '--min-free-cpu');
        const minMem = parseWholeNumber(flags.minFreeMem, '--min-free-mem');
        const client = maClient(flags);
        const all: Node[] = [];
        try {
          let token = '';
          do {
            const page = await client
              .listNodes({
                pageSize: 1000,
                pageToken: token,
                health:
                  flags.health === 'up'
                    ? NodeHealth.NODE_HEALTH_UP
                    : flags.health === 'down'
                      ? NodeHealth.NODE_HEALTH_DOWN
                      : NodeHealth.NODE_HEALTH_UNSPECIFIED,
              })
              .catch((err: unknown) => refused(err, 'could not list the nodes'));
            all.push(...page.nodes);
            token = page.nextPageToken;
          } while (token);
        } finally {
          client.close();
        }
        const nodes = all.filter(
          (n) =>
            (n.capacity?.cpuMillis ?? 0) - (n.allocated?.cpuMillis ?? 0) >= minCpu &&
            (n.capacity?.memMb ?? 0) - (n.allocated?.memMb ?? 0) >= minMem,
        );
        if (flags.json) printJson({ nodes: nodes.map(nodeJson) });
        else writeOut(`${nodes.length ? nodeTable(nodes) : 'no nodes'}\n`);
      }),
    );
}
