#!/usr/bin/env node
/** Entry point of the `fedlab` command line. */
import 'reflect-metadata';
import { CommanderError } from 'commander';
import { EXIT_USAGE } from './cli-support.js';
import { buildProgram } from './program.js';
import { quietIrrelevantWarnings } from './warnings.js';

quietIrrelevantWarnings();

try {
  await (await buildProgram(process.argv)).parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Help and version are successes; everything else commander rejects is a usage error.
  process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
}
