/**
 * The metrics listener (`metrics.listen`): plain HTTP serving `GET /metrics`
 * in the Prometheus text format and nothing else. Metrics carry no secrets
 * (counts, latencies, states); bind it to an address only your scraper
 * reaches. Off unless configured.
 */
import { createServer, type Server } from 'node:http';
import { FailedPreconditionError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ServiceMetrics } from './service-metrics.js';

/** A running metrics listener. */
export interface MetricsListener {
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts the listener on `host:port` (0 picks a free port); a taken address is named with its setting. */
export async function startMetricsListener(options: {
  readonly host: string;
  readonly port: number;
  readonly metrics: ServiceMetrics;
  readonly log: Logger;
}): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    options.metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': options.metrics.registry.contentType }).end(text),
      (err: unknown) => {
        options.log.error({ err }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed; see the service log\n');
      },
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'is in use' : `cannot be bound (${err.message})`;
      reject(new FailedPreconditionError(`metrics.listen ${options.host}:${options.port} ${why}; choose another in metrics.listen.port`));
    });
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  options.log.info({ address: `${options.host}:${port}` }, 'metrics listening (GET /metrics)');
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
