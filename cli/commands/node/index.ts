/**
 * `fedlab node token|enroll|ls`: a site's nodes, against its management
 * authority. `token` (site administrators, or owners for their own nodes)
 * makes a one-time enrolment token; `enroll` (on the node) redeems it for the
 * node's certificate; `ls` shows the nodes as a table (`--json` for scripts).
 * Exit codes: 0 done; 1 the MA refused or could not be reached; 2 bad input.
 */
import type { Command } from 'commander';
import { registerNodeEnroll } from './enroll.js';
import { registerNodeLs } from './ls.js';
import { registerNodeToken } from './token.js';

/** Registers `fedlab node`. */
export function registerNodeCommand(program: Command): void {
  const node = program.command('node').description("a site's nodes: enrolment tokens, enrolment, listing");
  registerNodeToken(node);
  registerNodeLs(node);
  registerNodeEnroll(node);
}
