/**
 * `fedlab serve <nm|ma|sa|sp> --config FILE`: runs one Fedlab service until
 * SIGTERM or SIGINT. This is the only place that reads `process.env` for a
 * service; everything below it takes the compiled config.
 */
import { Command, Option } from 'commander';
import type { z } from 'zod';
import { compileConfig, ROLES, type CommonConfig, type Role } from '../../services/core/config.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { hostService, type RoleDeps, type RoleServices } from '../../services/core/host.js';
import { createLogger } from '../../services/core/log.js';
import { buildManagementAuthority, maConfigSchema, MA_PATH_FIELDS } from '../../services/management-authority/index.js';
import { buildNodeManager, nmConfigSchema, NM_PATH_FIELDS } from '../../services/node-manager/index.js';
import { buildServiceProvider, spConfigSchema, SP_PATH_FIELDS } from '../../services/service-provider/index.js';
import { buildSliceAuthority, saConfigSchema, SA_PATH_FIELDS } from '../../services/slice-authority/index.js';
import { action } from '../cli-support.js';
import { parsePositiveInt } from '../flag-values.js';

/**
 * Each role's own services. Every role serves Federation, health and
 * reflection through the host; the role services (NodeManager,
 * ManagementAuthority + Aggregate, SliceAuthority, ServiceProvider) are added
 * here as they are built.
 */
const ROLE_SERVICES: Record<Role, (deps: RoleDeps<CommonConfig>) => Promise<RoleServices> | RoleServices> = {
  nm: buildNodeManager as (deps: RoleDeps<CommonConfig>) => Promise<RoleServices>,
  ma: buildManagementAuthority as (deps: RoleDeps<CommonConfig>) => Promise<RoleServices>,
  sa: buildSliceAuthority as (deps: RoleDeps<CommonConfig>) => Promise<RoleServices>,
  sp: buildServiceProvider as (deps: RoleDeps<CommonConfig>) => Promise<RoleServices>,
};

/** Each role's config schema and its own path fields (resolved against the config file's folder). */
const ROLE_CONFIGS: Record<Role, { schema: z.ZodType<CommonConfig>; pathFields?: readonly string[] }> = {
  nm: { schema: nmConfigSchema, pathFields: NM_PATH_FIELDS },
  ma: { schema: maConfigSchema, pathFields: MA_PATH_FIELDS },
  sa: { schema: saConfigSchema, pathFields: SA_PATH_FIELDS },
  sp: { schema: spConfigSchema, pathFields: SP_PATH_FIELDS },
};

interface ServeFlags {
  config: string;
  host?: string;
  port?: string;
  dataDir?: string;
  logLevel?: string;
}

/** Registers `fedlab serve`. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run one Fedlab service (node manager, management authority, slice authority or service provider)')
    .addArgument(program.createArgument('<role>', 'which service to run').choices(ROLES))
    .requiredOption('--config <file>', 'JSON config file of the service')
    .option('--host <host>', 'address to listen on (overrides listen.host)')
    .option('--port <port>', 'port to listen on, 0 for any free port (overrides listen.port)')
    .option('--data-dir <dir>', 'data directory (overrides data_dir)')
    .addOption(
      new Option('--log-level <level>', 'log level (overrides log_level)').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']),
    )
    .action(
      action(async (role: Role, flags: ServeFlags) => {
        const port = flags.port === undefined ? undefined : flags.port === '0' ? 0 : parsePositiveInt(flags.port, '--port');
        const config = compileConfig(
          ROLE_CONFIGS[role].schema,
          {
            file: flags.config,
            env: process.env,
            flags: { 'listen.host': flags.host, 'listen.port': port, data_dir: flags.dataDir, log_level: flags.logLevel },
          },
          ROLE_CONFIGS[role].pathFields,
        );
        if (config.role !== role) {
          throw new InvalidArgumentError(
            `the config ${flags.config} is for role ${config.role}, not ${role}; use \`fedlab serve ${config.role}\``,
          );
        }
        const log = createLogger({ name: `${role}`, level: config.log_level }).child({ urn: config.urn });
        // A port in use or an address that cannot be bound comes back as an error naming the listener's setting.
        await hostService(config, log, ROLE_SERVICES[role], { handleSignals: true });
      }),
    );
}
