/**
 * `fedlab deployment show`: one deployment with every sliver's service state, restarts and the last
 * lines of its output (`--lines N`, 5 by default; 0 for none; `--json` always has all the provider
 * keeps). `--follow` then prints what changes until the deployment ends or Ctrl-C (see
 * deployment-follow.ts); it exits 1 when the deployment ended FAILED or PARTIAL.
 */
import type { Command } from 'commander';
import type { Deployment } from '../../../services/generated/fedlab/v1/service_provider.js';
import { action, printJson } from '../../cli-support.js';
import { parseWholeNumber } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { followDeployment, hasEnded } from './deployment-follow.js';
import { deploymentJson, sliceExpiryLines, stateName, targetTable } from './deployment-view.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';
import { printable, printableJson, printableLine, writeOut } from '../../printable.js';

/** Output lines per sliver that `show` prints unless told. */
export const DEFAULT_LINES = 5;

interface ShowFlags extends SpFlags {
  json?: boolean;
  lines?: string;
  follow?: boolean;
}

/** The text of `show`: the head, the per-sliver table, and the last `lines` output lines of each sliver. */
export function showText(shown: Deployment, lines: number): string {
  let text = `${printable(shown.name)}: ${stateName(shown.state)}  slice ${printable(shown.sliceUrn) || '-'}${shown.error ? `\nerror: ${printable(shown.error)}` : ''}\n${sliceExpiryLines(shown)}${targetTable(shown.targets)}\n`;
  if (lines === 0) return text;
  for (const t of shown.targets) {
    if (t.lastOutput.length === 0) continue;
    const tail = t.lastOutput.slice(-lines);
    const more = t.lastOutput.length - tail.length;
    // Each line of a sliver's output printable on its own: a line cannot fake another.
    text += `\n--- ${printable(t.sliverUrn)} (${printable(t.nodeEndpoint) || 'endpoint unknown'})${more > 0 ? ` last ${tail.length} of ${t.lastOutput.length} lines (--lines)` : ''}\n${tail.map(printableLine).join('\n')}\n`;
  }
  return text;
}

/** Registers `fedlab deployment show`. */
export function registerDeploymentShow(deployment: Command): void {
  withSp(
    deployment.command('show').description("one deployment with every sliver's service state, restarts and last output").argument('<name>'),
  )
    .option('--lines <n>', `output lines per sliver (0: none; default ${DEFAULT_LINES})`)
    .option('--follow', 'then print what changes (state, services, new output) until the deployment ends or Ctrl-C')
    .option('--json', 'print JSON (with --follow: one line each time the deployment changes)')
    .action(
      action(async (name: string, flags: ShowFlags) => {
        const lines = flags.lines === undefined ? DEFAULT_LINES : parseWholeNumber(flags.lines, '--lines');
        // A follow reads again and again: each read has the deadline, not the whole.
        const client = spClient(flags);
        try {
          const shown = (await client.getDeployment({ name }).catch((err: unknown) => refused(err, `could not read deployment ${name}`)))
            .deployment as Deployment;
          if (flags.json && flags.follow) writeOut(`${printableJson(deploymentJson(shown))}\n`);
          else if (flags.json) printJson(deploymentJson(shown));
          else writeOut(showText(shown, lines));
          if (!flags.follow) return;
          if (!flags.json && !hasEnded(shown)) writeOut(`following ${printable(shown.name)} (Ctrl-C to stop)\n`);
          const code = await followDeployment(client, shown, { json: flags.json === true, intervalMs: 1000 });
          if (code !== 0) process.exitCode = code;
        } finally {
          client.close();
        }
      }),
    );
}
