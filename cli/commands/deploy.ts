/**
 * `fedlab deploy`, `fedlab deployment ls|show|delete` and `fedlab member
 * add|delegate`: a service provider's operators, against its ServiceProvider
 * API. `deploy` runs a command on every sliver of a slice made across sites
 * and shows per-sliver progress — a live table in a terminal, plain lines
 * otherwise, JSON lines with `--json`. `member delegate` writes the chain file
 * a member uses with `fedlab sliver exec|logs`.
 * Exit codes: 0 done (deploy: READY); 1 refused, unreachable, or the
 * deployment ended PARTIAL or FAILED; 2 bad input.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { isUrn, isValidDomain, isValidName, parseUrn } from '../../services/core/identity/urn.js';
import { createClient } from '../../services/core/rpc/client.js';
import { SliceMode, type SiteRequest } from '../../services/generated/fedlab/v1/common.js';
import {
  DeploymentState,
  ServiceProviderService,
  ServiceState,
  type Deployment,
  type DeploymentTarget,
  type DeployResponse,
} from '../../services/generated/fedlab/v1/service_provider.js';
import { action, CliExit, EXIT_FAILURE, printJson, splitList, readFlagFile, tlsFrom, checkAddress } from '../cli-support.js';
import { refused } from '../remote.js';
import { parseDuration } from './cred.js';

/** TLS flags shared by the provider and sliver commands. */
export interface TlsFlags {
  tlsDir?: string;
  cert?: string;
  key?: string;
  ca?: string;
  timeout?: string;
}

/** Adds the TLS flags to a command. */
export function withTlsFlags(cmd: Command): Command {
  return cmd
    .option('--tls-dir <dir>', 'your key.pem, cert.pem and ca.pem (as `fedlab certs issue --out` writes them)')
    .option('--cert <file>', 'your certificate (PEM)')
    .option('--key <file>', 'your private key (PEM)')
    .option('--ca <file>', 'CA certificates to trust (PEM)')
    .option('--timeout <duration>', 'deadline of the call, e.g. 30s or 5m');
}

interface SpFlags extends TlsFlags {
  sp: string;
  spUrn?: string;
}

function spClient(f: SpFlags, defaultTimeoutS = 30) {
  if (f.spUrn !== undefined && !isUrn(f.spUrn)) throw new InvalidArgumentError(`--sp-urn ${JSON.stringify(f.spUrn)} is not a URN`);
  return createClient(ServiceProviderService, {
    address: checkAddress(f.sp, '--sp'),
    tls: tlsFrom(f),
    deadlineMs: (f.timeout ? parseDuration(f.timeout, '--timeout') : defaultTimeoutS) * 1000,
    ...(f.spUrn ? { serverUrn: f.spUrn } : {}),
  });
}

function withSp(cmd: Command): Command {
  return withTlsFlags(
    cmd.requiredOption('--sp <host:port>', "the service provider's address").option('--sp-urn <urn>', "pin the provider's certificate to this URN (instead of its host name)"),
  );
}

const STATE_NAMES: Record<number, string> = {
  [DeploymentState.DEPLOYMENT_STATE_PENDING]: 'PENDING',
  [DeploymentState.DEPLOYMENT_STATE_CREATING_SLICE]: 'CREATING_SLICE',
  [DeploymentState.DEPLOYMENT_STATE_RUNNING_STEPS]: 'RUNNING_STEPS',
  [DeploymentState.DEPLOYMENT_STATE_READY]: 'READY',
  [DeploymentState.DEPLOYMENT_STATE_PARTIAL]: 'PARTIAL',
  [DeploymentState.DEPLOYMENT_STATE_FAILED]: 'FAILED',
  [DeploymentState.DEPLOYMENT_STATE_DELETING]: 'DELETING',
  [DeploymentState.DEPLOYMENT_STATE_DELETED]: 'DELETED',
};
const SERVICE_NAMES: Record<number, string> = {
  [ServiceState.SERVICE_STATE_UNSPECIFIED]: '-',
  [ServiceState.SERVICE_STATE_STARTING]: 'starting',
  [ServiceState.SERVICE_STATE_RUNNING]: 'running',
  [ServiceState.SERVICE_STATE_BACKOFF]: 'backoff',
  [ServiceState.SERVICE_STATE_EXITED]: 'exited',
  [ServiceState.SERVICE_STATE_FAILED]: 'failed',
  [ServiceState.SERVICE_STATE_STOPPED]: 'stopped',
};

/** A deployment's state name. */
export function stateName(s: DeploymentState): string {
  return STATE_NAMES[s] ?? 'UNSPECIFIED';
}

/** One deployment as JSON for scripts. */
export function deploymentJson(d: Deployment): Record<string, unknown> {
  return {
    name: d.name,
    state: stateName(d.state),
    slice_urn: d.sliceUrn,
    request_id: d.requestId,
    error: d.error,
    created_at: d.createdAt?.toISOString(),
    updated_at: d.updatedAt?.toISOString(),
    steps: d.spec?.steps.map((s) => ({ name: s.name, argv: s.argv, service: s.service })) ?? [],
    targets: d.targets.map((t) => ({
      sliver_urn: t.sliverUrn,
      node_urn: t.nodeUrn,
      node_endpoint: t.nodeEndpoint,
      site: t.site,
      steps_done: t.stepsDone,
      service: SERVICE_NAMES[t.serviceState] ?? '-',
      restarts: t.restarts,
      last_exit: t.lastExit,
      next_restart_at: t.nextRestartAt?.toISOString() ?? null,
      status: { code: t.status?.code ?? 0, reason: t.status?.reason ?? '' },
      last_output: t.lastOutput,
    })),
  };
}

function short(urn: string): string {
  try {
    const u = parseUrn(urn);
    return `${u.name}`;
  } catch {
    return urn;
  }
}

/** The per-sliver table of a deployment. */
export function targetTable(targets: readonly DeploymentTarget[]): string {
  const head = ['SITE', 'SLIVER', 'NODE', 'SERVICE', 'RESTARTS', 'LAST EXIT', 'LAST OUTPUT'];
  const rows = targets.map((t) => [
    t.site,
    short(t.sliverUrn),
    short(t.nodeUrn),
    (t.status?.code ?? 0) !== 0 && t.serviceState === ServiceState.SERVICE_STATE_FAILED ? `failed: ${t.status?.reason ?? ''}`.slice(0, 60) : (SERVICE_NAMES[t.serviceState] ?? '-'),
    String(t.restarts),
    t.lastExit || '-',
    (t.lastOutput[t.lastOutput.length - 1] ?? '').slice(0, 60),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** Parses `--site DOMAIN=COUNT` and `--node URN` into per-site requests. */
export function siteRequests(
  sites: readonly string[],
  nodes: readonly string[],
  resources: { cpuMillis: number; memMb: number; diskMb: number },
): SiteRequest[] {
  const out = new Map<string, SiteRequest>();
  const req = (site: string): SiteRequest => {
    let r = out.get(site);
    if (!r) {
      r = {
        site,
        request: {
          nodes: { nodeUrns: [], count: 0, clientIds: [] },
          resources: { cpuMillis: resources.cpuMillis, memMb: resources.memMb, diskMb: resources.diskMb, pids: 0, bandwidthKbps: 0 },
          links: [],
          exclusive: false,
          requestDocument: '',
          requestDocumentFormat: '',
        },
      };
      out.set(site, r);
    }
    return r;
  };
  for (const s of sites) {
    const m = /^([^=]+)(?:=([0-9]+))?$/.exec(s);
    if (!m || !isValidDomain(m[1] as string) || (m[2] !== undefined && Number(m[2]) <= 0)) {
      throw new InvalidArgumentError(`--site must be DOMAIN or DOMAIN=COUNT (e.g. plc.test=2), got ${JSON.stringify(s)}`);
    }
    const r = req(m[1] as string);
    if ((r.request?.nodes?.nodeUrns.length ?? 0) > 0) throw new InvalidArgumentError(`--site ${m[1]}: give a count or --node URNs for a site, not both`);
    (r.request?.nodes as { count: number }).count = Number(m[2] ?? 1);
  }
  for (const n of nodes) {
    if (!isUrn(n) || parseUrn(n).kind !== 'node') throw new InvalidArgumentError(`--node must be a node URN urn:fedlab:<site>:node:<name>, got ${JSON.stringify(n)}`);
    const r = req(parseUrn(n).domain);
    if ((r.request?.nodes?.count ?? 0) > 0) throw new InvalidArgumentError(`--node ${n}: its site already has --site with a count`);
    r.request?.nodes?.nodeUrns.push(n);
  }
  if (out.size === 0) throw new InvalidArgumentError('say where to deploy: --site DOMAIN=COUNT (repeatable) or --node URN (repeatable)');
  return [...out.values()];
}

/** Parses `K=V` environment flags. */
export function envFrom(list: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of list) {
    const i = e.indexOf('=');
    if (i <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.slice(0, i))) throw new InvalidArgumentError(`--env must be NAME=VALUE, got ${JSON.stringify(e)}`);
    env[e.slice(0, i)] = e.slice(i + 1);
  }
  return env;
}

function collect(value: string, prev: string[]): string[] {
  return [...prev, value];
}

function whole(v: string | undefined, flag: string): number {
  if (v === undefined) return 0;
  if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new InvalidArgumentError(`${flag} must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Renders progress: a live table on a terminal, plain lines otherwise. */
class Progress {
  private drawn = 0;
  private targets: DeploymentTarget[] = [];
  private status = '';

  constructor(private readonly live: boolean) {}

  event(e: DeployResponse): void {
    if (e.deployment) this.targets = e.deployment.targets;
    this.status = `${e.deploymentName}: ${stateName(e.state)}${e.message ? ` — ${e.message}` : ''}`;
    if (!this.live) {
      const where = e.sliverUrn ? ` [${e.site}] ${short(e.sliverUrn)}` : '';
      const bad = e.status && e.status.code !== 0 ? ` (code ${e.status.code}: ${e.status.reason})` : '';
      process.stdout.write(`${new Date(e.time ?? Date.now()).toISOString()} ${stateName(e.state)}${where}: ${e.message}${bad}\n`);
      return;
    }
    if (e.sliverUrn && !e.deployment) {
      // Keep the table current between snapshots from what the event says.
      const t = this.targets.find((x) => x.sliverUrn === e.sliverUrn);
      if (t && e.message) t.lastOutput = [...t.lastOutput.slice(-5), `» ${e.message}`];
    }
    this.draw();
  }

  private draw(): void {
    const text = `${this.status}\n${targetTable(this.targets)}\n`;
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A\x1b[J` : '';
    process.stdout.write(up + text);
    this.drawn = text.split('\n').length - 1;
  }
}

/** Registers `fedlab deploy`, `fedlab deployment` and `fedlab member`. */
export function registerDeployCommands(program: Command): void {
  withSp(
    program
      .command('deploy')
      .description('deploy a service: make a slice across sites through the provider and keep COMMAND running in every sliver')
      .argument('<command...>', 'the program and its arguments (after --), run without a shell'),
  )
    .requiredOption('--name <name>', 'name of the deployment ([a-z0-9][a-z0-9._-]{0,62}); also the slice name')
    .option('--site <domain[=count]>', 'a site and how many of its nodes (repeatable)', collect, [])
    .option('--node <urn>', 'a node by URN (repeatable)', collect, [])
    .option('--slice <urn>', 'deploy onto this existing slice instead of making one')
    .option('--env <name=value>', 'environment variable of the command (repeatable)', collect, [])
    .option('--setup <command>', 'a setup command run once before the service on every sliver (split on spaces; repeatable)', collect, [])
    .option('--cpu-millis <n>', 'CPU per sliver in thousandths of a core (default: the site default)')
    .option('--mem-mb <n>', 'memory per sliver in MiB (default: the site default)')
    .option('--disk-mb <n>', 'disk per sliver in MiB (default: the site default)')
    .option('--ttl <duration>', 'slice lifetime, e.g. 2h or 7d (default: the slice authority default)')
    .option('--best-effort', 'keep the sites and nodes that worked when others fail (default: all or nothing)')
    .option('--once', 'the command is not a service: do not restart it when it exits non-zero')
    .option('--request-id <id>', 'idempotency key; repeating it re-attaches to the same deployment')
    .option('--json', 'print each progress event as a JSON line')
    .action(
      action(
        async (
          argv: string[],
          f: SpFlags & {
            name: string;
            site: string[];
            node: string[];
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
          },
        ) => {
          if (!isValidName(f.name)) throw new InvalidArgumentError(`--name must match [a-z0-9][a-z0-9._-]{0,62}, got ${JSON.stringify(f.name)}`);
          if (argv.length === 0) throw new InvalidArgumentError('give the command to run after --');
          const resources = { cpuMillis: whole(f.cpuMillis, '--cpu-millis'), memMb: whole(f.memMb, '--mem-mb'), diskMb: whole(f.diskMb, '--disk-mb') };
          if (f.slice !== undefined && (!isUrn(f.slice) || parseUrn(f.slice).kind !== 'slice')) throw new InvalidArgumentError(`--slice must be a slice URN, got ${JSON.stringify(f.slice)}`);
          const sites = f.slice ? [] : siteRequests(f.site, f.node, resources);
          const env = envFrom(f.env);
          const ttlS = f.ttl ? parseDuration(f.ttl) : 0;
          const steps = [
            ...f.setup.map((s, i) => ({ name: `setup-${i + 1}`, argv: s.split(' ').filter(Boolean), env, timeoutMs: 0, service: false })),
            { name: f.once ? 'run' : 'service', argv, env, timeoutMs: 0, service: !f.once },
          ];
          const c = spClient(f, 600);
          const progress = new Progress(!f.json && process.stdout.isTTY === true);
          let last: Deployment | undefined;
          try {
            const stream = c.deploy({
              requestId: f.requestId ?? `cli-${f.name}-${randomBytes(6).toString('hex')}`,
              name: f.name,
              spec: {
                sliceUrn: f.slice ?? '',
                sliceAuthorityUrn: '',
                sliceName: '',
                mode: f.bestEffort ? SliceMode.SLICE_MODE_BEST_EFFORT : SliceMode.SLICE_MODE_ALL_OR_NOTHING,
                sites,
                expiresAt: ttlS ? new Date(Date.now() + ttlS * 1000) : undefined,
                steps,
              },
            });
            for await (const e of stream) {
              if (e.deployment) last = e.deployment;
              if (f.json) process.stdout.write(`${JSON.stringify({ ...e, deployment: e.deployment ? deploymentJson(e.deployment) : undefined, state: stateName(e.state) })}\n`);
              else progress.event(e);
            }
          } catch (err) {
            refused(err, 'the deployment failed');
          } finally {
            c.close();
          }
          if (!last) throw new CliExit(EXIT_FAILURE, 'the provider ended the stream without a final state');
          if (!f.json && !process.stdout.isTTY) process.stdout.write(`${targetTable(last.targets)}\n`);
          if (last.state !== DeploymentState.DEPLOYMENT_STATE_READY) {
            throw new CliExit(EXIT_FAILURE, `deployment ${last.name} is ${stateName(last.state)}${last.error ? `: ${last.error}` : ''}`);
          }
        },
      ),
    );

  const dep = program.command('deployment').description("a provider's deployments: list, show, delete");
  withSp(dep.command('ls').description('list the deployments'))
    .option('--json', 'print JSON')
    .action(
      action(async (f: SpFlags & { json?: boolean }) => {
        const c = spClient(f);
        const all: Deployment[] = [];
        try {
          let token = '';
          do {
            const page = await c.listDeployments({ pageSize: 1000, pageToken: token, state: DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED }).catch((err: unknown) => refused(err, 'could not list deployments'));
            all.push(...page.deployments);
            token = page.nextPageToken;
          } while (token);
        } finally {
          c.close();
        }
        if (f.json) return printJson(all.map(deploymentJson));
        const rows = all.map((d) => [d.name, stateName(d.state), d.sliceUrn, String(d.targets.length), String(d.targets.reduce((n, t) => n + t.restarts, 0))]);
        const head = ['NAME', 'STATE', 'SLICE', 'SLIVERS', 'RESTARTS'];
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
        const line = (cells: readonly string[]) => cells.map((x, i) => x.padEnd(widths[i] as number)).join('  ').trimEnd();
        process.stdout.write(`${[line(head), ...rows.map(line)].join('\n')}\n`);
      }),
    );
  withSp(dep.command('show').description("one deployment with every sliver's service state, restarts and last output").argument('<name>'))
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, f: SpFlags & { json?: boolean }) => {
        const c = spClient(f);
        try {
          const d = (await c.getDeployment({ name }).catch((err: unknown) => refused(err, `could not read deployment ${name}`))).deployment as Deployment;
          if (f.json) return printJson(deploymentJson(d));
          process.stdout.write(`${d.name}: ${stateName(d.state)}  slice ${d.sliceUrn || '-'}${d.error ? `\nerror: ${d.error}` : ''}\n${targetTable(d.targets)}\n`);
          for (const t of d.targets) {
            if (t.lastOutput.length === 0) continue;
            process.stdout.write(`\n--- ${t.sliverUrn} (${t.nodeEndpoint || 'endpoint unknown'})\n${t.lastOutput.join('\n')}\n`);
          }
        } finally {
          c.close();
        }
      }),
    );
  withSp(dep.command('delete').description('stop a deployment and delete its slice (idempotent)').argument('<name>'))
    .option('--keep-slice', 'keep the slice (only stop the service and forget the deployment)')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, f: SpFlags & { keepSlice?: boolean; json?: boolean }) => {
        const c = spClient(f, 120);
        try {
          const d = (await c.deleteDeployment({ name, keepSlice: f.keepSlice === true }).catch((err: unknown) => refused(err, `could not delete deployment ${name}`))).deployment as Deployment;
          if (f.json) printJson(deploymentJson(d));
          else process.stdout.write(`${d.name}: ${stateName(d.state)}${d.error ? ` (${d.error})` : ''}\n`);
        } finally {
          c.close();
        }
      }),
    );

  const member = program.command('member').description("a provider's members and their slice credentials");
  withSp(member.command('add').description('register a member and the certificate its credentials are bound to'))
    .requiredOption('--urn <urn>', "the member's URN (urn:fedlab:<domain>:user:<name>), as its certificate names it")
    .requiredOption('--member-cert <file>', "the member's certificate (PEM, from `fedlab certs issue`)")
    .option('--display-name <text>', 'a display name', '')
    .option('--request-id <id>', 'idempotency key')
    .option('--json', 'print JSON')
    .action(
      action(async (f: SpFlags & { urn: string; memberCert: string; displayName: string; requestId?: string; json?: boolean }) => {
        const pem = readFlagFile(f.memberCert, '--member-cert');
        const c = spClient(f);
        try {
          const m = (
            await c
              .addMember({ requestId: f.requestId ?? `cli-member-${randomBytes(6).toString('hex')}`, memberUrn: f.urn, certificatePem: pem, displayName: f.displayName })
              .catch((err: unknown) => refused(err, 'the provider refused the member'))
          ).member;
          if (f.json) printJson({ urn: m?.urn, key_thumbprint: m?.keyThumbprint, display_name: m?.displayName, added_at: m?.addedAt?.toISOString() });
          else process.stdout.write(`member ${m?.urn} (key ${m?.keyThumbprint})\n`);
        } finally {
          c.close();
        }
      }),
    );
  withSp(member.command('delegate').description("give a member a credential on a slice: writes the chain file for `fedlab sliver exec|logs`"))
    .requiredOption('--urn <urn>', "the member's URN")
    .requiredOption('--slice <urn>', 'the slice')
    .requiredOption('--out <file>', 'where to write the chain (one compact JWS per line, root first)')
    .option('--priv <list>', "privileges, comma-separated (default: the provider's member default, sliver.exec,sliver.read)")
    .option('--target <urn>', 'a target: the slice or one of its slivers (repeatable; default: the slice)', collect, [])
    .option('--ttl <duration>', "lifetime, e.g. 1h (default: the provider's member default)")
    .option('--dlg <n>', 'how many more delegations may follow (default 0)')
    .option('--request-id <id>', 'idempotency key')
    .option('--json', 'print JSON')
    .action(
      action(async (f: SpFlags & { urn: string; slice: string; out: string; priv?: string; target: string[]; ttl?: string; dlg?: string; requestId?: string; json?: boolean }) => {
        const c = spClient(f);
        try {
          const res = await c
            .delegateToMember({
              requestId: f.requestId ?? `cli-delegate-${randomBytes(6).toString('hex')}`,
              memberUrn: f.urn,
              sliceUrn: f.slice,
              privileges: splitList(f.priv),
              targets: f.target,
              limits: undefined,
              ttlS: f.ttl ? parseDuration(f.ttl) : 0,
              maxDelegations: whole(f.dlg, '--dlg'),
            })
            .catch((err: unknown) => refused(err, 'the provider refused the delegation'));
          writeFileSync(f.out, `${res.chain.join('\n')}\n`, { mode: 0o600 });
          if (f.json) printJson({ chain_file: f.out, jti: res.jti, expires_at: res.expiresAt?.toISOString(), links: res.chain.length });
          else process.stdout.write(`wrote ${f.out}: ${res.chain.length} links, credential ${res.jti}, valid until ${res.expiresAt?.toISOString()}\n`);
        } finally {
          c.close();
        }
      }),
    );
}
