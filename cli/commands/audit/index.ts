/**
 * `fedlab audit ls|verify --config FILE`: a service's tamper-evident audit
 * log, read from its store; `fedlab audit ls --remote` (or `--address`) asks
 * the running service instead. Exit codes: 0 done (and verified); 1 the chain
 * does not verify, or the service refused; 2 bad input (or the store is in
 * use: stop the service, or ask it with --remote).
 */
import type { Command } from 'commander';
import { registerAuditLs } from './ls.js';
import { registerAuditVerify } from './verify.js';

/** Registers `fedlab audit`. */
export function registerAuditCommand(program: Command): void {
  const audit = program.command('audit').description("a service's audit log: every call that changed state or was refused");
  registerAuditLs(audit);
  registerAuditVerify(audit);
}
