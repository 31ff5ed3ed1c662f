/**
 * A whole federation on one machine, every party its own `fedlab serve`
 * process: per site (planetlab, emulab, protogeni style, each its own domain
 * and CA) a management authority and N node managers, enrolled the way a site
 * admin and node owner would (one-time token, owner → MA chain, EnrollNode);
 * in the home domain (the first site's) a slice authority and a service
 * provider. Used by `fedlab up` and by the end-to-end tests.
 *
 * Everything lives under one directory: certificates, configs, data and logs.
 * Ports are chosen up front and kept in the state file, so a second run on
 * the same directory restarts the same federation.
 *
 * This class holds the federation's state; each step lives in its own
 * module: sites.ts (MAs, enrolment, node managers), peering.ts,
 * home-services.ts (delegations, slice authority, provider), deployment.ts,
 * clients.ts, service-configs.ts and teardown.ts.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../../services/core/errors.js';
import type { PromiseClient } from '../../services/core/rpc/client.js';
import type { Node } from '../../services/generated/fedlab/v1/common.js';
import type { ManagementAuthorityService } from '../../services/generated/fedlab/v1/management_authority.js';
import type { Deployment, ServiceProviderService } from '../../services/generated/fedlab/v1/service_provider.js';
import type { SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { SshHost } from '../commands/sliver/ssh-config-render.js';
import type { LogLevel } from '../kit/role-configs.js';
import { FederationClients } from './clients.js';
import * as deployment from './deployment.js';
import { chooseDriver, type DriverChoice } from './driver-choice.js';
import * as homeServices from './home-services.js';
import { peerDomains } from './peering.js';
import { makePki } from './pki.js';
import {
  addDashboardPorts,
  ALL_STYLES,
  homePaths,
  isFreshDir,
  isOurProcess,
  nodePaths,
  planFederation,
  plannedPorts,
  readState,
  replacePort,
  sitePaths,
  writeState,
  type SitePlan,
  type SiteStyleName,
  type UpState,
} from './plan.js';
import { ProcessGroup } from './process-group.js';
import { defaultFedlabArgs, freePort, portInUse, type ServiceProcess } from './processes.js';
import { listSiteNodes, startSites, waitNodesUp } from './sites.js';
import { stopInOrder, sweepLeftovers } from './teardown.js';
import { chooseNetBlock } from './node-networks.js';
import { processStartTime, stopLeftoverProcesses, upAlive } from './leftovers.js';

/** Options of {@link LocalFederation.open}. */
export interface FederationOptions {
  /** The federation's directory (created if missing). */
  readonly dir: string;
  /**
   * Service processes a run that did not stop left running: refused (the default), or stopped
   * (`clean` and `keep`: what they held is then deleted or adopted by the caller, see leftovers.ts).
   */
  readonly leftovers?: 'refuse' | 'clean' | 'keep';
  /** Site styles, in order; the first site's domain is the home of the SA and SP. */
  readonly sites?: readonly SiteStyleName[];
  /** Node managers per site (3 by default). */
  readonly nodes?: number;
  /** Node arguments that start `fedlab` (the compiled CLI next to this module by default). */
  readonly fedlabArgs?: readonly string[];
  /** Sliver driver of the node managers: `auto` (container where it can run, else process). */
  readonly driver?: 'auto' | 'container' | 'process';
  /** Heartbeat interval of MAs and node managers (ms); 1000 by default. */
  readonly heartbeatMs?: number;
  /** Log level of the services (info by default). */
  readonly logLevel?: LogLevel;
  /** Progress lines for a person. */
  readonly say?: (line: string) => void;
}

/** A running node manager. */
export interface NodeRuntime {
  readonly name: string;
  readonly urn: string;
  endpoint: string;
  readonly paths: ReturnType<typeof nodePaths>;
  readonly proc: ServiceProcess;
}

/** A running site. */
export interface SiteRuntime {
  readonly plan: SitePlan;
  readonly style: SiteStyleName;
  readonly domain: string;
  readonly maUrn: string;
  /** host:port clients dial for the MA (ManagementAuthority, Aggregate, Federation); it listens on 127.0.0.1. */
  address: string;
  readonly paths: ReturnType<typeof sitePaths>;
  readonly ma: ServiceProcess;
  readonly nodes: NodeRuntime[];
}

/** A local federation: its plan, its processes, and how to stop them. */
export class LocalFederation {
  readonly sites: SiteRuntime[] = [];
  readonly driver: DriverChoice;
  /** Node arguments that start `fedlab`. */
  readonly fedlabArgs: readonly string[];
  /** Heartbeat interval of the MAs and node managers (ms). */
  readonly heartbeatMs: number;
  /** Log level of every service. */
  readonly logLevel: LogLevel;
  /** Progress lines for a person. */
  readonly say: (line: string) => void;
  /** The slice authority's process (once started). */
  sa: ServiceProcess | undefined;
  /** The service provider's process (once started). */
  sp: ServiceProcess | undefined;
  /** SSH into the demo slice, once the member has it: the slivers one can log in to (see ssh-access.ts). */
  sshAccess:
    | {
        readonly hosts: readonly SshHost[];
        /** Commands that ping across the slice's links (see demo-links.ts). */
        readonly pings?: readonly string[];
        readonly problem?: string;
      }
    | undefined;
  private readonly group = new ProcessGroup();
  private readonly clients = new FederationClients(this);

  private constructor(
    readonly dir: string,
    public state: UpState,
    /** True when the directory was made by this run (false: reused). */
    readonly fresh: boolean,
    options: FederationOptions,
  ) {
    this.driver = chooseDriver(options.driver);
    this.fedlabArgs = options.fedlabArgs ?? defaultFedlabArgs();
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.logLevel = options.logLevel ?? 'info';
    this.say = options.say ?? (() => {});
  }

  /**
   * Opens a federation directory: makes the plan (ports) and the PKI in a
   * fresh (missing or empty) one, or reuses one a previous run made with the
   * same sites and node count. Refuses anything else, saying why, and changes nothing then.
   */
  static async open(options: FederationOptions): Promise<LocalFederation> {
    const dir = resolve(options.dir);
    const styles = options.sites ?? ALL_STYLES;
    const nodes = options.nodes ?? 3;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64)
      throw new InvalidArgumentError(`--nodes must be between 1 and 64, got ${nodes}`);
    const existing = readState(dir);
    if (existing) {
      const want = styles.join(',');
      const have = existing.sites.map((s) => s.style).join(',');
      if (want !== have || existing.sites.some((s) => s.nodes.length !== nodes)) {
        throw new InvalidArgumentError(
          `${dir} holds a federation of ${have} with ${existing.sites[0]?.nodes.length ?? 0} nodes per site, not ${want} with ${nodes}; ` +
            'run again with those --sites and --nodes to reuse it, or choose another --dir (or remove it)',
        );
      }
      const alive = existing.pids.filter((pid) => isOurProcess(pid, dir));
      const leftovers = options.leftovers ?? 'refuse';
      if (existing.up && upAlive(existing.up)) {
        throw new FailedPreconditionError(
          `a fedlab up of ${dir} still runs (process ${existing.up.pid}); stop it (Ctrl-C there, or kill ${existing.up.pid}) before starting it again`,
        );
      }
      if (alive.length && leftovers === 'refuse') {
        throw new FailedPreconditionError(
          `a fedlab up of ${dir} still runs (processes ${alive.join(', ')}); stop it (Ctrl-C there, or kill ${alive.join(' ')}) before starting it again`,
        );
      }
      if (alive.length) {
        // The run that started them is gone (kill -9, a crash): they cannot be adopted, their output went to it.
        const say = options.say ?? (() => {});
        say(`the last run of ${dir} did not stop; stopping what it left running:`);
        for (const l of await stopLeftoverProcesses(alive)) say(`  ${l}`);
        writeState(dir, { ...existing, pids: [] });
      }
      if (!existing.complete) {
        throw new FailedPreconditionError(
          `${dir} holds a federation whose set-up did not finish; remove the directory (rm -r ${dir}) and run again`,
        );
      }
      const busy: number[] = [];
      for (const port of plannedPorts(existing)) if (await portInUse(port)) busy.push(port);
      if (busy.length)
        throw new FailedPreconditionError(
          `ports ${busy.join(', ')} of the federation in ${dir} are taken by other programs; free them or choose another --dir`,
        );
      // A directory made before dashboards gets their ports now, one made before sliver networks its block.
      const needsBlock = existing.net_block === undefined;
      if (needsBlock) existing.net_block = chooseNetBlock(dir);
      if ((await addDashboardPorts(existing)) || needsBlock) writeState(dir, existing);
      return new LocalFederation(dir, existing, false, options);
    }
    if (!isFreshDir(dir))
      throw new InvalidArgumentError(`${dir} exists and is not a fedlab up directory; choose another --dir (an empty or missing one)`);
    const fed = new LocalFederation(dir, { ...(await planFederation(styles, nodes)), net_block: chooseNetBlock(dir) }, true, options);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync(`${dir}/logs`, { recursive: true, mode: 0o700 });
    fed.saveState();
    fed.say(`making the CAs, certificates and trust bundles of ${fed.state.sites.map((s) => s.domain).join(', ')} in ${dir}`);
    await makePki(dir, fed.state.sites, fed.home);
    return fed;
  }

  /** Which start of this directory this is (1 the first time). */
  get run(): number {
    return this.state.runs;
  }

  /** The home domain (of the slice authority and service provider). */
  get home(): string {
    return this.state.home;
  }

  /** Processes in start order (stopped in reverse). */
  get processes(): readonly ServiceProcess[] {
    return this.group.processes;
  }

  /** Paths of the home domain's SA, SP, operator and member. */
  get homePaths(): ReturnType<typeof homePaths> {
    return homePaths(this.dir, this.home);
  }

  /**
   * host:port of the slice authority and the service provider. Services listen on 127.0.0.1;
   * clients dial `localhost`, a name their certificates carry (TLS has no server name for an IP).
   */
  get saAddress(): string {
    return `localhost:${this.state.sa_port}`;
  }
  get spAddress(): string {
    return `localhost:${this.state.sp_port}`;
  }

  /** The file holding a site's `MA → SA` chain. */
  chainFile(domain: string): string {
    return `${this.dir}/${this.home}/chains/${domain}.chain`;
  }

  /** Every domain's CA certificate in one file: what a client of one domain passes as `--ca` to reach servers of all of them. */
  get allCaFile(): string {
    return `${this.dir}/all-ca.pem`;
  }

  /** Where {@link prepareMember} writes the member's chain. */
  get memberChainFile(): string {
    return `${this.dir}/${this.home}/member.chain`;
  }

  /** Writes the state file (the plan, the runs, the pids). */
  saveState(): void {
    writeState(this.dir, this.state);
  }

  /** Records the running processes' ids and this run's (so the next run finds them if this one dies). */
  savePids(): void {
    const started = processStartTime(process.pid);
    this.state = { ...this.state, pids: this.group.pids(), ...(started !== undefined ? { up: { pid: process.pid, started } } : {}) };
    this.saveState();
  }

  /** Adds a process to the federation (before it starts); refused once a stop has begun. */
  track(proc: ServiceProcess): ServiceProcess {
    return this.group.add(proc);
  }

  /**
   * Writes a service's config and starts it. Ports are chosen up front, so
   * another program may take one before the service binds it: then that port
   * is replaced in the plan by a free one, the config rewritten, and the start
   * retried (a few times).
   */
  async startOnFreePorts(proc: ServiceProcess, writeConfig: () => void): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      writeConfig();
      if (this.group.closed) throw new Error('the federation is stopping; nothing more is started');
      try {
        await proc.start();
        // stop() may have run while this one was starting: it must not outlive it.
        if (this.group.closed) await proc.stop();
        return;
      } catch (err) {
        // The service names the listener it could not bind (its earlier log lines name others' ports).
        const m = /cannot listen on (?:127\.0\.0\.1|localhost|\[::1\]):(\d+): the port is in use/.exec((err as Error).message);
        if (!m || attempt >= 4) throw err;
        const taken = Number(m[1]);
        const fresh = await freePort();
        if (!replacePort(this.state, taken, fresh)) throw err;
        this.say(`port ${taken} of ${proc.options.name} was taken by another program; using ${fresh}`);
        this.saveState();
      }
    }
  }

  /** An admin client of a site's MA. */
  maClient(site: SiteRuntime): PromiseClient<typeof ManagementAuthorityService> {
    return this.clients.ma(site);
  }

  /** A client of the slice authority as `who` (an identity directory; the provider by default). */
  saClient(who = this.homePaths.sp, deadlineMs = 30_000): PromiseClient<typeof SliceAuthorityService> {
    return this.clients.sa(who, deadlineMs);
  }

  /** A client of the service provider as `who` (the operator by default). */
  spClient(who = this.homePaths.operator, deadlineMs = 60_000): PromiseClient<typeof ServiceProviderService> {
    return this.clients.sp(who, deadlineMs);
  }

  /**
   * Phase 1: starts every site's MA, enrols its nodes (first run only), starts
   * the node managers and waits until the MA sees every node UP.
   */
  startSites(): Promise<void> {
    return startSites(this);
  }

  /** Every site's nodes as its MA sees them. */
  listNodes(site: SiteRuntime): Promise<Node[]> {
    return listSiteNodes(this, site);
  }

  /** Waits until every site's MA reports all its nodes UP. */
  waitNodesUp(timeoutMs = 60_000): Promise<void> {
    return waitNodesUp(this, timeoutMs);
  }

  /** Phase 2: peers every domain with every other, as their admins would (`fedlab federation peer add`). */
  peerDomains(): Promise<void> {
    return peerDomains(this);
  }

  /**
   * Phase 2: every site's administrator delegates slice creation to the home
   * domain's slice authority; the chains are written where the SA's config points.
   */
  delegateToSliceAuthority(): Promise<void> {
    return homeServices.delegateToSliceAuthority(this);
  }

  /** Phase 2: starts the slice authority with a config built from its schema. */
  startSliceAuthority(): Promise<void> {
    return homeServices.startSliceAuthority(this);
  }

  /** Phase 3: starts the service provider with a config built from its schema. */
  startServiceProvider(): Promise<void> {
    return homeServices.startServiceProvider(this);
  }

  /** Restarts the slice authority on its config (same data, same port), e.g. after a kill -9. */
  async restartSliceAuthority(): Promise<void> {
    await this.sa?.start();
    this.savePids();
  }

  /** Phase 3: the provider deploys `command` on every site (see {@link deployment.deploy}). */
  deploy(name: string, command: readonly string[], options: deployment.DeployOptions = {}): Promise<Deployment | undefined> {
    return deployment.deploy(this, name, command, options);
  }

  /** The provider's view of a deployment (GetDeployment as the operator). */
  getDeployment(name: string): Promise<Deployment | undefined> {
    return deployment.getDeployment(this, name);
  }

  /**
   * Has the provider delegate exec and read on a slice to the home domain's member, with the
   * experimenter's SSH key; writes {@link memberChainFile}, and ssh_config and known_hosts (see {@link sshAccess}).
   */
  prepareMember(sliceUrn: string): Promise<string[]> {
    return deployment.prepareMember(this, sliceUrn);
  }

  /** Deletes a deployment and its slice, waiting until it is DELETED or `timeoutMs` passed (or `abort` says so). */
  deleteDeployment(name: string, timeoutMs = 30_000, abort?: () => boolean): Promise<boolean> {
    return deployment.deleteDeployment(this, name, timeoutMs, abort);
  }

  /** Removes what a graceful stop may have left on this machine: sliver runtimes of every node, emulab namespaces. Says what it removed. */
  sweepLeftovers(): Promise<string[]> {
    return sweepLeftovers(this.sites, this.driver, this.state.net_block);
  }

  /** Stops every process: the newest first, SIGTERM then SIGKILL after `graceMs`. Reports what had to be killed. */
  async stop(graceMs = 8000): Promise<string[]> {
    this.group.close();
    this.clients.closeAll();
    const killed = await stopInOrder(this.group.processes, graceMs);
    this.group.release();
    const { up: _up, ...rest } = this.state;
    this.state = { ...rest, pids: [] };
    this.saveState();
    return killed;
  }
}
