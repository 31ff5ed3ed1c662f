// `fedlab slice` pieces that need no server: reading --site specs, and rendering slices and failures.
import { describe, expect, it } from 'vitest';
import { parseRequestSpec, parseSiteSpec } from '../../cli/commands/slice/request-specs.js';
import { failureLines, sliceDetail, sliceTable } from '../../cli/commands/slice/slice-view.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { AllocationState, OperationalState, SiteStyle, SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceState, type Slice } from '../../services/generated/fedlab/v1/slice_authority.js';

const slice: Slice = {
  users: [],
  urn: 'urn:fedlab:plc.test:slice:web',
  providerUrn: 'urn:fedlab:plc.test:sp:acme',
  description: '',
  mode: SliceMode.SLICE_MODE_BEST_EFFORT,
  state: SliceState.SLICE_STATE_PARTIAL,
  sites: [
    {
      site: 'plc.test',
      aggregateUrn: 'urn:fedlab:plc.test:authority:ma',
      style: SiteStyle.SITE_STYLE_PLANETLAB,
      status: { code: 0, reason: '' },
      manifestDocument: '',
      swappedOut: false,
      expiresAt: new Date('2026-12-01T00:00:00Z'),
    },
    {
      site: 'emu.test',
      aggregateUrn: 'urn:fedlab:emu.test:authority:ma',
      style: SiteStyle.SITE_STYLE_EMULAB,
      status: { code: 14, reason: 'site emu.test: unreachable' },
      manifestDocument: '',
      swappedOut: false,
    },
  ],
  slivers: [
    {
      urn: 'urn:fedlab:plc.test:sliver:a',
      sliceUrn: 'urn:fedlab:plc.test:slice:web',
      nodeUrn: 'urn:fedlab:plc.test:node:n1',
      aggregateUrn: '',
      clientId: '0',
      allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
      operationalState: OperationalState.OPERATIONAL_STATE_READY,
      isolation: 0,
      exclusive: false,
      interfaces: [],
      error: '',
      sliceAuthorityUrn: '',
      providerUrn: '',
      workDir: '',
    },
  ],
  createdAt: new Date('2026-11-25T00:00:00Z'),
  updatedAt: new Date('2026-11-25T00:00:00Z'),
  expiresAt: new Date('2026-12-01T00:00:00Z'),
  requestId: 'r1',
};

describe('fedlab slice helpers', () => {
  it('reads --site DOMAIN=COUNT and DOMAIN=NODE,NODE, refusing anything else', () => {
    expect(parseSiteSpec('plc.test=3')).toEqual({ site: 'plc.test', count: 3, nodeUrns: [] });
    expect(parseSiteSpec('plc.test=n1,urn:fedlab:plc.test:node:n2')).toEqual({
      site: 'plc.test',
      count: 0,
      nodeUrns: ['urn:fedlab:plc.test:node:n1', 'urn:fedlab:plc.test:node:n2'],
    });
    for (const bad of ['plc.test', 'plc.test=0', 'PLC=1', 'plc.test=urn:fedlab:pg.test:node:n1', 'plc.test=Bad Name'])
      expect(() => parseSiteSpec(bad)).toThrow(InvalidArgumentError);
  });

  it('renders slices, and says what failed per site and node', () => {
    expect(sliceTable([slice])).toMatch(/urn:fedlab:plc\.test:slice:web\s+PARTIAL\s+plc\.test,emu\.test!\s+1\/1\s+2026-12-01T00:00:00Z/);
    const detail = sliceDetail(slice);
    expect(detail).toMatch(/mode\s+best effort/);
    expect(detail).toMatch(/emu\.test\s+emulab\s+UNAVAILABLE\s+-\s+site emu\.test: unreachable/);
    expect(detail).toMatch(/urn:fedlab:plc\.test:sliver:a\s+urn:fedlab:plc\.test:node:n1\s+provisioned\s+ready/);
    expect(failureLines(slice)).toEqual(['site emu.test: UNAVAILABLE: site emu.test: unreachable']);
  });

  it('reads --request DOMAIN=FILE: the API JSON with links, or a request document; refuses typos and files it cannot use', () => {
    const files: Record<string, string> = {
      'topo.json': JSON.stringify({
        nodes: { count: 2, client_ids: ['a', 'b'] },
        resources: { cpu_millis: 100 },
        links: [{ name: 'lan0', endpoints: ['a', 'b'], bandwidth_kbps: 1000 }],
        exclusive: true,
      }),
      'rspec.json': JSON.stringify({ type: 'request', nodes: [{ client_id: 'web' }, { client_id: 'db' }] }),
      'typo.json': JSON.stringify({ nodes: { count: 1 }, links: [{ name: 'l', endpoints: ['a', 'b'], bandwith_kbps: 5 }] }),
      'top-typo.json': JSON.stringify({ node: { count: 1 } }),
      'no-nodes.json': JSON.stringify({ resources: { mem_mb: 64 } }),
      'bad.json': '{ nodes: ',
    };
    const read = (f: string): string => {
      const text = files[f];
      if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return text;
    };
    const topo = parseRequestSpec('emu.test=topo.json', read);
    expect(topo.site).toBe('emu.test');
    expect(topo.request.nodes).toMatchObject({ count: 2, clientIds: ['a', 'b'] });
    expect(topo.request.links).toEqual([{ name: 'lan0', endpoints: ['a', 'b'], bandwidthKbps: 1000, delayMs: 0, lossPercent: 0 }]);
    expect(topo.request.exclusive).toBe(true);
    expect(topo.request.resources?.cpuMillis).toBe(100);
    expect(topo.request.requestDocument).toBe('');

    const doc = parseRequestSpec('pg.test=rspec.json', read);
    expect(doc.request.requestDocumentFormat).toBe('fedlab-rspec+json');
    expect(JSON.parse(doc.request.requestDocument)).toMatchObject({ type: 'request' });
    expect(doc.request.links).toEqual([]);

    const refusals: [string, RegExp][] = [
      ['emu.test=typo.json', /links\[0\]: unknown key "bandwith_kbps"/],
      ['emu.test=top-typo.json', /unknown key "node"/],
      ['emu.test=no-nodes.json', /say which nodes/],
      ['emu.test=bad.json', /is not JSON/],
      ['emu.test=missing.json', /cannot read missing\.json: ENOENT/],
      ['not a domain=topo.json', /is not a site domain/],
      ['topo.json', /write DOMAIN=FILE/],
    ];
    for (const [spec, message] of refusals) {
      expect(() => parseRequestSpec(spec, read), spec).toThrow(InvalidArgumentError);
      expect(() => parseRequestSpec(spec, read), spec).toThrow(message);
    }
  });
});
