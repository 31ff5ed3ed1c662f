/** `fedlab am provision`: instantiates allocated slivers (optionally starting them). */
import type { Command } from 'commander';
import { action } from '../../cli-support.js';
import { parseTime } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { amChain, checkUrns, withAm, withAmClient, type AmFlags } from './am-client.js';
import { printResults } from './am-view.js';

/** Registers `fedlab am provision`. */
export function registerAmProvision(am: Command): void {
  withAm(
    am
      .command('provision')
      .description('instantiate allocated slivers (PROVISIONED, NOTREADY until started)')
      .argument('<urns...>', 'a slice URN, or sliver URNs of one slice')
      .option('--best-effort', 'provision what can be and report the rest (default: all or nothing)')
      .option('--start', 'start each sliver once provisioned')
      .option('--expires <time>', 'expiry of the provisioned slivers (RFC 3339 or epoch seconds; default the one asked at allocate)'),
    true,
  ).action(
    action(async (urns: string[], flags: AmFlags & { bestEffort?: boolean; start?: boolean; expires?: string }) => {
      const req = {
        urns: checkUrns(urns),
        bestEffort: flags.bestEffort === true,
        start: flags.start === true,
        ...(flags.expires ? { expiresAt: parseTime(flags.expires, '--expires') } : {}),
      };
      const chain = amChain(flags);
      const res = await withAmClient(flags, (c) => c.provision(req, { chain }).catch((err: unknown) => refused(err, 'provision failed')));
      printResults(flags.json, res.results, res.manifestDocument ? { manifest_document: res.manifestDocument } : {});
    }),
  );
}
