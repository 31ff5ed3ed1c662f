/** `fedlab deployment show`: one deployment with every sliver's service state, restarts and last output. */
import type { Command } from 'commander';
import type { Deployment } from '../../../services/generated/fedlab/v1/service_provider.js';
import { action, printJson } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { deploymentJson, sliceExpiryLines, stateName, targetTable } from './deployment-view.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';
import { printable, printableLine, writeOut } from '../../printable.js';

/** Registers `fedlab deployment show`. */
export function registerDeploymentShow(deployment: Command): void {
  withSp(
    deployment.command('show').description("one deployment with every sliver's service state, restarts and last output").argument('<name>'),
  )
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, flags: SpFlags & { json?: boolean }) => {
        const client = spClient(flags);
        try {
          const shown = (await client.getDeployment({ name }).catch((err: unknown) => refused(err, `could not read deployment ${name}`)))
            .deployment as Deployment;
          if (flags.json) return printJson(deploymentJson(shown));
          writeOut(
            `${printable(shown.name)}: ${stateName(shown.state)}  slice ${printable(shown.sliceUrn) || '-'}${shown.error ? `\nerror: ${printable(shown.error)}` : ''}\n${sliceExpiryLines(shown)}${targetTable(shown.targets)}\n`,
          );
          for (const t of shown.targets) {
            if (t.lastOutput.length === 0) continue;
            // Each line of a sliver's output printable on its own: a line cannot fake another.
            writeOut(
              `\n--- ${printable(t.sliverUrn)} (${printable(t.nodeEndpoint) || 'endpoint unknown'})\n${t.lastOutput.map(printableLine).join('\n')}\n`,
            );
          }
        } finally {
          client.close();
        }
      }),
    );
}
