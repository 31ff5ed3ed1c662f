/**
 * `fedlab certs`: the admin certificate tooling (docs/design.md §4). A thin layer over
 * certs/: parse flags, call the library, print a summary (or `--json`).
 * Bad input exits 2 and writes nothing; no command ever prints key material.
 */
import type { Command } from 'commander';
import { registerCertsBundle } from './bundle.js';
import { registerCertsInitCa } from './init-ca.js';
import { registerCertsInspect } from './inspect.js';
import { registerCertsIssue } from './issue.js';

/** Registers `fedlab certs` and its subcommands. */
export function registerCertsCommand(program: Command): void {
  const certs = program.command('certs').description("domain CAs, principals' certificates and trust bundles");
  registerCertsInitCa(certs);
  registerCertsIssue(certs);
  registerCertsBundle(certs);
  registerCertsInspect(certs);
}
