#!/usr/bin/env node
/** Entry point of the `fedlab` command line. */
import 'reflect-metadata';
import { CommanderError } from 'commander';
import { EXIT_USAGE } from './cli-support.js';
import { buildProgram } from './program.js';

// grpc-js sends the dialled host as TLS SNI even when it is an IP address, which Node flags as
// deprecated (DEP0123, RFC 6066). Fedlab checks servers by the URN in their certificate, not by
// name, so the warning says nothing useful to a user; every other warning is kept.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
  if (code === 'DEP0123') return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

try {
  await (await buildProgram(process.argv)).parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Help and version are successes; everything else commander rejects is a usage error.
  process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
}
