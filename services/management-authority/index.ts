/**
 * Building the management authority role for `fedlab serve ma`, from the
 * settings its config compiles to: the MA's key (its TLS key, which also
 * signs its credentials), the site CA for enrolment, the node registry and
 * health monitor, providers, delegations and revocations, the aggregate with
 * its ledger and the node manager client pool; recovery
 * of unfinished intents before the first call; the background tasks; and the
 * enrolment listener. Stopping stops the tasks and the listener, flushes
 * health and closes the channels; the host then closes the store.
 */
import { RevocationStore, revocationSettings } from '../core/credentials/index.js';
import { revocationCaps } from '../core/credentials/revocation-config.js';
import { Periodic } from '../core/periodic.js';
import type { RoleDeps, RoleServices } from '../core/host.js';
import { Access } from './access.js';
import { Aggregate, SliceLedger } from './aggregate/index.js';
import { backgroundTasks } from './background-tasks.js';
import { systemClock, type Clock } from '../core/clock.js';
import { maxConnectionsPerAddressOf } from '../core/rpc/public-listener.js';
import { toMaSettings, type MaConfig } from './config.js';
import { Delegations } from './delegations.js';
import { Enrolment } from './enrolment.js';
import { startEnrolmentListener } from './enrolment-server.js';
import { NodeClients } from './node-clients.js';
import { NodeRegistry } from './node-registry.js';
import { ProviderRegistry } from './providers.js';
import { RevocationRelay } from './revocation-relay.js';
import { OwnRevocationPush } from './own-revocation-push.js';
import { aggregateService, managementAuthorityService } from './service.js';
import { signingKeyOf } from '../core/identity/signing-key.js';
import { registerMaMetrics } from './ma-metrics.js';
import { SiteCa } from './site-ca.js';
import { MaDashboardSource } from './dashboard-source.js';

export { maConfigSchema, MA_PATH_FIELDS, toMaSettings, type MaConfig, type MaSettings } from './config.js';
export { maInstance, maVersion } from './instance.js';

/** How often entries whose credentials expired are dropped from the site's revocation list. */
const REVOCATION_COMPACTION_MS = 10 * 60_000;
/** The built management authority (tests and benchmarks reach its parts through this). */
export interface ManagementAuthority {
  readonly urn: string;
  readonly registry: NodeRegistry;
  readonly aggregate: Aggregate;
  readonly enrolment: Enrolment;
  readonly delegations: Delegations;
  readonly providers: ProviderRegistry;
  /** Port of the enrolment listener. */
  readonly enrolmentPort: number;
  /** What recovery found at start-up. */
  readonly recovery: { readonly settled: number; readonly pending: number };
}

/** Options of {@link managementAuthorityRole}. */
export interface MaRoleOptions {
  readonly clock?: Clock;
  /** Do not start the background timers (tests drive monitor, sweep and flush by hand). */
  readonly manualTimers?: boolean;
  readonly onBuilt?: (ma: ManagementAuthority) => void;
}

/** The management authority role, for `hostService`. */
export function managementAuthorityRole(options: MaRoleOptions = {}): (deps: RoleDeps<MaConfig>) => Promise<RoleServices> {
  return async ({ config, store, tls, log, federation, metrics }) => {
    const clock = options.clock ?? systemClock;
    const settings = toMaSettings(config);
    const { urn, domain, style } = settings;
    const ma = await signingKeyOf(tls, urn, 'this MA');

    const revocations = await RevocationStore.open(store);
    const registry = new NodeRegistry({
      store,
      clock,
      log,
      intervalMs: settings.heartbeat.intervalMs,
      restartGraceMs: settings.heartbeat.restartGraceMs,
      style,
      aggregateUrn: urn,
    });
    await registry.load();
    const access = new Access({ maUrn: urn, maJwk: ma.jwk, admins: settings.admins, revocations, clock });
    const ca = await SiteCa.load(settings.enrolment.ca, domain);
    if (!ca) log.warn('no CA configured (enrolment.ca_dir or enrolment.ca_cert + ca_key): nodes cannot enrol');
    // Nodes certified by an intermediate enrolment CA are this domain's principals.
    else federation.addLocalIssuer(ca.chainPem[0] as string);
    const { tokenTtlS, maxTokenTtlS } = settings.enrolment;
    const heartbeatIntervalMs = settings.heartbeat.intervalMs;
    const enrolment = new Enrolment({
      store,
      clock,
      log,
      registry,
      access,
      ca,
      maUrn: urn,
      maKid: ma.kid,
      domain,
      style,
      tokenTtlS,
      maxTokenTtlS,
      heartbeatIntervalMs,
      revocations,
    });
    const providers = new ProviderRegistry({ store, clock, log, terms: settings.termsOfUse });
    await providers.load();
    // Set once the node clients exist; Revoke sends the grown list to the nodes without waiting.
    let pushOwnList = (): void => undefined;
    // Set once the ledger is loaded: what a revoked MA → SA delegation leaves running here.
    let liveSliversOf = (_sa: string): number => 0;
    const delegations = new Delegations({
      store,
      clock,
      log,
      maUrn: urn,
      maKey: ma.key,
      domain,
      revocations,
      peers: federation,
      caps: revocationCaps(config.revocation),
      ...settings.delegation,
      onRevoked: ({ delegatedTo }) => {
        pushOwnList();
        // Live slivers are left to their expiry (docs/api.md, Revocation freshness): said here, with how many.
        if (delegatedTo)
          log.warn(
            { sa: delegatedTo, liveSlivers: liveSliversOf(delegatedTo) },
            "an MA → SA delegation was revoked: that slice authority's calls here are refused; its live slivers are left to their expiry (Shutdown stops them)",
          );
      },
    });
    const nodes = new NodeClients({ tls, registry, log, clock, ...settings.nodeCalls });
    const ownList = new OwnRevocationPush({
      revocations,
      maKey: ma.key,
      maUrn: urn,
      maKid: ma.kid,
      registry,
      nodes,
      settings: revocationSettings(config.revocation),
      now: () => clock.now(),
      log,
    });
    pushOwnList = () => void ownList.push();
    const ledger = new SliceLedger(store);
    await ledger.load();
    liveSliversOf = (sa) => ledger.authorityUse(sa).slivers;
    const relay = new RevocationRelay(store, () => clock.now());
    await relay.load();
    const aggregate = new Aggregate({
      ledger,
      registry,
      access,
      nodes,
      providers,
      revocations,
      relay,
      clock,
      log,
      maUrn: urn,
      maKid: ma.kid,
      settings: settings.aggregate,
    });

    // A node back UP may hold copies past their next_update: it gets fresh ones at once.
    registry.onHealthChange((change) => {
      if (!change.up) return;
      void ownList.nodeUp(change.nodeUrn);
      void aggregate.relayRevocationsTo(change.nodeUrn);
    });
    // Work the previous process left unfinished is settled before the first call is taken.
    if (metrics) registerMaMetrics(metrics, registry, ledger);
    const recovery = await aggregate.recover();
    await aggregate.probe();

    const tasks = [
      ...backgroundTasks(registry, aggregate, settings.tasks, log),
      new Periodic({ name: 'revocation-push', intervalMs: settings.tasks.intentRetryMs, log }, () => ownList.push().then(() => undefined)),
      // Entries whose credentials expired leave the site's list (at start too).
      new Periodic({ name: 'revocation-compaction', intervalMs: REVOCATION_COMPACTION_MS, log, immediate: true }, () =>
        delegations.compact().then(() => undefined),
      ),
    ];
    if (!options.manualTimers) for (const t of tasks) t.start();

    let listener;
    try {
      listener = await startEnrolmentListener({
        ...settings.enrolment.listen,
        tls,
        log,
        enroll: (req) => enrolment.enroll(req),
        maxConnectionsPerAddress: maxConnectionsPerAddressOf(config.server),
      });
    } catch (err) {
      for (const t of tasks) await t.stop();
      nodes.close();
      throw err;
    }
    const enrolmentListener = listener;
    log.info(
      { style, nodes: registry.size, ...aggregate.stats(), enrolmentPort: enrolmentListener.port, recovered: recovery.settled },
      'management authority ready',
    );
    options.onBuilt?.({
      urn,
      registry,
      aggregate,
      enrolment,
      delegations,
      providers,
      enrolmentPort: enrolmentListener.port,
      recovery,
    });

    const handlerDeps = { access, enrolment, registry, providers, delegations, aggregate, clock, heartbeatIntervalMs };
    return {
      registrations: [managementAuthorityService(handlerDeps), aggregateService(handlerDeps)],
      dashboard: new MaDashboardSource({ urn, domain, style, access, registry, ledger }),
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
