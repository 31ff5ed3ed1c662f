/** `fedlab deployment delete`: a deployment stopped and its slice deleted (idempotent). */
import type { Command } from 'commander';
import type { Deployment } from '../../../services/generated/fedlab/v1/service_provider.js';
import { action, printJson } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { deploymentJson, stateName } from './deployment-view.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab deployment delete`. */
export function registerDeploymentDelete(deployment: Command): void {
  withSp(deployment.command('delete').description('stop a deployment and delete its slice (idempotent)').argument('<name>'))
    .option('--keep-slice', 'keep the slice (only stop the service and forget the deployment)')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, flags: SpFlags & { keepSlice?: boolean; json?: boolean }) => {
        const client = spClient(flags, 120);
        try {
          const deleted = (
            await client
              .deleteDeployment({ name, keepSlice: flags.keepSlice === true })
              .catch((err: unknown) => refused(err, `could not delete deployment ${name}`))
          ).deployment as Deployment;
          if (flags.json) printJson(deploymentJson(deleted));
          else writeOut(`${deleted.name}: ${stateName(deleted.state)}${deleted.error ? ` (${deleted.error})` : ''}\n`);
        } finally {
          client.close();
        }
      }),
    );
}
