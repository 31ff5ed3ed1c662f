/**
 * `fedlab node token|enroll|ls`: a site's nodes, against its management
 * authority. `token` (site administrators, or owners for their own nodes)
 * makes a one-time enrolment token; `enroll` (on the node) redeems it for the
 * node's certificate; `ls` shows the nodes as a table (`--json` for scripts).
 * Exit codes: 0 done; 1 the MA refused or could not be reached; 2 bad input.
 */
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { parsePrivateKeyPem, privateKeyToPem, publicKeyToPem } from '../../services/core/identity/keys.js';
import { NodeHealth, SliverIsolation, type Node } from '../../services/generated/fedlab/v1/common.js';
import { enrollNode } from '../../services/management-authority/enrolment-client.js';
import { action, printJson, readFlagFile, checkAddress } from '../cli-support.js';
import { maClient, refused, withMaFlags, type MaFlags } from '../remote.js';
import { parseDuration } from './cred.js';

function ago(d: Date | undefined, now: number): string {
  if (!d) return 'never';
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

const ISOLATION: Record<number, string> = {
  [SliverIsolation.SLIVER_ISOLATION_CONTAINER]: 'container',
  [SliverIsolation.SLIVER_ISOLATION_PROCESS]: 'process (no isolation)',
  [SliverIsolation.SLIVER_ISOLATION_SIMULATED]: 'simulated',
  [SliverIsolation.SLIVER_ISOLATION_NONE]: 'none (whole node)',
};

/** Renders nodes as an aligned text table. */
export function nodeTable(nodes: readonly Node[], now = Date.now()): string {
  const rows = nodes.map((n) => {
    const cap = n.capacity;
    const used = n.allocated;
    return [
      n.urn,
      n.health === NodeHealth.NODE_HEALTH_UP ? 'UP' : 'DOWN',
      n.endpoint,
      `${used?.cpuMillis ?? 0}/${cap?.cpuMillis ?? 0}`,
      `${used?.memMb ?? 0}/${cap?.memMb ?? 0}`,
      String(n.sliverCount),
      n.exclusive ? 'yes' : 'no',
      ISOLATION[n.isolation] ?? '?',
      ago(n.lastHeartbeatAt, now),
    ];
  });
  const head = ['NODE', 'HEALTH', 'ENDPOINT', 'CPU m (used/cap)', 'MEM MB (used/cap)', 'SLIVERS', 'WHOLE', 'ISOLATION', 'LAST HEARTBEAT'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

function nodeJson(n: Node): Record<string, unknown> {
  return {
    urn: n.urn,
    owner_urn: n.ownerUrn,
    health: n.health === NodeHealth.NODE_HEALTH_UP ? 'up' : 'down',
    endpoint: n.endpoint,
    capacity: n.capacity,
    allocated: n.allocated,
    usage: n.usage,
    sliver_count: n.sliverCount,
    exclusive: n.exclusive,
    isolation: ISOLATION[n.isolation] ?? 'unspecified',
    version: n.version,
    netem_available: n.netemAvailable,
    enrolled_at: n.enrolledAt?.toISOString(),
    last_heartbeat_at: n.lastHeartbeatAt?.toISOString() ?? null,
    missed_heartbeats: n.missedHeartbeats,
  };
}

function wholeNumber(v: string | undefined, flag: string): number {
  if (v === undefined) return 0;
  if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new InvalidArgumentError(`${flag} must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Registers `fedlab node`. */
export function registerNodeCommand(program: Command): void {
  const node = program.command('node').description("a site's nodes: enrolment tokens, enrolment, listing");

  withMaFlags(node.command('token').description('make a one-time enrolment token for a node (site administrators, or an owner for its own node)'))
    .requiredOption('--name <name>', "the node's name ([a-z0-9][a-z0-9._-]{0,62}); its URN is urn:fedlab:<site>:node:<name>")
    .requiredOption('--owner <urn>', "the node owner's URN (who signs the owner → MA credential)")
    .option('--ttl <duration>', "how long the token is accepted, e.g. 1h or 2d (default: the site's, 24h)")
    .option('--request-id <id>', 'idempotency key; repeating it gives a fresh token for the same node (the old one stops working)')
    .option('--json', 'print JSON')
    .action(
      action(async (f: MaFlags & { name: string; owner: string; ttl?: string; requestId?: string; json?: boolean }) => {
        const ttlS = f.ttl ? parseDuration(f.ttl) : 0;
        const c = maClient(f);
        try {
          const res = await c
            .createEnrollmentToken({ requestId: f.requestId ?? `cli-${f.name}-${Date.now()}`, nodeName: f.name, ownerUrn: f.owner, ttlS })
            .catch((err: unknown) => refused(err, 'the management authority refused the token'));
          if (f.json) printJson({ token: res.token, node_urn: res.nodeUrn, expires_at: res.expiresAt?.toISOString() });
          else {
            // The token alone on stdout, so that TOKEN=$(fedlab node token ...) works; the rest for the person.
            process.stdout.write(`${res.token}\n`);
            process.stderr.write(`token for ${res.nodeUrn}, valid once until ${res.expiresAt?.toISOString()}; it is shown only now\n`);
          }
        } finally {
          c.close();
        }
      }),
    );

  withMaFlags(node.command('ls').description("list the site's nodes with their health and what is committed on them"))
    .addOption(new Option('--health <state>', 'only nodes in this state').choices(['up', 'down']))
    .option('--min-free-cpu <millis>', 'only nodes with at least this much CPU not committed')
    .option('--min-free-mem <mb>', 'only nodes with at least this much memory not committed')
    .option('--json', 'print JSON')
    .action(
      action(async (f: MaFlags & { health?: 'up' | 'down'; minFreeCpu?: string; minFreeMem?: string; json?: boolean }) => {
        const minCpu = wholeNumber(f.minFreeCpu, '--min-free-cpu');
        const minMem = wholeNumber(f.minFreeMem, '--min-free-mem');
        const c = maClient(f);
        const all: Node[] = [];
        try {
          let token = '';
          do {
            const page = await c
              .listNodes({ pageSize: 1000, pageToken: token, health: f.health === 'up' ? NodeHealth.NODE_HEALTH_UP : f.health === 'down' ? NodeHealth.NODE_HEALTH_DOWN : NodeHealth.NODE_HEALTH_UNSPECIFIED })
              .catch((err: unknown) => refused(err, 'could not list the nodes'));
            all.push(...page.nodes);
            token = page.nextPageToken;
          } while (token);
        } finally {
          c.close();
        }
        const nodes = all.filter(
          (n) => (n.capacity?.cpuMillis ?? 0) - (n.allocated?.cpuMillis ?? 0) >= minCpu && (n.capacity?.memMb ?? 0) - (n.allocated?.memMb ?? 0) >= minMem,
        );
        if (f.json) printJson({ nodes: nodes.map(nodeJson) });
        else process.stdout.write(`${nodes.length ? nodeTable(nodes) : 'no nodes'}\n`);
      }),
    );

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
    .addOption(new Option('--isolation <kind>', "the node manager's sliver driver").choices(['container', 'process', 'simulated']).default('container'))
    .option('--json', 'print JSON')
    .action(
      action(
        async (f: {
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
          json?: boolean;
        }) => {
          if ((f.token === undefined) === (f.tokenFile === undefined)) throw new InvalidArgumentError('give the token with --token or --token-file (one of them)');
          const token = (f.token ?? (f.tokenFile === '-' ? readFileSync(0, 'utf8') : readFlagFile(f.tokenFile as string, '--token-file'))).trim();
          const chain = readFlagFile(f.ownerChain, '--owner-chain')
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean);
          if (chain.length === 0) throw new InvalidArgumentError(`--owner-chain ${f.ownerChain} holds no credential`);
          const keyPath = join(f.out, 'key.pem');
          if (!f.key && existsSync(keyPath)) throw new InvalidArgumentError(`${keyPath} already exists; choose another --out, or pass it as --key to certify it`);
          const privateKey = f.key ? parsePrivateKeyPem(readFlagFile(f.key, '--key'), `--key ${f.key}`) : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
          const isolation = { container: SliverIsolation.SLIVER_ISOLATION_CONTAINER, process: SliverIsolation.SLIVER_ISOLATION_PROCESS, simulated: SliverIsolation.SLIVER_ISOLATION_SIMULATED }[f.isolation];
          const res = await enrollNode(
            { address: checkAddress(f.enrol, '--enrol'), caPem: readFlagFile(f.ca, '--ca'), ...(f.maUrn ? { maUrn: f.maUrn } : {}) },
            {
              token,
              publicKeyPem: publicKeyToPem(createPublicKey(privateKey)),
              csrPem: '',
              ownerCredentialChain: chain,
              endpoint: checkAddress(f.endpoint, '--endpoint'),
              capacity: {
                cpuMillis: wholeNumber(f.cpuMillis, '--cpu-millis'),
                memMb: wholeNumber(f.memMb, '--mem-mb'),
                diskMb: wholeNumber(f.diskMb, '--disk-mb'),
                pids: wholeNumber(f.pids, '--pids'),
                bandwidthKbps: 0,
              },
              isolation,
              version: '',
              netemAvailable: false,
            },
          ).catch((err: unknown) => refused(err, 'enrolment refused'));
          mkdirSync(f.out, { recursive: true, mode: 0o700 });
          if (!f.key) writeFileSync(keyPath, privateKeyToPem(privateKey), { mode: 0o600 });
          writeFileSync(join(f.out, 'cert.pem'), res.certificatePem);
          writeFileSync(join(f.out, 'ca.pem'), res.caChainPem.join(''));
          const out = { node_urn: res.nodeUrn, aggregate_urn: res.aggregateUrn, heartbeat_interval_s: res.heartbeatIntervalS, dir: f.out };
          if (f.json) printJson(out);
          else process.stdout.write(`enrolled ${res.nodeUrn} with ${res.aggregateUrn}; certificate in ${f.out} (heartbeat every ${res.heartbeatIntervalS}s)\n`);
        },
      ),
    );
}
