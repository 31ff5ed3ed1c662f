#!/usr/bin/env node
/** Entry point of the `fedlab` command line: the only place that reads the environment for the CLI's own settings. */
import 'reflect-metadata';
import { CommanderError } from 'commander';
import { closedOutputs } from './closed-output.js';
import { EXIT_USAGE, reportError } from './cli-support.js';
import { profileLocation } from './profiles.js';
import { buildProgram } from './program.js';
import { quietIrrelevantWarnings } from './warnings.js';

quietIrrelevantWarnings();
closedOutputs();

const json = process.argv.includes('--json');
try {
  const program = await buildProgram(process.argv, {
    json,
    profiles: { ...(process.env.FEDLAB_PROFILE ? { envName: process.env.FEDLAB_PROFILE } : {}), location: profileLocation(process.env) },
  });
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version are successes; everything else commander rejects is a usage error.
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    // A profile that cannot be read, a required flag still missing once it was applied.
    process.exitCode = reportError(err, json);
  }
}
