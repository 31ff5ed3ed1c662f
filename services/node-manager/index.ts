/**
 * Building the node manager role for `fedlab serve nm`: the owner's trust
 * anchor, the driver, capacity, the sliver manager (loaded and reconciled with
 * what really runs before the first call is taken), the reaper, the disk quota
 * check and the heartbeat client. Stopping the service stops the timers only:
 * slivers keep running and the next start adopts them.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { parseCredential, RevocationStore, revocationSettings } from '../core/credentials/index.js';
import { FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { identityFromCertificate, parseCertificate } from '../core/identity/certificate.js';
import type { RoleDeps, RoleServices } from '../core/host.js';
import type { Logger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import { CredentialAuthorizer } from './authorizer.js';
import { measureMachine, resolveCapacity } from './capacity.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { NmConfig } from './config.js';
import type { SliverDriver } from './drivers/driver.js';
import { createDriver, type DriverOptions } from './drivers/select.js';
import { HeartbeatClient } from './heartbeat.js';
import { NodeManager } from './node-manager.js';
import { Periodic } from '../core/periodic.js';
import { OwnerPolicy } from './policy.js';
import { nodeManagerService } from './service.js';
import { SliverManager } from './sliver-manager.js';
import { registerNmMetrics } from './nm-metrics.js';
import { loadOrCreateHostKey } from './ssh/host-key.js';
import { SshServer } from './ssh/server.js';
import { sshSettings } from './ssh/settings.js';
import { checkSliverIds, readHostIdFiles } from './runtime/host-ids.js';
import { restoreSliverNetwork, underlayAddressOf, withSliverNetwork } from './network/network-setup.js';
import { enableLinks } from './network/links.js';
import type { IdRangeSettings } from './runtime/id-ranges.js';

export { nmConfigSchema, NM_PATH_FIELDS, type NmConfig } from './config.js';

/** Options of {@link nodeManagerRole} (tests and benchmarks pass their own clock or driver). */
export interface NodeManagerRoleOptions {
  readonly clock?: Clock;
  /** Use this driver instead of the configured one. */
  readonly driver?: SliverDriver;
  /** Called with the domain object once it is built (tests reach the manager through it). */
  readonly onBuilt?: (nm: NodeManager) => void;
}

/** The instance id of a node manager: a hash of its data directory, naming its cgroups and marking its processes. */
export function instanceId(dataDir: string): string {
  let dir = dataDir;
  try {
    dir = realpathSync(dataDir);
  } catch {
    // Not created yet: the configured path is as good a name.
  }
  return `nm-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`;
}

/** The driver options a node manager's config gives (without the logger): also for tools that clean up after one. */
export function driverOptions(config: NmConfig): Omit<DriverOptions, 'log'> {
  const c = config.container;
  return {
    kind: config.driver,
    workRoot: join(config.data_dir, 'slivers'),
    instance: instanceId(config.data_dir),
    ...(c.runc ? { runc: c.runc } : {}),
    umoci: c.umoci,
    init: c.init,
    ...(config.images_dir ? { imagesDir: config.images_dir } : {}),
    rlimits: { nofileSoft: c.nofile_soft, nofileHard: c.nofile_hard },
    startTimeoutMs: c.start_timeout_ms,
  };
}

/** The node manager's software version. */
export function nmVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Whether this host can add delay and loss to links (the netem qdisc is loaded or installable). */
export function netemAvailable(): boolean {
  if (existsSync('/sys/module/sch_netem')) return true;
  const dir = `/lib/modules/${release()}/kernel/net/sched`;
  return ['sch_netem.ko', 'sch_netem.ko.xz', 'sch_netem.ko.zst', 'sch_netem.ko.gz'].some((f) => existsSync(join(dir, f)));
}

async function loadOwner(config: NmConfig): Promise<{ urn: string; jwk: Record<string, unknown> }> {
  let pem: string;
  try {
    pem = readFileSync(config.owner.certificate, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(
      `owner.certificate: cannot read ${config.owner.certificate}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const id = await identityFromCertificate(parseCertificate(pem, 'owner.certificate'));
  if (id.parsedUrn.kind !== 'owner')
    throw new InvalidArgumentError(`owner.certificate names ${id.urn}, which is not an owner (urn:fedlab:<domain>:owner:<name>)`);
  return { urn: id.urn, jwk: id.jwk as Record<string, unknown> };
}

/** Reads the owner → MA chain file, checking it is rooted at the owner (kept for enrolment with the management authority). */
function loadOwnerCredential(file: string, ownerUrn: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(
      `owner.credential: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const chain = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (chain.length === 0) throw new InvalidArgumentError(`owner.credential: ${file} holds no credential`);
  const root = parseCredential(chain[0] as string, 0);
  if (root.claims.iss !== ownerUrn)
    throw new InvalidArgumentError(`owner.credential: the chain's root is issued by ${root.claims.iss}, not by the owner ${ownerUrn}`);
  return chain;
}

/**
 * Refuses to start on id ranges that host accounts or other users' subuid
 * ranges use; stops (FAILED, with the reason) a sliver that shares ids with
 * an older one; says which slivers keep a range made under another uid_base.
 */
async function checkIdRanges(slivers: SliverManager, settings: IdRangeSettings, allowHostIds: boolean, log: Logger): Promise<void> {
  const records = slivers.list().flatMap((r) => (r.ids ? [{ name: r.name, ids: r.ids, createdAt: r.createdAt, urn: r.urn }] : []));
  const check = checkSliverIds({ settings, records, files: readHostIdFiles(), allowHostIds });
  if (check.errors.length) throw new FailedPreconditionError(check.errors.join('; '));
  if (check.moved.length)
    log.warn(
      { slivers: check.moved },
      'slivers keep id ranges made under another container.uid_base; new slivers are given ranges that overlap none of them',
    );
  for (const s of check.shared) {
    const rec = records.find((r) => r.name === s.name);
    if (!rec) continue;
    log.error({ sliver: rec.urn, reason: s.reason }, 'sliver shares user ids with another; it is stopped and FAILED');
    await slivers.refuseToRun(rec.urn, s.reason);
  }
}

/** The node manager role, for `hostService`. */
export function nodeManagerRole(options: NodeManagerRoleOptions = {}): (deps: RoleDeps<NmConfig>) => Promise<RoleServices> {
  return async ({ config, store, tls, log, metrics }) => {
    const clock = options.clock ?? systemClock;
    const owner = await loadOwner(config);
    // The node keeps its owner's side of the arrangement: the policy in force and the owner → MA chain (for enrolment).
    const ownerTable = store.table<unknown>('owner');
    await ownerTable.put('policy', { owner: owner.urn, policy: config.policy, at: new Date(clock.now()).toISOString() }, { sync: true });
    if (config.owner.credential)
      await ownerTable.put('owner-credential', loadOwnerCredential(config.owner.credential, owner.urn), { sync: true });
    const instance = instanceId(config.data_dir);
    const driver = await withSliverNetwork(
      options.driver ?? createDriver({ ...driverOptions(config), log }),
      config.network,
      instance,
      log,
    );
    await driver.init();
    if (driver.kind === 'process' && process.getuid?.() === 0) {
      log.warn('the process driver runs sliver programs as root with no isolation; use the container driver on this machine');
    }
    const capacity = resolveCapacity(config.capacity, measureMachine(config.data_dir));
    if (driver.kind === 'container' && !config.container.net_namespace)
      log.warn('container.net_namespace false is ignored: every container sliver has its own network namespace');
    const idRanges = { base: config.container.uid_base, count: config.container.id_ranges };
    const slivers = new SliverManager({ store, driver, clock, log, capacity, exclusiveNode: config.exclusive, idRanges });
    await slivers.load();
    await enableLinks(driver, slivers, config.management_authority?.urn ?? config.urn, log);
    if (driver.kind === 'container') await checkIdRanges(slivers, idRanges, config.container.allow_host_ids, log);
    if (metrics) registerNmMetrics(metrics, slivers);
    const report = await slivers.reconcile();
    await restoreSliverNetwork(driver, slivers.list(), log);
    log.info({ driver: driver.kind, isolation: driver.description, instance, capacity, ...countsOf(report) }, 'node manager ready');
    if (report.failed.length)
      log.warn({ failed: report.failed }, 'slivers that should run could not be restarted; they are FAILED with the reason');

    // The SSH endpoint listens before the node describes itself: its address (port 0) is known only then.
    const ssh = sshSettings(config);
    const sshServer = ssh
      ? new SshServer({ settings: ssh, hostKey: loadOrCreateHostKey(ssh.hostKeyFile), slivers, clock, log })
      : undefined;
    await sshServer?.listen();

    // Past a held list's next_update + grace its issuer's chains are refused (docs/api.md, Revocation freshness).
    const revocations = await RevocationStore.open(store, { graceS: revocationSettings(config.revocation).graceS });
    const authorizer = new CredentialAuthorizer({ nodeUrn: config.urn, owner, revocations, clock });
    const nm = new NodeManager({
      identity: {
        nodeUrn: config.urn,
        ownerUrn: owner.urn,
        aggregateUrn: config.management_authority?.urn ?? '',
        style: config.style,
        exclusive: config.exclusive,
        endpoint: config.endpoint ?? `${config.listen.host}:${config.listen.port}`,
        version: nmVersion(),
        netemAvailable: netemAvailable(),
        ...(sshServer ? { ssh: sshServer.endpoint() } : {}),
      },
      slivers,
      authorizer,
      revocations,
      policy: new OwnerPolicy(config.policy),
      defaults: {
        cpuMillis: config.defaults.cpu_millis,
        memMb: config.defaults.mem_mb,
        diskMb: config.defaults.disk_mb,
        pids: config.defaults.pids,
        lifetimeS: config.defaults.lifetime_s,
        holdS: config.defaults.hold_s,
      },
      exec: {
        defaultTimeoutMs: config.exec.default_timeout_ms,
        maxTimeoutMs: config.exec.max_timeout_ms,
        maxOutputBytes: config.exec.max_output_bytes,
      },
      clock,
    });

    const tasks = [
      // The reaper also looks after liveness: a sliver whose keeper died is restarted (or FAILED with the reason).
      new Periodic({ name: 'reaper', intervalMs: config.reaper_interval_ms, log }, async () => {
        await slivers.reapExpired();
        await slivers.checkLiveness();
      }),
      new Periodic({ name: 'disk-quota', intervalMs: config.disk_check_interval_ms, log }, async () => {
        await slivers.checkDiskQuotas();
      }),
    ];
    for (const t of tasks) t.start();
    const ma = config.management_authority;
    const heartbeat =
      ma?.address !== undefined
        ? new HeartbeatClient({
            address: ma.address,
            authorityUrn: ma.urn,
            tls,
            intervalMs: config.heartbeat_interval_ms,
            deadlineMs: config.heartbeat_deadline_ms,
            nm,
            clock,
            log,
            ...(underlayAddressOf(driver) ? { underlayAddress: underlayAddressOf(driver) as string } : {}),
          })
        : undefined;
    heartbeat?.start();
    options.onBuilt?.(nm);

    return {
      registrations: [nodeManagerService(nm)],
      onStop: async () => {
        await sshServer?.close();
        await heartbeat?.stop();
        for (const t of tasks) await t.stop();
        // Slivers outlive a stop (the next start adopts them); the driver's own empty directories do not.
        await driver.releaseIdle();
      },
    };
  };
}

function countsOf(r: Awaited<ReturnType<SliverManager['reconcile']>>): Record<string, number> {
  return {
    adopted: r.adopted.length,
    restarted: r.restarted.length,
    failed: r.failed.length,
    reaped: r.reaped.length,
    orphansRemoved: r.orphans.length,
  };
}

/** The node manager role with the system clock and the configured driver. */
export const buildNodeManager = nodeManagerRole();
