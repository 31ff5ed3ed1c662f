/**
 * The `fedlab` command tree. Each command group lives in
 * `cli/commands/<group>.ts` and is registered here, one line each.
 */
import { Command } from 'commander';
import { registerCertsCommand } from './commands/certs.js';
import { registerCredCommand } from './commands/cred.js';
import { registerDeployCommands } from './commands/deploy.js';
import { registerFederationCommand } from './commands/federation.js';
import { registerNodeCommand } from './commands/node.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSiteCommand } from './commands/site.js';
import { registerSliceCommand } from './commands/slice.js';
import { registerSliverCommand } from './commands/sliver.js';
import { registerUpCommand } from './commands/up.js';

/** Builds the whole command tree. */
export function buildProgram(): Command {
  const program = new Command('fedlab')
    .description('Fedlab: control framework for federated network testbeds')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  // Command groups register below (one line each).
  registerServeCommand(program);
  registerCertsCommand(program);
  registerCredCommand(program);
  registerNodeCommand(program);
  registerFederationCommand(program);
  registerSiteCommand(program);
  registerUpCommand(program);
  registerDeployCommands(program);
  registerSliverCommand(program);
  registerSliceCommand(program);
  return program;
}
