/**
 * Hosting one Fedlab service process: opens the store, loads TLS and the
 * trust bundle, starts the server with Federation plus the role's own
 * services, and stops them all in order. Entry points call this with a
 * compiled config; tests call it with a config they build.
 */
import { parseUrn } from './identity/urn.js';
import { federationSettings, loadTls, serverLimitsFromConfig, type CommonConfig } from './config.js';
import type { TrustStore } from './credentials/trust-store.js';
import { FileBundleSource, type BundleSource } from './federation/bundle-source.js';
import { startBundleListener, type BundleListener } from './federation/bundle-listener.js';
import { federationService } from './federation/federation-service.js';
import { adminService } from './admin/admin-service.js';
import { PeerTrust } from './federation/peer-trust.js';
import { BundleRefresher } from './federation/refresher.js';
import type { Logger } from './log.js';
import type { ServiceRegistration } from './rpc/adapter.js';
import { maxConnectionsPerAddressOf } from './rpc/public-listener.js';
import { startServer, type TlsMaterial } from './rpc/server.js';
import { Store } from './store/store.js';
import { startMetricsListener, type MetricsListener } from './metrics/metrics-listener.js';
import { ServiceMetrics } from './metrics/service-metrics.js';
import { AuditLog } from './audit/audit-log.js';
import { CallAudit } from './audit/call-audit.js';
import { Periodic } from './periodic.js';
import type { DashboardSource } from './dashboard/dashboard-source.js';
import { startServiceDashboard } from './dashboard/service-dashboard.js';
import type { DashboardListener } from './dashboard/dashboard-listener.js';

/** What a role gets to build its services from. */
export interface RoleDeps<C extends CommonConfig> {
  readonly config: Readonly<C>;
  readonly store: Store;
  readonly tls: TlsMaterial;
  readonly bundle: BundleSource;
  readonly log: Logger;
  /**
   * Trust across domains, kept current from the peers directory: the server already uses it for
   * TLS; pass it as `trust` to `createClient` to dial peered domains' servers.
   */
  readonly federation: PeerTrust;
  /**
   * Credentials trust: this domain's bundle and every peered bundle, each trusted only for its own
   * domain's objects (kept current; the peering policy is the role's to set).
   */
  readonly trustStore: TrustStore;
  /** The service's metrics, when `metrics.listen` is set: roles register their gauges here. */
  readonly metrics?: ServiceMetrics;
}

/** A role's services plus what to do when the process stops. */
export interface RoleServices {
  readonly registrations: readonly ServiceRegistration[];
  /** Runs after the server stopped and before the store closes (stop timers, children...). */
  readonly onStop?: () => Promise<void>;
  /** What the role shows on the dashboard (`dashboard.listen`); absent: the role has none. */
  readonly dashboard?: DashboardSource;
}

/** A running service process. */
export interface HostedService {
  readonly port: number;
  /** Port of the public bundle endpoint, when `federation.bundle_listen` is set. */
  readonly bundlePort?: number;
  /** Port of the metrics listener, when `metrics.listen` is set. */
  readonly metricsPort?: number;
  /** The dashboard, when `dashboard.listen` is set: its port, its address, and new one-time login links. */
  readonly dashboard?: Pick<DashboardListener, 'port' | 'url' | 'loginLink'>;
  readonly store: Store;
  /** The service's federation trust (peers, CA set, credentials TrustStore). */
  readonly federation: PeerTrust;
  stop(): Promise<void>;
}

/** Starts a service: Federation, Admin (store snapshots), health and reflection always; the role's services from `build`. */
export async function hostService<C extends CommonConfig>(
  config: Readonly<C>,
  log: Logger,
  build: (deps: RoleDeps<C>) => Promise<RoleServices> | RoleServices,
  options: { handleSignals?: boolean } = {},
): Promise<HostedService> {
  const domain = parseUrn(config.urn).domain;
  const tls = loadTls(config);
  const bundle = await FileBundleSource.open(config.trust_bundle, domain, log);
  const fed = federationSettings(config);
  const federation = await PeerTrust.open({ domain, tls, bundle, peersDir: fed.peersDir, log, reloadIntervalMs: fed.reloadIntervalMs });
  const refresher = new BundleRefresher({
    peersDir: fed.peersDir,
    log,
    identity: { cert: tls.cert, key: tls.key },
    intervalMs: fed.refreshIntervalS * 1000,
    deadlineMs: fed.refreshDeadlineMs,
    ownDomain: domain,
  });
  const stopFederation = async (): Promise<void> => {
    await refresher.stop();
    await federation.stop();
  };
  const store = await Store.open(config.data_dir, { log });
  const metrics = config.metrics ? new ServiceMetrics(config.role) : undefined;
  const auditLog = await AuditLog.open(store, {
    now: () => Date.now(),
    log,
    retentionMs: (config.audit?.retention_days ?? 90) * 86_400_000,
  });
  // The whole chain is checked once per start, after the service answers (it grows with the log):
  // a broken chain is reported, not fatal — the service must still run, and the operator must know.
  let verifying: Promise<void> = Promise.resolve();
  const auditPrune = new Periodic({ name: 'audit-prune', intervalMs: 3_600_000, log }, async () => void (await auditLog.prune()));
  let role: RoleServices;
  try {
    role = await build({ config, store, tls, bundle, log, federation, trustStore: federation.trustStore, ...(metrics ? { metrics } : {}) });
  } catch (err) {
    await store.close();
    throw err;
  }
  let bundleListener: BundleListener | undefined;
  let metricsListener: MetricsListener | undefined;
  let dashboardListener: DashboardListener | undefined;
  try {
    if (metrics && config.metrics) metricsListener = await startMetricsListener({ ...config.metrics.listen, metrics, log });
    const metricsServer = metricsListener;
    dashboardListener = await startServiceDashboard({ config, source: role.dashboard, tls, federation, bundle, auditLog, log });
    const dashboard = dashboardListener;
    if (fed.bundleListen)
      bundleListener = await startBundleListener({
        host: fed.bundleListen.host,
        port: fed.bundleListen.port,
        tls,
        bundle,
        log,
        maxConnectionsPerAddress: maxConnectionsPerAddressOf(config.server),
      });
    const listener = bundleListener;
    const server = await startServer(
      {
        host: config.listen.host,
        port: config.listen.port,
        listener: { setting: 'listen', hint: 'choose another in listen.port (or with --port)' },
        tls,
        log,
        trust: federation,
        shutdownGraceMs: config.shutdown_grace_ms,
        limits: serverLimitsFromConfig(config.server),
        ...(metrics ? { metrics } : {}),
        audit: new CallAudit(auditLog),
        handleSignals: options.handleSignals ?? false,
        onStop: [
          async () => listener?.stop(),
          async () => metricsServer?.stop(),
          async () => dashboard?.stop(),
          stopFederation,
          async () => role.onStop?.(),
          () => verifying,
          async () => store.close(),
        ],
      },
      [federationService(bundle), adminService({ config, store, tls }), ...role.registrations],
    );
    federation.start();
    refresher.start();
    auditPrune.start();
    verifying = auditLog.verify().then(
      (chain) => {
        if (!chain.ok)
          log.error(
            { record: chain.seq, key: chain.key, why: chain.why },
            'the audit log does not verify; run `fedlab audit verify` with the service stopped',
          );
      },
      // A stop while the walk runs closes the store under it: nothing to report then.
      (err: unknown) => log.warn({ err }, 'the audit log could not be verified'),
    );
    return {
      port: server.port,
      ...(listener ? { bundlePort: listener.port } : {}),
      ...(metricsServer ? { metricsPort: metricsServer.port } : {}),
      ...(dashboard ? { dashboard } : {}),
      store,
      federation,
      stop: server.stop,
    };
  } catch (err) {
    await bundleListener?.stop();
    await metricsListener?.stop();
    await dashboardListener?.stop();
    await stopFederation();
    await role.onStop?.();
    await store.close();
    throw err;
  }
}
