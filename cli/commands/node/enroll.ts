/** `fedlab node enroll`: an enrolment token redeemed for the node's certificate (by the owner, on the node). */
import { createPublicKey } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { checkOutputFile, writeOutputFile } from '../../../certs/output-file.js';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { parsePrivateKeyPem, privateKeyToPem, publicKeyToPem } from '../../../services/core/identity/keys.js';
import { compileConfig } from '../../../services/core/config.js';
import { SliverIsolation, type SshEndpoint } from '../../../services/generated/fedlab/v1/common.js';
import { NM_PATH_FIELDS, nmConfigSchema } from '../../../services/node-manager/config.js';
import { sshEndpointOf } from '../../node-ssh-endpoint.js';
import { enrollNode } from '../../../services/management-authority/enrolment-client.js';
import { action, checkAddress, printJson, readFlagFile } from '../../cli-support.js';
import { parseWholeNumber } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { writeOut } from '../../printable.js';
import { generateKeyPair } from '../../../services/core/identity/keys.js';

interface EnrollFlags {
  enrol: string;
  ca: string;
  maUrn?: string;
  token?: string;
  tokenFile?: string;
  ownerChain: string;
  endpoint: string;
  out: string;
  key?: string;
  cpuMillis: string;
  memMb: string;
  diskMb: string;
  pids: string;
  isolation: 'container' | 'process' | 'simulated';
  nmConfig?: string;
  json?: boolean;
}

/** Registers `fedlab node enroll`. */
export function registerNodeEnroll(node: Command): void {
  node
    .command('enroll')
    .description("redeem an enrolment token for this node's certificate (run by the node's owner on the node)")
    .requiredOption('--enrol <host:port>', "the MA's enrolment listener (enrolment.listen in its config)")
    .requiredOption('--ca <file>', "the site CA's certificate (PEM), given out of band")
    .option('--ma-urn <urn>', "pin the MA's certificate to this URN (instead of checking its host name)")
    .option('--token <token>', 'the enrolment token (prefer --token-file: command lines are visible to other users)')
    .option('--token-file <file>', "a file holding the token ('-' for standard input)")
    .requiredOption('--owner-chain <file>', "the owner's owner → MA credential chain file (one compact JWS per line)")
    .requiredOption('--endpoint <host:port>', 'where this node manager serves gRPC')
    .requiredOption('--out <dir>', 'where to write key.pem, cert.pem and ca.pem')
    .option('--key <file>', 'certify this existing private key instead of making one')
    .option('--cpu-millis <n>', 'CPU the node offers, in thousandths of a core', '1000')
    .option('--mem-mb <n>', 'memory the node offers (MiB)', '1024')
    .option('--disk-mb <n>', 'disk the node offers (MiB)', '10240')
    .option('--pids <n>', 'processes the node offers', '4096')
    .addOption(
      new Option('--isolation <kind>', "the node manager's sliver driver")
        .choices(['container', 'process', 'simulated'])
        .default('container'),
    )
    .option(
      '--nm-config <file>',
      "this node manager's config: the SSH endpoint it will serve (ssh.address, or ssh.listen with a fixed port, and its host key, made now at its host key file when there is none) and its network.underlay_address go with the enrolment, so the site knows them before the node's first heartbeat",
    )
    .option('--json', 'print JSON')
    .action(action(async (flags: EnrollFlags) => enroll(flags)));
}

/** Whether anything (a dangling symbolic link too) is at `path`. */
function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * What the node manager configured in `file` will report that is known before it starts: the SSH
 * endpoint it will publish and its underlay address (network.underlay_address). Refused when it names
 * neither, or an SSH endpoint whose port is picked only at start.
 */
function fromNodeConfig(file: string): { ssh?: SshEndpoint; underlayAddress?: string } {
  const config = compileConfig(nmConfigSchema, { file }, NM_PATH_FIELDS);
  const underlayAddress = config.network?.underlay_address;
  if (!config.ssh && !underlayAddress)
    throw new InvalidArgumentError(
      `--nm-config ${file} gives nothing to enrol with: that node manager serves no SSH and names no network.underlay_address`,
    );
  const ssh = config.ssh ? sshEndpointOf(config) : undefined;
  if (config.ssh && !ssh) {
    throw new InvalidArgumentError(
      `--nm-config ${file}: ssh.listen picks its port at start (port 0) and ssh.address is not set, so the endpoint is known only once the node manager runs; set a fixed port or ssh.address, or leave out --nm-config (the node's heartbeats publish it)`,
    );
  }
  return { ...(ssh ? { ssh } : {}), ...(underlayAddress ? { underlayAddress } : {}) };
}

async function enroll(flags: EnrollFlags): Promise<void> {
  if ((flags.token === undefined) === (flags.tokenFile === undefined))
    throw new InvalidArgumentError('give the token with --token or --token-file (one of them)');
  const token = (
    flags.token ?? (flags.tokenFile === '-' ? readFileSync(0, 'utf8') : readFlagFile(flags.tokenFile as string, '--token-file'))
  ).trim();
  const chain = readFlagFile(flags.ownerChain, '--owner-chain')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (chain.length === 0) throw new InvalidArgumentError(`--owner-chain ${flags.ownerChain} holds no credential`);
  const keyPath = join(flags.out, 'key.pem');
  if (!flags.key && lstatOrUndefined(keyPath))
    throw new InvalidArgumentError(`${keyPath} already exists; choose another --out, or pass it as --key to certify it`);
  // Before the token is spent: the certificate files may be replaced, never through a symbolic link.
  for (const f of ['cert.pem', 'ca.pem']) checkOutputFile(join(flags.out, f), { replace: true });
  const privateKey = flags.key
    ? parsePrivateKeyPem(readFlagFile(flags.key, '--key'), `--key ${flags.key}`)
    : generateKeyPair('p256').privateKey;
  // Before the token is spent: a config that does not say the endpoint is refused with nothing used up.
  const reported = flags.nmConfig !== undefined ? fromNodeConfig(flags.nmConfig) : {};
  const isolation = {
    container: SliverIsolation.SLIVER_ISOLATION_CONTAINER,
    process: SliverIsolation.SLIVER_ISOLATION_PROCESS,
    simulated: SliverIsolation.SLIVER_ISOLATION_SIMULATED,
  }[flags.isolation];
  const res = await enrollNode(
    {
      address: checkAddress(flags.enrol, '--enrol'),
      caPem: readFlagFile(flags.ca, '--ca'),
      ...(flags.maUrn ? { maUrn: flags.maUrn } : {}),
    },
    {
      token,
      publicKeyPem: publicKeyToPem(createPublicKey(privateKey)),
      csrPem: '',
      ownerCredentialChain: chain,
      endpoint: checkAddress(flags.endpoint, '--endpoint'),
      capacity: {
        cpuMillis: parseWholeNumber(flags.cpuMillis, '--cpu-millis'),
        memMb: parseWholeNumber(flags.memMb, '--mem-mb'),
        diskMb: parseWholeNumber(flags.diskMb, '--disk-mb'),
        pids: parseWholeNumber(flags.pids, '--pids'),
        bandwidthKbps: 0,
      },
      isolation,
      version: '',
      netemAvailable: false,
      ...reported,
    },
  ).catch((err: unknown) => refused(err, 'enrolment refused'));
  mkdirSync(flags.out, { recursive: true, mode: 0o700 });
  if (!flags.key) writeOutputFile(keyPath, privateKeyToPem(privateKey), { mode: 0o600 });
  writeOutputFile(join(flags.out, 'cert.pem'), res.certificatePem, { mode: 0o644, replace: true });
  writeOutputFile(join(flags.out, 'ca.pem'), res.caChainPem.join(''), { mode: 0o644, replace: true });
  const out = { node_urn: res.nodeUrn, aggregate_urn: res.aggregateUrn, heartbeat_interval_s: res.heartbeatIntervalS, dir: flags.out };
  if (flags.json) printJson(out);
  else
    writeOut(
      `enrolled ${res.nodeUrn} with ${res.aggregateUrn}; certificate in ${flags.out} (heartbeat every ${res.heartbeatIntervalS}s)\n`,
    );
}
