/** `fedlab deploy`: a slice made across sites through the provider, COMMAND kept running in every sliver. */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, isValidName, parseUrn } from '../../../services/core/identity/urn.js';
import { SliceMode } from '../../../services/generated/fedlab/v1/common.js';
import { DeploymentState, type Deployment } from '../../../services/generated/fedlab/v1/service_provider.js';
import { action, CliExit, EXIT_FAILURE } from '../../cli-support.js';
import { envFrom, parseDuration, parseWholeNumber, repeatable } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { DeployProgress } from './deploy-progress.js';
import { deploymentJson, stateName, targetTable } from './deployment-view.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';
import { nameNodes, siteRequests } from './site-requests.js';
import { parseStitchSpec } from '../slice/stitch-spec.js';
import { printableJson, writeOut } from '../../printable.js';

interface DeployFlags extends SpFlags {
  name: string;
  site: string[];
  node: string[];
  stitch: string[];
  slice?: string;
  env: string[];
  setup: string[];
  cpuMillis?: string;
  memMb?: string;
  diskMb?: string;
  ttl?: string;
  bestEffort?: boolean;
  once?: boolean;
  requestId?: string;
  json?: boolean;
}

/** Registers `fedlab deploy`. */
export function registerDeploy(program: Command): void {
  withSp(
    program
      .command('deploy')
      .description('deploy a service: make a slice across sites through the provider and keep COMMAND running in every sliver')
      .argument('<command...>', 'the program and its arguments (after --), run without a shell'),
  )
    .requiredOption('--name <name>', 'name of the deployment ([a-z0-9][a-z0-9._-]{0,62}); also the slice name')
    .option('--site <domain[=count]>', 'a site and how many of its nodes (repeatable)', repeatable, [])
    .option('--node <urn>', 'a node by URN (repeatable)', repeatable, [])
    .option(
      '--stitch <spec>',
      'NAME=SITE/ID,SITE/ID[@KBPS]: a link stitched between nodes of two sites; ids are 0..COUNT-1 for --site, the node name for --node (repeatable)',
      repeatable,
      [],
    )
    .option('--slice <urn>', 'deploy onto this existing slice instead of making one')
    .option('--env <name=value>', 'environment variable of the command (repeatable)', repeatable, [])
    .option(
      '--setup <command>',
      'a setup command run once before the service on every sliver (split on spaces; repeatable)',
      repeatable,
      [],
    )
    .option('--cpu-millis <n>', 'CPU per sliver in thousandths of a core (default: the site default)')
    .option('--mem-mb <n>', 'memory per sliver in MiB (default: the site default)')
    .option('--disk-mb <n>', 'disk per sliver in MiB (default: the site default)')
    .option('--ttl <duration>', 'slice lifetime, e.g. 2h or 7d (default: the slice authority default)')
    .option('--best-effort', 'keep the sites and nodes that worked when others fail (default: all or nothing)')
    .option('--once', 'the command is not a service: do not restart it when it exits non-zero')
    .option('--request-id <id>', 'idempotency key; repeating it re-attaches to the same deployment')
    .option('--json', 'print each progress event as a JSON line')
    .action(action(async (argv: string[], flags: DeployFlags) => deploy(argv, flags)));
}

async function deploy(argv: string[], flags: DeployFlags): Promise<void> {
  if (!isValidName(flags.name))
    throw new InvalidArgumentError(`--name must match [a-z0-9][a-z0-9._-]{0,62}, got ${JSON.stringify(flags.name)}`);
  if (argv.length === 0) throw new InvalidArgumentError('give the command to run after --');
  const resources = {
    cpuMillis: parseWholeNumber(flags.cpuMillis, '--cpu-millis'),
    memMb: parseWholeNumber(flags.memMb, '--mem-mb'),
    diskMb: parseWholeNumber(flags.diskMb, '--disk-mb'),
  };
  if (flags.slice !== undefined && (!isUrn(flags.slice) || parseUrn(flags.slice).kind !== 'slice'))
    throw new InvalidArgumentError(`--slice must be a slice URN, got ${JSON.stringify(flags.slice)}`);
  const sites = flags.slice ? [] : siteRequests(flags.site, flags.node, resources);
  const stitched = flags.stitch.map(parseStitchSpec);
  if (stitched.length > 0 && flags.slice) throw new InvalidArgumentError('--stitch makes links in a new slice: leave out --slice');
  if (stitched.length > 0) nameNodes(sites);
  const env = envFrom(flags.env);
  const ttlS = flags.ttl ? parseDuration(flags.ttl) : 0;
  const steps = [
    ...flags.setup.map((s, i) => ({ name: `setup-${i + 1}`, argv: s.split(' ').filter(Boolean), env, timeoutMs: 0, service: false })),
    { name: flags.once ? 'run' : 'service', argv, env, timeoutMs: 0, service: !flags.once },
  ];
  const client = spClient(flags, 600);
  const progress = new DeployProgress(!flags.json && process.stdout.isTTY === true);
  let last: Deployment | undefined;
  try {
    const stream = client.deploy({
      requestId: flags.requestId ?? `cli-${flags.name}-${randomBytes(6).toString('hex')}`,
      name: flags.name,
      spec: {
        sliceUrn: flags.slice ?? '',
        sliceAuthorityUrn: '',
        sliceName: '',
        mode: flags.bestEffort ? SliceMode.SLICE_MODE_BEST_EFFORT : SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites,
        ...(stitched.length ? { stitchedLinks: { links: stitched } } : {}),
        expiresAt: ttlS ? new Date(Date.now() + ttlS * 1000) : undefined,
        steps,
      },
    });
    for await (const event of stream) {
      if (event.deployment) last = event.deployment;
      if (flags.json)
        writeOut(
          `${printableJson({ ...event, deployment: event.deployment ? deploymentJson(event.deployment) : undefined, state: stateName(event.state) })}\n`,
        );
      else progress.event(event);
    }
  } catch (err) {
    refused(err, 'the deployment failed');
  } finally {
    client.close();
  }
  if (!last) throw new CliExit(EXIT_FAILURE, 'the provider ended the stream without a final state');
  if (!flags.json && !process.stdout.isTTY) writeOut(`${targetTable(last.targets)}\n`);
  if (last.state !== DeploymentState.DEPLOYMENT_STATE_READY) {
    throw new CliExit(EXIT_FAILURE, `deployment ${last.name} is ${stateName(last.state)}${last.error ? `: ${last.error}` : ''}`);
  }
}
