/**
 * `fedlab cred issue|delegate|inspect|verify|revoke`: delegation credentials
 * offline. A chain file holds one compact JWS per line, root first. Exit
 * codes: 0 done (or the chain is valid); 1 refused (an invalid chain, a
 * delegation wider than its parent); 2 bad input (a missing file, a malformed
 * flag).
 */
import type { Command } from 'commander';
import { registerCredDelegate } from './delegate.js';
import { registerCredInspect } from './inspect.js';
import { registerCredIssue } from './issue.js';
import { registerCredRevoke } from './revoke.js';
import { registerCredVerify } from './verify.js';

/** Registers `fedlab cred`. */
export function registerCredCommand(program: Command): void {
  const cred = program
    .command('cred')
    .description('issue, delegate, inspect, verify and revoke delegation credentials (chain files: one compact JWS per line, root first)');
  registerCredIssue(cred);
  registerCredDelegate(cred);
  registerCredInspect(cred);
  registerCredVerify(cred);
  registerCredRevoke(cred);
}
