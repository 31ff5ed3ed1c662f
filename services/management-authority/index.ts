/**
 * Building the management authority role for `fedlab serve ma`: the MA's key
 * (its TLS key, which also signs its credentials), the site CA for enrolment,
 * the node registry and health monitor, providers, delegations and
 * revocations, the aggregate with its books, the node manager client pool and
 * the emulab link lab; recovery of unfinished intents before the first call;
 * the background tasks (monitor, health flush, hold sweeper, intent retries);
 * and the enrolment listener. Stopping stops the tasks and the listener,
 * flushes health and closes the channels; the host then closes the store.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { RevocationStore, thumbprintOf, toPublicJwk } from '../core/credentials/index.js';
import { RevocationRelay } from './revocation-relay.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { RoleDeps, RoleServices } from '../core/host.js';
import { identityFromCertificate, parseCertificate } from '../core/identity/certificate.js';
import { parsePrivateKeyPem } from '../core/identity/keys.js';
import { parseUrn } from '../core/identity/urn.js';
import { packageRoot } from '../core/paths.js';
import { Access } from './access.js';
import { Aggregate, SliceLedger } from './aggregate/index.js';
import { systemClock, type Clock } from './clock.js';
import type { MaConfig } from './config.js';
import { Delegations } from './delegations.js';
import { Enrolment } from './enrolment.js';
import { startEnrolmentListener } from './enrolment-server.js';
import { NetLab, type CommandRunner } from './netlab.js';
import { NodeClients } from './node-clients.js';
import { NodeRegistry } from './node-registry.js';
import { Periodic } from '../core/periodic.js';
import { ProviderRegistry } from './providers.js';
import { aggregateService, managementAuthorityService } from './service.js';
import { SiteCa } from './site-ca.js';

export { maConfigSchema, MA_PATH_FIELDS, type MaConfig } from './config.js';

/** The built management authority (tests and benchmarks reach its parts through this). */
export interface ManagementAuthority {
  readonly urn: string;
  readonly registry: NodeRegistry;
  readonly aggregate: Aggregate;
  readonly enrolment: Enrolment;
  readonly delegations: Delegations;
  readonly providers: ProviderRegistry;
  readonly netlab: NetLab;
  /** Port of the enrolment listener. */
  readonly enrolmentPort: number;
  /** What recovery found at start-up. */
  readonly recovery: { readonly settled: number; readonly pending: number; readonly orphans: readonly string[] };
}

/** Options of {@link managementAuthorityRole}. */
export interface MaRoleOptions {
  readonly clock?: Clock;
  /** Runs `ip` and `tc` (tests may record instead). */
  readonly runner?: CommandRunner;
  /** Do not start the background timers (tests drive monitor, sweep and flush by hand). */
  readonly manualTimers?: boolean;
  readonly onBuilt?: (ma: ManagementAuthority) => void;
}

/** The management authority's software version. */
export function maVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** A short id of this MA instance (from its data directory): part of the names of the namespaces it makes. */
export function maInstance(dataDir: string): string {
  let dir = dataDir;
  try {
    dir = realpathSync(dataDir);
  } catch {
    // Not created yet: the configured path will do.
  }
  return createHash('sha256').update(dir).digest('hex').slice(0, 4);
}

/** The management authority role, for `hostService`. */
export function managementAuthorityRole(options: MaRoleOptions = {}): (deps: RoleDeps<MaConfig>) => Promise<RoleServices> {
  return async ({ config, store, tls, log, federation }) => {
    const clock = options.clock ?? systemClock;
    const domain = parseUrn(config.urn).domain;
    // The MA signs with the key of its TLS certificate, which must name it.
    const maKey = parsePrivateKeyPem(tls.key, 'tls.key');
    const self = await identityFromCertificate(parseCertificate(tls.cert, 'tls.cert'));
    if (self.urn !== config.urn) throw new InvalidArgumentError(`tls.cert names ${self.urn}, but this MA is ${config.urn}`);
    if (!createPublicKey(maKey).equals(self.certificate.publicKey)) throw new InvalidArgumentError('tls.key is not the key of tls.cert');
    const maJwk = toPublicJwk(maKey);
    const maKid = thumbprintOf(maJwk);

    const revocations = await RevocationStore.open(store);
    const registry = new NodeRegistry({ store, clock, log, intervalMs: config.heartbeat.interval_ms, style: config.style, aggregateUrn: config.urn });
    await registry.load();
    const access = new Access({ maUrn: config.urn, maJwk, admins: config.admins, revocations, clock });
    const ca = await SiteCa.load(config, domain);
    if (!ca) log.warn('no CA configured (enrolment.ca_dir or enrolment.ca_cert + ca_key): nodes cannot enrol');
    // Nodes certified by an intermediate enrolment CA are this domain's principals.
    else federation.addLocalIssuer(ca.chainPem[0] as string);
    const enrolment = new Enrolment({
      store,
      clock,
      log,
      registry,
      access,
      ca,
      maUrn: config.urn,
      maKid,
      domain,
      style: config.style,
      tokenTtlS: config.enrolment.token_ttl_s,
      maxTokenTtlS: config.enrolment.max_token_ttl_s,
      heartbeatIntervalMs: config.heartbeat.interval_ms,
      revocations,
    });
    const providers = new ProviderRegistry({ store, clock, log, terms: config.policy.terms_of_use });
    await providers.load();
    const delegations = new Delegations({
      store,
      clock,
      log,
      maUrn: config.urn,
      maKey,
      domain,
      defaultTtlS: config.delegation_ttl_s,
      maxTtlS: config.max_delegation_ttl_s,
      revocations,
      policy: { allowOwnDomain: config.delegation_policy.allow_own_domain, allow: config.delegation_policy.allow },
      peers: federation,
    });
    const netlab = new NetLab({ instance: maInstance(config.data_dir), log, ...(options.runner ? { runner: options.runner } : {}) });
    const nodes = new NodeClients({
      tls,
      registry,
      log,
      deadlineMs: config.node_calls.deadline_ms,
      concurrency: config.node_calls.concurrency,
      maxChannels: config.node_calls.max_channels,
    });
    const ledger = new SliceLedger(store);
    await ledger.load();
    const relay = new RevocationRelay(store);
    await relay.load();
    const aggregate = new Aggregate({
      ledger,
      registry,
      access,
      nodes,
      providers,
      netlab,
      revocations,
      relay,
      clock,
      log,
      maUrn: config.urn,
      maKid,
      settings: {
        style: config.style,
        holdS: config.allocation_hold_s,
        defaultLifetimeS: config.default_sliver_lifetime_s,
        maxLifetimeS: config.max_sliver_lifetime_s,
        defaults: { cpuMillis: config.defaults.cpu_millis, memMb: config.defaults.mem_mb, diskMb: config.defaults.disk_mb, pids: config.defaults.pids },
        maxLinkKbps: config.emulab.max_link_kbps,
        requireRegisteredProviders: config.policy.require_registered_providers,
        terms: config.policy.terms_of_use,
        softwareVersion: maVersion(),
      },
    });

    // Work the previous process left unfinished is settled before the first call is taken.
    const recovery = await aggregate.recover();
    await aggregate.probe();

    const interval = config.heartbeat.interval_ms;
    const tasks = [
      new Periodic({ name: 'health-monitor', intervalMs: Math.max(10, Math.floor(interval / 4)), log }, () => {
        registry.check();
      }),
      new Periodic({ name: 'health-flush', intervalMs: config.heartbeat.flush_interval_ms, log }, async () => {
        await registry.flush();
      }),
      new Periodic({ name: 'hold-sweeper', intervalMs: config.sweep_interval_ms, log }, async () => {
        await aggregate.sweep();
      }),
      new Periodic({ name: 'intent-retry', intervalMs: config.intent_retry_interval_ms, log }, () => aggregate.retryIntents()),
    ];
    if (!options.manualTimers) for (const t of tasks) t.start();

    let listener;
    try {
      listener = await startEnrolmentListener({
        host: config.enrolment.listen.host,
        port: config.enrolment.listen.port,
        tls,
        log,
        enroll: (req) => enrolment.enroll(req),
      });
    } catch (err) {
      for (const t of tasks) await t.stop();
      nodes.close();
      throw err;
    }
    const enrolmentListener = listener;
    log.info({ style: config.style, nodes: registry.size, ...aggregate.stats(), enrolmentPort: enrolmentListener.port, recovered: recovery.settled }, 'management authority ready');
    options.onBuilt?.({ urn: config.urn, registry, aggregate, enrolment, delegations, providers, netlab, enrolmentPort: enrolmentListener.port, recovery });

    const domainObjects = { access, enrolment, registry, providers, delegations, aggregate, clock, heartbeatIntervalMs: interval };
    return {
      registrations: [managementAuthorityService(domainObjects), aggregateService(domainObjects)],
      onStop: async () => {
        await enrolmentListener.stop();
        for (const t of tasks) await t.stop();
        await registry.flush().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not write node health at stop'));
        nodes.close();
      },
    };
  };
}

/** The management authority role with the system clock. */
export const buildManagementAuthority = managementAuthorityRole();
