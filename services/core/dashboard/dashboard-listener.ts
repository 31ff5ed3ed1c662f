/**
 * The dashboard's HTTPS listener (`dashboard.listen`): the service's own
 * certificate, client certificates requested and checked against the CAs
 * the gRPC server trusts (kept current as peers change, like the server's),
 * and the Hono application of dashboard-app.ts. TLS lets a browser without
 * a certificate through, so that a one-time link can log it in; every page
 * then refuses anyone who is neither logged in nor an administrator.
 */
import { createServer, type Server } from 'node:https';
import { getRequestListener } from '@hono/node-server';
import type { AuditRecord } from '../audit/audit-chain.js';
import { InvalidArgumentError } from '../errors.js';
import type { PeerRecord } from '../federation/peers.js';
import type { Logger } from '../log.js';
import { listenAddress } from '../rpc/bind.js';
import type { TlsMaterial } from '../rpc/server.js';
import type { TransportTrust } from '../rpc/trust.js';
import { dashboardApp } from './dashboard-app.js';
import { DashboardLogins } from './dashboard-logins.js';
import type { DashboardSource } from './dashboard-source.js';
import { removeLoginLinkFile, writeLoginLinkFile } from './login-link-file.js';
import type { OwnBundleView } from './pages/federation-page.js';

/** The CA set the dashboard's TLS accepts, and how it changes (a service's PeerTrust). */
export interface DashboardTrust extends Pick<TransportTrust, 'checkClient'> {
  caPem(): string;
  onChange(listener: () => void): () => void;
}

/** Options of {@link startDashboardListener}. */
export interface DashboardListenerOptions {
  readonly host: string;
  readonly port: number;
  /** The service's URN (page titles). */
  readonly urn: string;
  /** The service's certificate and key (its CA certificates are not needed: `trust` gives the set). */
  readonly tls: Pick<TlsMaterial, 'cert' | 'key'>;
  readonly trust: DashboardTrust;
  readonly source: DashboardSource;
  readonly ownBundle: () => Promise<OwnBundleView>;
  readonly peers: () => readonly PeerRecord[];
  readonly audit: (limit: number) => Promise<readonly AuditRecord[]>;
  readonly log: Logger;
  readonly now?: () => number;
  /** Where the current one-time login link is written (none: client certificates only). */
  readonly loginLinkFile?: string;
  readonly linkTtlMs: number;
  readonly sessionTtlMs: number;
}

/** A running dashboard. */
export interface DashboardListener {
  readonly port: number;
  /** Its address, e.g. `https://127.0.0.1:8443/`. */
  readonly url: string;
  /** A new one-time login link (valid once, for the link lifetime). */
  loginLink(): string;
  stop(): Promise<void>;
}

/** The host a browser is told to use for a listening address (an unspecified address is reached on localhost). */
function browserHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? 'localhost' : host;
}

/** Starts the dashboard on `host:port` (0: any free port); a taken port is named with its setting. */
export async function startDashboardListener(o: DashboardListenerOptions): Promise<DashboardListener> {
  const now = o.now ?? Date.now;
  const logins = new DashboardLogins({ now, linkTtlMs: o.linkTtlMs, sessionTtlMs: o.sessionTtlMs });
  const stopping = new AbortController();
  let published: string | undefined;
  let url = '';
  let timer: NodeJS.Timeout | undefined;
  const linkOf = (token: string): string => `${url}login?token=${token}`;

  // The link file always holds a link that works: a new one when the last is used or expires.
  const publish = async (): Promise<void> => {
    if (!o.loginLinkFile || stopping.signal.aborted) return;
    clearTimeout(timer);
    published = logins.mintToken();
    await writeLoginLinkFile(o.loginLinkFile, `${linkOf(published)}\n`);
    timer = setTimeout(() => void publish().catch(failed), o.linkTtlMs);
    timer.unref();
  };
  const failed = (err: unknown): void =>
    o.log.error({ err: (err as Error).message, file: o.loginLinkFile }, 'dashboard: cannot write the login link');

  const app = dashboardApp({
    urn: o.urn,
    source: o.source,
    logins,
    trust: o.trust,
    ownBundle: o.ownBundle,
    peers: o.peers,
    audit: o.audit,
    now,
    log: o.log,
    stopping: stopping.signal,
    onRedeemed: (token) => {
      if (token === published) void publish().catch(failed);
    },
  });
  const context = (): { cert: string; key: string; ca: string } => ({ cert: o.tls.cert, key: o.tls.key, ca: o.trust.caPem() });
  const server: Server = createServer(
    { ...context(), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    getRequestListener(app.fetch, { overrideGlobalObjects: false }),
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.maxConnections = 256;
  const unwatch = o.trust.onChange(() => server.setSecureContext(context()));

  const address = listenAddress(o.host, o.port);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    unwatch();
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'EADDRINUSE'
        ? 'the port is in use; choose another in dashboard.listen.port'
        : e.code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges); choose another port'
          : e.code === 'EADDRNOTAVAIL'
            ? 'this host has no such address; check the host'
            : e.message;
    throw new InvalidArgumentError(
      `dashboard.listen: cannot listen on ${address}: ${why}`,
      { setting: 'dashboard.listen', address },
      { cause: err },
    );
  }
  server.on('error', (err) => o.log.error({ err: err.message }, 'dashboard: listener error'));
  server.on('tlsClientError', (err) => o.log.debug({ err: err.message }, 'dashboard: TLS handshake failed'));
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : o.port;
  url = `https://${listenAddress(browserHost(o.host), port)}/`;
  try {
    await publish();
  } catch (err) {
    failed(err);
  }
  o.log.info({ url, loginLinkFile: o.loginLinkFile }, 'dashboard listening');
  return {
    port,
    url,
    loginLink: () => linkOf(logins.mintToken()),
    stop: async () => {
      stopping.abort();
      clearTimeout(timer);
      unwatch();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (o.loginLinkFile) await removeLoginLinkFile(o.loginLinkFile).catch(() => undefined);
    },
  };
}
