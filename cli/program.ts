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

type Register = (program: Command) => void;

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

/**
 * Builds the command tree for `argv` (as `process.argv`: the command group is
 * `argv[2]`); only that group's module is loaded when it is a known one.
 */
export async function buildProgram(argv: readonly string[] = process.argv): Promise<Command> {
  const program = new Command('fedlab')
    .description('Fedlab: control framework for federated network testbeds')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const group = argv[2];
  const known = GROUPS.find(([names]) => group !== undefined && names.includes(group));
  const versionOnly = group === '-V' || group === '--version';
  for (const [, load] of known ? [known] : versionOnly ? [] : GROUPS) (await load())(program);
  return program;
}
