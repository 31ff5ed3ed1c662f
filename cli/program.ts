/**
 * The `fedlab` command tree. Each command group lives in
 * `cli/commands/<group>.ts` and is registered here, one line each.
 */
import { Command } from 'commander';
import { registerCertsCommand } from './commands/certs.js';
import { registerCredCommand } from './commands/cred.js';
import { registerFederationCommand } from './commands/federation.js';
import { registerNodeCommand } from './commands/node.js';
import { registerServeCommand } from './commands/serve.js';
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
  registerUpCommand(program);
  return program;
}
