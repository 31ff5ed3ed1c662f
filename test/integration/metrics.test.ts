// Every role's /metrics parses strictly and carries its series: per-RPC counts and latency, process
// metrics, and the role's own gauges (MA: nodes, capacity, committed, slivers, holds; SA: slices by
// state and calls to sites; SP: deployments by state, restarts). A taken metrics port is named.
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, enrolNode, freePort, startSite, until, type Site } from '../helpers/ma-harness.js';
import { parsePrometheusText, type Scrape } from '../helpers/prometheus-text.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';

async function scrape(port: number): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

let fed: SpFederation;
let site: Site;
const ports = { sa: 0, sp: 0, ma: 0, nm: 0 };

beforeAll(async () => {
  ports.sa = await freePort();
  ports.sp = await freePort();
  ports.ma = await freePort();
  ports.nm = await freePort();
  fed = await startSpFederation({
    sites: [{ domain: 'plc.test', nodes: 1 }],
    saConfig: { metrics: { listen: { host: '127.0.0.1', port: ports.sa } } },
    spConfig: { metrics: { listen: { host: '127.0.0.1', port: ports.sp } } },
  });
  site = await startSite({ config: { metrics: { listen: { host: '127.0.0.1', port: ports.ma } } } });
  await enrolNode(site, { name: 'm1', driver: 'simulated', config: { metrics: { listen: { host: '127.0.0.1', port: ports.nm } } } });
}, 120_000);

afterAll(async () => {
  await site?.stop();
  await fed?.destroy();
  await disposeParties();
});

describe('metrics', () => {
  it('the slice authority: RPC counts, latency histogram, process metrics, slices by state, calls to sites', async () => {
    const sa = fed.saClient();
    await sa.listSlices({ pageSize: 10, pageToken: '', state: 0 });
    await sa.createSlice({
      users: [],
      requestId: 'metrics-1',
      name: 'metrics',
      description: '',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest('plc.test', { count: 1 })],
      start: false,
      wait: true,
    } as never);
    const m = await scrape(ports.sa);
    expect(
      m.find('fedlab_rpc_calls_total', { method: '/fedlab.v1.SliceAuthority/ListSlices', code: 'OK', role: 'sa' })[0]?.value,
    ).toBeGreaterThanOrEqual(1);
    expect(m.types.get('fedlab_rpc_duration_seconds')).toBe('histogram');
    expect(m.find('fedlab_rpc_duration_seconds_count', { method: '/fedlab.v1.SliceAuthority/CreateSlice' })[0]?.value).toBe(1);
    expect(m.find('fedlab_sa_slices', { state: 'ready' })[0]?.value).toBe(1);
    expect(m.find('fedlab_sa_site_calls_total', { site: 'plc.test', method: 'Allocate', code: 'OK' })[0]?.value).toBeGreaterThanOrEqual(1);
    expect(m.find('fedlab_process_cpu_seconds_total').length).toBe(1);
  });

  it('the service provider: deployments by state and restarts', async () => {
    const m = await scrape(ports.sp);
    expect(m.find('fedlab_sp_deployments', { state: 'ready' })).toHaveLength(1);
    expect(m.find('fedlab_sp_service_restarts', { state: 'ready' })).toHaveLength(1);
    expect(m.find('fedlab_nodejs_heap_size_used_bytes').length).toBe(1);
  });

  it('the management authority: nodes by health, capacity and committed resources, slivers, holds', async () => {
    const m = await scrape(ports.ma);
    await until(async () => (await scrape(ports.ma)).find('fedlab_ma_nodes', { health: 'up' })[0]?.value === 1, 10_000, 'the node UP');
    expect(m.find('fedlab_ma_nodes', { health: 'down' })[0]?.value).toBe(0);
    expect(m.find('fedlab_ma_capacity', { resource: 'mem_mb' })).toHaveLength(1);
    expect(m.find('fedlab_ma_committed', { resource: 'cpu_millis' })).toHaveLength(1);
    expect(m.find('fedlab_ma_slivers', { allocation: 'provisioned' })).toHaveLength(1);
    expect(m.find('fedlab_ma_holds')[0]?.value).toBe(0);
    // Heartbeats, unary or on a stream (node managers beat on HeartbeatStream), counted; no URN is a label anywhere.
    const after = await scrape(ports.ma);
    expect(after.types.get('fedlab_ma_heartbeats_total')).toBe('counter');
    expect(after.find('fedlab_ma_heartbeats_total')[0]?.value).toBeGreaterThan(0);
    for (const s of m.samples) for (const v of Object.values(s.labels)) expect(v).not.toMatch(/^urn:fedlab:/);
  });

  it('the node manager: slivers by state, capacity and committed resources', async () => {
    const m = await scrape(ports.nm);
    expect(m.find('fedlab_nm_slivers', { state: 'ready', role: 'nm' })[0]?.value).toBe(0);
    expect(m.find('fedlab_nm_capacity', { resource: 'slivers' })[0]?.value).toBeGreaterThan(0);
    expect(m.find('fedlab_nm_committed', { resource: 'mem_mb' })[0]?.value).toBe(0);
    expect(m.types.get('fedlab_nm_sliver_cpu_seconds')).toBe('gauge');
  });

  it('serves only GET /metrics, and a taken metrics port stops start-up naming the setting', async () => {
    expect((await fetch(`http://127.0.0.1:${ports.ma}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${ports.ma}/metrics`, { method: 'POST' })).status).toBe(404);
    await expect(startSite({ config: { metrics: { listen: { host: '127.0.0.1', port: ports.ma } } } })).rejects.toThrow(
      /metrics\.listen 127\.0\.0\.1:\d+ is in use/,
    );
  });

  it('the strict reader refuses a malformed exposition', () => {
    expect(() => parsePrometheusText('# TYPE a counter\na{b="c} 1\n')).toThrow(/unterminated/);
    expect(() => parsePrometheusText('x 1\n')).toThrow(/no TYPE/);
    expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n')).toThrow(/do not grow/);
  });
});
