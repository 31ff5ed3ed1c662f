// A site's answer to stitched ends it will not take, before anything is held: an emulab site whose policy says
// `stitching: false` is FAILED_PRECONDITION naming the site, the link and the endpoint (a planetlab site takes
// them: its nodes here have no underlay address, so the end is FAILED_PRECONDITION naming link and endpoint); an end naming no node of the request, or a bad VNI, is INVALID_ARGUMENT naming the link and endpoint.
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResourceRequest, StitchEnd } from '../../services/generated/fedlab/v1/common.js';
import { disposeParties, siteParties, startSite, type Site } from '../helpers/ma-harness.js';

let refusing: Site;
let shared: Site;
let emulab: Site;

const end = (o: Partial<StitchEnd> = {}): StitchEnd => ({
  link: 'w0',
  clientId: 'a',
  vni: 0x81_0000,
  address: '10.201.0.1/24',
  peerSite: 'peer.test',
  peerClientId: 'b',
  bandwidthKbps: 0,
  delayMs: 0,
  lossPercent: 0,
  ...o,
});

const request = (e: StitchEnd): ResourceRequest => ({
  nodes: { nodeUrns: [], count: 1, clientIds: ['a'] },
  links: [],
  exclusive: false,
  requestDocument: '',
  requestDocumentFormat: '',
  stitches: { ends: [e] },
});

async function allocate(site: Site, e: StitchEnd): Promise<{ code: number; message: string }> {
  const chain = await site.saChain();
  const domain = site.parties.domain;
  return site
    .aggClient()
    .allocate(
      {
        users: [],
        requestId: `r-${Math.random().toString(36).slice(2)}`,
        sliceUrn: `urn:fedlab:${domain}:slice:s1`,
        providerUrn: `urn:fedlab:${domain}:sp:acme`,
        request: request(e),
      },
      { chain },
    )
    .then(
      () => ({ code: 0, message: '' }),
      (err: unknown) => err as { code: number; message: string },
    );
}

describe('stitched ends a site refuses', () => {
  beforeAll(async () => {
    refusing = await startSite({ style: 'emulab', parties: await siteParties('nostitch.test'), config: { policy: { stitching: false } } });
    shared = await startSite({ style: 'planetlab', parties: await siteParties('plstitch.test') });
    emulab = await startSite({ style: 'emulab', parties: await siteParties('emstitch.test') });
  }, 60_000);

  afterAll(async () => {
    for (const s of [refusing, shared, emulab]) await s?.destroy();
    await disposeParties();
  });

  it('stitching: false — FAILED_PRECONDITION naming the site and the link', async () => {
    const err = await allocate(refusing, end());
    expect(err.code).toBe(Status.FAILED_PRECONDITION);
    expect(err.message).toMatch(/site nostitch\.test does not stitch links .*link w0 \(endpoint a\)/);
    expect(refusing.ma!.aggregate.linkVnis('urn:fedlab:nostitch.test:slice:s1').size).toBe(0);
  });

  it('a planetlab site takes stitched ends; with no node to hold one, nothing is held', async () => {
    const err = await allocate(shared, end());
    expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(shared.ma!.aggregate.linkVnis('urn:fedlab:plstitch.test:slice:s1').size).toBe(0);
  });

  it('an end naming no node of the request, or a bad VNI or address: INVALID_ARGUMENT naming link and endpoint', async () => {
    for (const [e, msg] of [
      [end({ clientId: 'zz' }), /stitched link w0 \(endpoint zz\) names no node of this site's request/],
      [end({ vni: 7 }), /stitched link w0 \(endpoint a\) must be 4096 to/],
      [end({ address: '10.201.0.1' }), /stitched link w0 \(endpoint a\) must be an IPv4 address with prefix length/],
      [end({ peerSite: 'emstitch.test' }), /peer_site/],
    ] as const) {
      const err = await allocate(emulab, e);
      expect(err.code).toBe(Status.INVALID_ARGUMENT);
      expect(err.message).toMatch(msg);
    }
    expect(emulab.ma!.aggregate.linkVnis('urn:fedlab:emstitch.test:slice:s1').size).toBe(0);
  });
});
