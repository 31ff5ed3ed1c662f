/**
 * The `fedlab` command tree. Each command group lives in its folder
 * `cli/commands/<group>/` (index.ts registers the group, one file per
 * subcommand); a single command is one file (`serve.ts`, `up.ts`). Each
 * group is listed here, one line each.
 *
 * Groups are loaded on demand: a run of `fedlab cred verify` should not pay
 * for loading the gRPC stack, the node manager and the management authority
 * (over a second of CPU on a small machine, per command). Only when the group
 * is not known from the arguments (help, a typo) is every group loaded.
 */
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { errorObject } from './error-report.js';
import { printableJson } from './printable.js';
import { applyProfiles } from './profile-flags.js';
import type { ProgramContext } from './program-context.js';

export type { ProgramContext };

/** A group's registration; groups that need what the entry read from the environment take the context. */
type Register = (program: Command, context: ProgramContext) => void;

/** Command group names → the module that registers them (a module may register several groups). */
const GROUPS: ReadonlyArray<readonly [readonly string[], () => Promise<Register>]> = [
  [['serve'], async () => (await import('./commands/serve.js')).registerServeCommand],
  [['certs'], async () => (await import('./commands/certs/index.js')).registerCertsCommand],
  [['cred'], async () => (await import('./commands/cred/index.js')).registerCredCommand],
  [['node'], async () => (await import('./commands/node/index.js')).registerNodeCommand],
  [['federation'], async () => (await import('./commands/federation/index.js')).registerFederationCommand],
  [['site'], async () => (await import('./commands/site/index.js')).registerSiteCommand],
  [['up'], async () => (await import('./commands/up.js')).registerUpCommand],
  [['deploy', 'deployment', 'member'], async () => (await import('./commands/provider/index.js')).registerDeployCommands],
  [['sliver'], async () => (await import('./commands/sliver/index.js')).registerSliverCommand],
  [['slice'], async () => (await import('./commands/slice/index.js')).registerSliceCommand],
  [['backup', 'restore'], async () => (await import('./commands/backup/index.js')).registerBackupCommands],
  [['audit'], async () => (await import('./commands/audit/index.js')).registerAuditCommand],
  [['profile'], async () => (await import('./commands/profile/index.js')).registerProfileCommand],
  [['am'], async () => (await import('./commands/am/index.js')).registerAmCommand],
  [['revocations'], async () => (await import('./commands/revocations/index.js')).registerRevocationsCommand],
  [['completion'], async () => (await import('./commands/completion.js')).registerCompletionCommand],
];

function packageVersion(): string {
  // Compiled, this file is dist/cli/program.js (two levels below the package root); run from source, cli/program.ts (one).
  const require = createRequire(import.meta.url);
  for (const candidate of ['../../package.json', '../package.json']) {
    try {
      const pkg = require(candidate) as { name?: string; version?: string };
      if (pkg.name === 'fedlab' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}

/** Every group's module, registered on `program` (for `fedlab completion`, which lists every command). */
export async function registerAllGroups(program: Command, context: ProgramContext = {}): Promise<void> {
  for (const [, load] of GROUPS) (await load())(program, context);
}

/**
 * Commander's "unknown option" with what to do when the "option" is an argument: a credential id
 * (random base64url) may begin with '-', and only `--` makes such a word an argument.
 */
export function withOperandHint(message: string): string {
  if (!/unknown option '-/.test(message)) return message;
  return `${message}; if it is an argument (a credential id may begin with '-'), put the arguments after --, e.g. fedlab member revoke -- URN JTI`;
}

/**
 * Builds the command tree for `argv` (as `process.argv`: the command group is
 * `argv[2]`); only that group's module is loaded when it is a known one.
 */
export async function buildProgram(argv: readonly string[] = process.argv, context: ProgramContext = {}): Promise<Command> {
  const program = new Command('fedlab')
    .description('Fedlab: control framework for federated network testbeds')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  if (context.json) {
    program.configureOutput({
      // The hint after an error is prose: dropped; the error itself is the JSON object.
      writeErr: () => undefined,
      outputError: (message) => {
        const text = withOperandHint(message.replace(/^error: /, '').trim());
        process.stderr.write(`${printableJson(errorObject(undefined, text, 2))}\n`);
      },
    });
  } else {
    program.configureOutput({ outputError: (message, write) => write(`${withOperandHint(message.trimEnd())}\n`) });
  }
  const group = argv[2];
  // `fedlab completion` lists every command: it needs every group.
  const known = group === 'completion' ? undefined : GROUPS.find(([names]) => group !== undefined && names.includes(group));
  const versionOnly = group === '-V' || group === '--version';
  if (known) (await known[1]())(program, context);
  else if (!versionOnly) await registerAllGroups(program, context);
  applyProfiles(program, context.profiles ?? { location: {} });
  return program;
}
