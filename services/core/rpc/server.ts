/**
 * The server factory every Fedlab service uses: mutual TLS (client
 * certificates must chain to a configured CA), grpc.health.v1, server
 * reflection, one adapter for handlers, and a graceful stop (stop taking
 * calls, drain within a grace period, then force; close the store; remove
 * signal handlers). Returns `{ port, stop }`; binding port 0 picks a free port.
 */
import http2 from 'node:http2';
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { descriptorSetPath } from '../paths.js';
import { boundedDefinition, CallTracker, toGrpcImplementation, type ServiceRegistration } from './adapter.js';
import { bindServer, type ListenerName } from './bind.js';
import { addReflection } from './reflection.js';
import { installHpackTables } from './hpack-table.js';
import type { TransportTrust } from './trust.js';
import type { ServiceMetrics } from '../metrics/service-metrics.js';
import type { CallAudit } from '../audit/call-audit.js';
import { grpcServerOptions, resolveServerLimits, StreamQuota, type ServerLimits } from './server-limits.js';

/** PEM material for mutual TLS. */
export interface TlsMaterial {
  /** CA certificates (one or more PEM blocks) that client (or server) certificates must chain to. */
  readonly caCerts: string;
  /** This principal's certificate (PEM; may be followed by intermediates). */
  readonly cert: string;
  /** This principal's private key (PEM). */
  readonly key: string;
}

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** Address to bind; `127.0.0.1` by default. */
  readonly host?: string;
  /** Port to bind; 0 picks a free one. */
  readonly port: number;
  /** Names this listener in a bind error (default: the `listen` setting). */
  readonly listener?: ListenerName;
  readonly tls: TlsMaterial;
  readonly log: Logger;
  /** How long stop() lets calls in flight finish before cancelling them (ms). Default 10 s. */
  readonly shutdownGraceMs?: number;
  /** Stop on SIGTERM and SIGINT (entry points set this; tests do not). */
  readonly handleSignals?: boolean;
  /** Run after the server has stopped, in order (e.g. close the store). */
  readonly onStop?: readonly (() => Promise<void>)[];
  /** Descriptor set for reflection; the package's own by default. */
  readonly descriptorSetPath?: string;
  /**
   * Client CA trust that follows changes (a domain's own CA plus its peers'); replaces `tls.caCerts`
   * for client verification, and checks that each caller's CA vouches for its URN's domain.
   */
  readonly trust?: TransportTrust;
  /** Message sizes, streams and connection limits; defaults in server-limits.ts. */
  readonly limits?: Partial<ServerLimits>;
  /** Where call counts and latencies go (the host's metrics, when `metrics.listen` is set). */
  readonly metrics?: ServiceMetrics;
  /** The service's audit log, when it keeps one. */
  readonly audit?: CallAudit;
}

/** A running server. */
export interface RunningServer {
  /** The port actually bound. */
  readonly port: number;
  /** Stops gracefully; resolves when everything is closed. Safe to call more than once. */
  stop(): Promise<void>;
  /** Marks every service NOT_SERVING or SERVING in grpc.health.v1. */
  setServing(serving: boolean): void;
}

const DEFAULT_GRACE_MS = 10_000;

/** Starts a gRPC server with the given services. */
export async function startServer(options: ServerOptions, registrations: readonly ServiceRegistration[]): Promise<RunningServer> {
  const log = options.log;
  const limits = resolveServerLimits(options.limits);
  // Credential chains ride in headers: HPACK tables that hold them (hpack-table.ts).
  installHpackTables();
  const server = new Server({
    // Bounded messages and streams; keepalive notices dead peers and keeps idle connections alive across NATs.
    ...grpcServerOptions(limits),
    // Unused here, and its per-call bookkeeping is a tenth of a small call's cost.
    'grpc.enable_channelz': 0,
  });
  const tracker = new CallTracker();
  const streams = new StreamQuota(limits.maxStreamsPerCaller);
  const names = registrations.map((r) => r.name);
  for (const reg of registrations) {
    server.addService(
      boundedDefinition(reg.definition, limits) as unknown as ServiceDefinition,
      toGrpcImplementation(reg, { log, tracker, trust: options.trust, streams, metrics: options.metrics, audit: options.audit }),
    );
  }
  const health = new HealthImplementation(Object.fromEntries([['', 'SERVING'], ...names.map((n) => [n, 'SERVING'])]));
  health.addToServer(server);
  addReflection(server, options.descriptorSetPath ?? descriptorSetPath(), names);

  const credentials =
    options.trust?.serverCredentials() ??
    ServerCredentials.createSsl(
      Buffer.from(options.tls.caCerts),
      [{ private_key: Buffer.from(options.tls.key), cert_chain: Buffer.from(options.tls.cert) }],
      true,
    );
  const host = options.host ?? '127.0.0.1';
  const port = await bindServer(server, host, options.port, credentials, options.listener ?? { setting: 'listen' });
  log.info({ address: `${host}:${port}`, services: names }, 'listening');

  const setServing = (serving: boolean): void => {
    const st = serving ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', st);
    for (const n of names) health.setStatus(n, st);
  };

  let stopping: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'stopping on signal');
    stop().then(
      () => {
        process.exitCode = 0;
      },
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exitCode = 1;
      },
    );
  };
  if (options.handleSignals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      setServing(false);
      const grace = options.shutdownGraceMs ?? DEFAULT_GRACE_MS;
      // Session streams (a node's heartbeats) never end by themselves: without this the stop waits the whole grace.
      tracker.endSessions(new UnavailableError('the server is stopping; reconnect after a short backoff'));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          log.warn({ inFlight: tracker.size }, 'grace period over; cancelling calls in flight');
          tracker.abortAll('server stopping');
          server.forceShutdown();
          destroySessions(server, log);
          resolve();
        }, grace);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      for (const close of options.onStop ?? []) {
        try {
          await close();
        } catch (err) {
          log.error({ err }, 'error while closing');
        }
      }
      log.info('stopped');
    })();
    return stopping;
  };

  return { port, stop, setServing };
}

/**
 * Ends the connections a forced shutdown left open. With channelz off, grpc-js 1.14 keeps a server's
 * HTTP/2 sessions only in its per-listener records, which `tryShutdown` is still waiting on, and
 * `forceShutdown` destroys only the sessions channelz tracks: a client's open connection then goes on
 * reaching this stopped server's handlers (its store closed) — and, with SO_REUSEPORT, even after a
 * new server took the port. The records are internal, so their shape is checked before use.
 */
function destroySessions(server: Server, log: Logger): void {
  const listeners: unknown = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(listeners instanceof Map)) {
    log.warn('cannot reach the HTTP/2 sessions of the stopped server (grpc-js changed); open connections may linger');
    return;
  }
  for (const info of listeners.values() as IterableIterator<{ sessions?: unknown }>) {
    if (!(info?.sessions instanceof Set)) continue;
    for (const session of info.sessions as Set<{ destroy?: (code?: number) => void }>) session.destroy?.(http2.constants.NGHTTP2_CANCEL);
  }
}
