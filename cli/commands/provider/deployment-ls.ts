/** `fedlab deployment ls`: the provider's deployments. */
import type { Command } from 'commander';
import { DeploymentState, type Deployment } from '../../../services/generated/fedlab/v1/service_provider.js';
import { action, printJson } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { deploymentJson, stateName } from './deployment-view.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab deployment ls`. */
export function registerDeploymentLs(deployment: Command): void {
  withSp(deployment.command('ls').description('list the deployments'))
    .option('--json', 'print JSON')
    .action(
      action(async (flags: SpFlags & { json?: boolean }) => {
        const client = spClient(flags);
        const all: Deployment[] = [];
        try {
          let token = '';
          do {
            const page = await client
              .listDeployments({ pageSize: 1000, pageToken: token, state: DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED })
              .catch((err: unknown) => refused(err, 'could not list deployments'));
            all.push(...page.deployments);
            token = page.nextPageToken;
          } while (token);
        } finally {
          client.close();
        }
        if (flags.json) return printJson(all.map(deploymentJson));
        const rows = all.map((shown) => [
          shown.name,
          stateName(shown.state),
          shown.sliceUrn,
          String(shown.targets.length),
          String(shown.targets.reduce((n, t) => n + t.restarts, 0)),
        ]);
        const head = ['NAME', 'STATE', 'SLICE', 'SLIVERS', 'RESTARTS'];
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
        const line = (cells: readonly string[]) =>
          cells
            .map((x, i) => x.padEnd(widths[i] as number))
            .join('  ')
            .trimEnd();
        writeOut(`${[line(head), ...rows.map(line)].join('\n')}\n`);
      }),
    );
}
