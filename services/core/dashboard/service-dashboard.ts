/**
 * The dashboard of one hosted service, from its config's `dashboard` section:
 * the role's data source, the service's federation trust (TLS and the peers
 * page), its own bundle and its audit log. `hostService` calls this; a role
 * that has no dashboard refuses a config that asks for one.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { CommonConfig } from '../config.js';
import { InvalidArgumentError } from '../errors.js';
import type { BundleSource } from '../federation/bundle-source.js';
import type { PeerTrust } from '../federation/peer-trust.js';
import type { Logger } from '../log.js';
import type { TlsMaterial } from '../rpc/server.js';
import { startDashboardListener, type DashboardListener } from './dashboard-listener.js';
import type { DashboardSource } from './dashboard-source.js';

/** What a service's dashboard is made from. */
export interface ServiceDashboardDeps {
  readonly config: Readonly<CommonConfig>;
  /** The role's data; undefined for roles without a dashboard. */
  readonly source: DashboardSource | undefined;
  readonly tls: TlsMaterial;
  readonly federation: PeerTrust;
  readonly bundle: BundleSource;
  readonly auditLog: AuditLog;
  readonly log: Logger;
}

/** Starts the dashboard when `dashboard.listen` is set (undefined otherwise). */
export async function startServiceDashboard(d: ServiceDashboardDeps): Promise<DashboardListener | undefined> {
  const section = d.config.dashboard;
  if (!section) return undefined;
  if (!d.source) {
    throw new InvalidArgumentError(
      `dashboard.listen is set, but a ${d.config.role} service has no dashboard (management and slice authorities do); remove the dashboard section`,
      { field: 'dashboard' },
    );
  }
  const { auditLog, bundle, federation } = d;
  return startDashboardListener({
    host: section.listen.host,
    port: section.listen.port,
    urn: d.config.urn,
    tls: d.tls,
    trust: federation,
    source: d.source,
    ownBundle: async () => {
      const b = await bundle.current();
      return { domain: b.bundle.domain, fingerprint: b.fingerprint, serial: b.bundle.serial, issuedAt: b.bundle.issued_at };
    },
    peers: () => federation.peers(),
    audit: (limit) => {
      // The latest `limit`: the log lists forward from a sequence number.
      const after = auditLog.position.seq - limit - 1;
      return auditLog.list({ ...(after >= 0 ? { afterSeq: after } : {}), limit });
    },
    log: d.log,
    ...(section.login_link_file ? { loginLinkFile: section.login_link_file } : {}),
    linkTtlMs: section.login_link_ttl_s * 1000,
    sessionTtlMs: section.session_ttl_s * 1000,
  });
}
