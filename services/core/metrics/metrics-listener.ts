/**
 * The metrics listener (`metrics.listen`): plain HTTP serving `GET /metrics`
 * in the Prometheus text format and nothing else. Metrics carry no secrets
 * (counts, latencies, states); bind it to an address only your scraper
 * reaches. Off unless configured.
 *
 * The HTTP server runs on a worker thread (metrics-http-worker.ts says why);
 * the text is built here, from the service's registry, at each scrape.
 */
import { Worker } from 'node:worker_threads';
import { FailedPreconditionError } from '../errors.js';
import type { Logger } from '../log.js';
import { METRICS_HTTP_WORKER_SOURCE } from './metrics-http-worker.js';
import type { ServiceMetrics } from './service-metrics.js';

/** A running metrics listener. */
export interface MetricsListener {
  readonly port: number;
  stop(): Promise<void>;
}

/** What the HTTP thread says. */
type FromWorker =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'bind-failed'; readonly code?: string; readonly message: string }
  | { readonly type: 'scrape'; readonly id: number }
  | { readonly type: 'stopped' };

/** Starts the listener on `host:port` (0 picks a free port); a taken address is named with its setting. */
export async function startMetricsListener(options: {
  readonly host: string;
  readonly port: number;
  readonly metrics: ServiceMetrics;
  readonly log: Logger;
}): Promise<MetricsListener> {
  const { host, metrics, log } = options;
  const worker = new Worker(METRICS_HTTP_WORKER_SOURCE, {
    eval: true,
    // The thread needs nothing of the service's loaders or flags (tsx, profilers).
    execArgv: [],
    workerData: { host, port: options.port, contentType: metrics.registry.contentType },
  });
  let stopped: (() => void) | undefined;
  let exited = false;
  worker.once('exit', () => {
    exited = true;
    stopped?.();
  });
  worker.on('message', (m: FromWorker) => {
    if (m.type === 'scrape') {
      metrics.text().then(
        (body) => worker.postMessage({ type: 'text', id: m.id, body }),
        (err: unknown) => {
          log.error({ err }, 'metrics collection failed');
          worker.postMessage({ type: 'failed', id: m.id });
        },
      );
    } else if (m.type === 'stopped') stopped?.();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const failed = (err: Error) =>
      reject(new FailedPreconditionError(`metrics.listen ${host}:${options.port} cannot be served (${err.message})`));
    worker.once('error', failed);
    const first = (m: FromWorker) => {
      if (m.type !== 'listening' && m.type !== 'bind-failed') return;
      worker.off('message', first);
      worker.off('error', failed);
      if (m.type === 'listening') {
        resolve(m.port);
        return;
      }
      const why = m.code === 'EADDRINUSE' ? 'is in use' : `cannot be bound (${m.message})`;
      reject(new FailedPreconditionError(`metrics.listen ${host}:${options.port} ${why}; choose another in metrics.listen.port`));
    };
    worker.on('message', first);
  }).catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });
  worker.on('error', (err) => log.error({ err }, 'the metrics listener thread failed; /metrics is not served'));
  log.info({ address: `${host}:${port}` }, 'metrics listening (GET /metrics)');
  let stopping: Promise<void> | undefined;
  return {
    port,
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        stopped = resolve;
        // A thread that already ended has nothing to close.
        if (exited) resolve();
        else worker.postMessage({ type: 'stop' });
      }).then(async () => {
        await worker.terminate();
      })),
  };
}
