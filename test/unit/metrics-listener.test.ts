// The metrics listener: GET /metrics answers the registry's text (built on the service's thread),
// anything else 404, a failed collection 500 (logged), a taken port is named with its setting, and
// the HTTP server is not on the service's thread (its sockets would share gRPC's JIT feedback).
import { createServer, Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../services/core/log.js';
import { startMetricsListener, type MetricsListener } from '../../services/core/metrics/metrics-listener.js';
import { ServiceMetrics } from '../../services/core/metrics/service-metrics.js';
import { parsePrometheusText } from '../helpers/prometheus-text.js';

const listeners: MetricsListener[] = [];
const servers: Server[] = [];

afterEach(async () => {
  for (const l of listeners.splice(0)) await l.stop();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function start(metrics: ServiceMetrics, log = silentLogger()): Promise<MetricsListener> {
  const l = await startMetricsListener({ host: '127.0.0.1', port: 0, metrics, log });
  listeners.push(l);
  return l;
}

/** Handles on this thread that are listening TCP servers. */
function listeningHere(): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h instanceof Server && h.listening).length;
}

describe('metrics listener', () => {
  it('serves the registry text on GET /metrics and nothing else', async () => {
    const metrics = new ServiceMetrics('ma', { processDefaults: false });
    metrics.observeCall('/fedlab.v1.ManagementAuthority/Heartbeat', 'OK', 0.002);
    metrics.gauge('fedlab_test_things', 'Things', ['kind'], () => [[{ kind: 'a' }, 3]]);
    const l = await start(metrics);
    const res = await fetch(`http://127.0.0.1:${l.port}/metrics?x=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.registry.contentType);
    const text = await res.text();
    expect(text).toBe(await metrics.text());
    const m = parsePrometheusText(text);
    expect(m.find('fedlab_rpc_calls_total', { method: '/fedlab.v1.ManagementAuthority/Heartbeat', code: 'OK', role: 'ma' })[0]?.value).toBe(
      1,
    );
    expect(m.find('fedlab_test_things', { kind: 'a' })[0]?.value).toBe(3);
    expect((await fetch(`http://127.0.0.1:${l.port}/other`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${l.port}/metrics`, { method: 'POST' })).status).toBe(404);
  });

  it('answers 500 and logs when collection fails', async () => {
    const metrics = new ServiceMetrics('ma', { processDefaults: false });
    metrics.gauge('fedlab_test_broken', 'Broken', [], () => {
      throw new Error('no state');
    });
    const errors: string[] = [];
    const log = Object.assign(Object.create(silentLogger()) as ReturnType<typeof silentLogger>, {
      error: (_o: unknown, msg: string) => void errors.push(msg),
    });
    const l = await start(metrics, log);
    const res = await fetch(`http://127.0.0.1:${l.port}/metrics`);
    expect(res.status).toBe(500);
    expect(await res.text()).toMatch(/see the service log/);
    expect(errors).toEqual(['metrics collection failed']);
  });

  it('names a taken port with its setting', async () => {
    const taken = createServer();
    servers.push(taken);
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    await expect(
      startMetricsListener({ host: '127.0.0.1', port, metrics: new ServiceMetrics('ma', { processDefaults: false }), log: silentLogger() }),
    ).rejects.toThrow(`metrics.listen 127.0.0.1:${port} is in use; choose another in metrics.listen.port`);
  });

  it('serves from a thread of its own, and stops (twice is fine)', async () => {
    const before = listeningHere();
    const l = await startMetricsListener({
      host: '127.0.0.1',
      port: 0,
      metrics: new ServiceMetrics('ma', { processDefaults: false }),
      log: silentLogger(),
    });
    expect(listeningHere()).toBe(before);
    await l.stop();
    await l.stop();
    await expect(fetch(`http://127.0.0.1:${l.port}/metrics`)).rejects.toThrow();
  });
});
