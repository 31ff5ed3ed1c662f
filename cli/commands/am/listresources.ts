/** `fedlab am listresources`: the site's nodes and what they have free (all pages), or the advertisement document. */
import type { Command } from 'commander';
import { AdvertisedNode } from '../../../services/generated/fedlab/v1/aggregate.js';
import { action, printJson } from '../../cli-support.js';
import { writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { withAm, withAmClient, type AmFlags } from './am-client.js';
import { nodeTable } from './am-view.js';

/** Registers `fedlab am listresources`. */
export function registerAmListResources(am: Command): void {
  withAm(
    am
      .command('listresources')
      .description("the site's nodes and what they have free (no chain)")
      .option('--available', 'only nodes that can be allocated now')
      .option('--document <format>', 'print the advertisement document in this format (getversion lists them)'),
    false,
  ).action(
    action(async (flags: AmFlags & { available?: boolean; document?: string }) => {
      const nodes: AdvertisedNode[] = [];
      const documents: string[] = [];
      await withAmClient(flags, async (c) => {
        let token = '';
        do {
          const page = await c
            .listResources({
              pageSize: 100,
              pageToken: token,
              availableOnly: flags.available === true,
              documentFormat: flags.document ?? '',
            })
            .catch((err: unknown) => refused(err, 'listresources failed'));
          nodes.push(...page.nodes);
          if (page.advertisementDocument) documents.push(page.advertisementDocument);
          token = page.nextPageToken;
        } while (token);
      });
      if (flags.document !== undefined) {
        // One document per page; a site of up to 100 nodes has one.
        if (flags.json) printJson({ format: flags.document, documents });
        else process.stdout.write(`${documents.join('\n')}\n`);
        return;
      }
      if (flags.json) printJson({ nodes: nodes.map((n) => AdvertisedNode.toJSON(n)) });
      else writeOut(`${nodeTable(nodes)}\n`);
    }),
  );
}
