// The slice authority's reading of stitched links (pure): each site's ends with one VNI and the two addresses,
// refusals naming the link and endpoint; and the exchange of stitch points between the sites of one CreateSlice
// (each gets its peers' points once every stitched site handed its own in; a site that fails first aborts the others).
import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AbortedError, FailedPreconditionError, InvalidArgumentError } from '../../services/core/errors.js';
import { ResourceRequest, type StitchPoint } from '../../services/generated/fedlab/v1/common.js';
import type { CreateSliceRequest } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { SiteRecord } from '../../services/slice-authority/records.js';
import { StitchExchange } from '../../services/slice-authority/slices/stitch-exchange.js';
import { stitchEnds } from '../../services/slice-authority/slices/stitched-links.js';

const rr = (clientIds: string[], links: ResourceRequest['links'] = []): ResourceRequest => ({
  nodes: { nodeUrns: [], count: clientIds.length, clientIds },
  links,
  exclusive: false,
  requestDocument: '',
  requestDocumentFormat: '',
});

function create(
  endpoints: { site: string; clientId: string }[],
  o: { name?: string; links?: ResourceRequest['links'] } = {},
): CreateSliceRequest {
  return {
    requestId: 'r1',
    name: 's',
    description: '',
    mode: 0,
    sites: [
      { site: 'a.test', request: rr(['x', 'y'], o.links) },
      { site: 'b.test', request: rr(['z']) },
    ],
    stitchedLinks: { links: [{ name: o.name ?? 'w0', endpoints, bandwidthKbps: 1000, delayMs: 0, lossPercent: 0 }] },
    start: false,
    wait: false,
    users: [],
  };
}

const AB = [
  { site: 'a.test', clientId: 'x' },
  { site: 'b.test', clientId: 'z' },
];

describe('stitched links in a CreateSlice', () => {
  it('gives each site its end: one VNI for both, addresses in one /24, the peer named', () => {
    const ends = stitchEnds(create(AB), () => 0x81_2345);
    expect(ends.get('a.test')).toEqual([
      expect.objectContaining({
        link: 'w0',
        clientId: 'x',
        vni: 0x81_2345,
        address: '10.201.0.1/24',
        peerSite: 'b.test',
        peerClientId: 'z',
        bandwidthKbps: 1000,
      }),
    ]);
    expect(ends.get('b.test')).toEqual([
      expect.objectContaining({
        link: 'w0',
        clientId: 'z',
        vni: 0x81_2345,
        address: '10.201.0.2/24',
        peerSite: 'a.test',
        peerClientId: 'x',
      }),
    ]);
    expect(stitchEnds({ ...create(AB), stitchedLinks: undefined }).size).toBe(0);
    const drawn = stitchEnds(create(AB)).get('a.test')![0]!.vni;
    expect(drawn).toBeGreaterThanOrEqual(0x80_0000);
    expect(drawn).toBeLessThanOrEqual(0xff_ffff);
  });

  it('refuses bad links naming the link and the endpoint', () => {
    const cases: [CreateSliceRequest, RegExp][] = [
      [
        create([
          { site: 'a.test', clientId: 'x' },
          { site: 'b.test', clientId: 'nope' },
        ]),
        /stitched link w0 \(endpoint nope\) names no node/,
      ],
      [
        create([
          { site: 'a.test', clientId: 'x' },
          { site: 'c.test', clientId: 'z' },
        ]),
        /endpoint z\) is at c\.test, which is not a site/,
      ],
      [
        create([
          { site: 'a.test', clientId: 'x' },
          { site: 'a.test', clientId: 'y' },
        ]),
        /joins two nodes of one site/,
      ],
      [create([{ site: 'a.test', clientId: 'x' }]), /exactly two endpoints/],
      [create(AB, { name: 'bad name' }), /1 to 64 characters/],
      [
        create(AB, { links: [{ name: 'w0', endpoints: ['x', 'y'], bandwidthKbps: 0, delayMs: 0, lossPercent: 0 }] }),
        /also the name of a link/,
      ],
    ];
    for (const [req, msg] of cases) {
      let err: unknown;
      try {
        stitchEnds(req);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(msg);
      expect((err as InvalidArgumentError).details.link).toBeDefined();
    }
  });
});

function siteRec(site: string, ends: ReturnType<typeof stitchEnds>): SiteRecord {
  const request = rr([]);
  return {
    site,
    aggregateUrn: '',
    style: 0,
    request: ResourceRequest.toJSON(ends.get(site) ? { ...request, stitches: { ends: ends.get(site)! } } : request),
    code: 0,
    reason: '',
    manifest: '',
    swappedOut: false,
    slivers: [],
    use: { slivers: 0, cpuMillis: 0, memMb: 0, diskMb: 0 },
  };
}

describe('the exchange of stitch points', () => {
  const ends = stitchEnds(create(AB), () => 0x90_0000);
  const point = (site: string, clientId: string, underlay: string): StitchPoint => ({
    site,
    link: 'w0',
    clientId,
    underlayAddress: underlay,
    vni: 0x90_0000,
  });

  it('gives each site its peer’s point once both handed theirs in', async () => {
    const ex = new StitchExchange([siteRec('a.test', ends), siteRec('b.test', ends), siteRec('c.test', ends)]);
    expect(ex.active).toBe(true);
    expect(ex.has('c.test')).toBe(false);
    const a = ex.exchange('a.test', [point('a.test', 'x', '10.0.0.1')]);
    let settled = false;
    void a.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    const b = await ex.exchange('b.test', [point('b.test', 'z', '10.0.0.2')]);
    expect(b).toEqual([point('a.test', 'x', '10.0.0.1')]);
    expect(await a).toEqual([point('b.test', 'z', '10.0.0.2')]);
  });

  it('aborts the waiting sites when one fails first, naming the link and endpoint', async () => {
    const ex = new StitchExchange([siteRec('a.test', ends), siteRec('b.test', ends)]);
    const a = ex.exchange('a.test', [point('a.test', 'x', '10.0.0.1')]);
    ex.fail('b.test', `site b.test: unreachable (code ${Status.UNAVAILABLE})`);
    const err = await a.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as Error).message).toMatch(/stitched link w0: its end at site b\.test \(endpoint z\) could not be allocated/);
  });

  it('refuses a site that allocated without its stitch point', async () => {
    const ex = new StitchExchange([siteRec('a.test', ends), siteRec('b.test', ends)]);
    const a = ex.exchange('a.test', [point('a.test', 'x', '10.0.0.1')]);
    await expect(ex.exchange('b.test', [])).rejects.toThrow(FailedPreconditionError);
    await expect(a).rejects.toThrow(AbortedError);
  });
});
