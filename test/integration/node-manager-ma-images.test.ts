// Images through the management authority (root, umoci): a node offering an OCI image (built here from
// busybox-static) and a larger one offering only `host` enrol with a real MA; ListResources advertises each
// node's images (from its heartbeats); an Allocate asking for `oci:<name>` on any node is placed on the node
// that has it, and Provision hands the image to CreateSliver, so the sliver runs on the image's root file
// system; a named node without the image, and a malformed image name, are refused before anything is held.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationalState, type ResourceRequest } from '../../services/generated/fedlab/v1/common.js';
import { disposeParties, enrolNode, startSite, until, type Site, type TestNode } from '../helpers/ma-harness.js';
import { buildBusyboxImage, canContain, cannotContainReason, collectExec, umociThere } from '../helpers/node-manager.js';

if (!canContain || !umociThere) console.log(`skipping images through the MA: ${cannotContainReason || 'umoci is missing'}`);

const SP = 'urn:fedlab:plc.test:sp:acme';

function request(o: { image?: string; nodeUrns?: string[]; count?: number }): ResourceRequest {
  return {
    nodes: { nodeUrns: o.nodeUrns ?? [], count: o.count ?? 0, clientIds: [] },
    resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0, ...(o.image !== undefined ? { image: o.image } : {}) },
    links: [],
    exclusive: false,
    requestDocument: '',
    requestDocumentFormat: '',
  };
}

describe.skipIf(!canContain || !umociThere)('images through the management authority', () => {
  let site: Site;
  let withImage: TestNode;
  let hostOnly: TestNode;
  let chain: string[];
  let imagesDir: string;

  beforeAll(async () => {
    imagesDir = mkdtempSync(join(tmpdir(), 'fedlab-ma-images-'));
    buildBusyboxImage(imagesDir, 'busy');
    site = await startSite({ style: 'planetlab' });
    withImage = await enrolNode(site, { name: 'img', driver: 'container', config: { images_dir: imagesDir } });
    // More free CPU: the site would pick it first if images did not matter.
    hostOnly = await enrolNode(site, { name: 'plain', driver: 'process', capacity: { cpu_millis: 8000 } });
    chain = await site.saChain({ ttlS: 86_400 });
  });
  afterAll(async () => {
    await withImage?.destroy();
    await hostOnly?.destroy();
    await site?.destroy();
    await disposeParties();
    rmSync(imagesDir, { recursive: true, force: true });
  });

  it('ListResources and GetNode advertise the images each node offers', async () => {
    const imagesOf = async () => {
      const nodes = (
        await site.aggClient().listResources({ pageSize: 0, pageToken: '', availableOnly: false, documentFormat: '' }, { chain })
      ).nodes;
      return Object.fromEntries(nodes.map((n) => [n.urn, n.images?.names ?? []]));
    };
    await until(async () => (await imagesOf())[withImage.urn]?.includes('oci:busy') === true, 10_000, 'the image advertised');
    expect(await imagesOf()).toEqual({ [withImage.urn]: ['host', 'oci:busy'], [hostOnly.urn]: ['host'] });
    expect((await site.maClient().getNode({ nodeUrn: withImage.urn })).node?.images?.names).toEqual(['host', 'oci:busy']);
    const doc = JSON.parse(
      (
        await site
          .aggClient()
          .listResources({ pageSize: 0, pageToken: '', availableOnly: false, documentFormat: 'fedlab-rspec+json' }, { chain })
      ).advertisementDocument,
    ) as { nodes: { component_id: string; images: string[] }[] };
    expect(doc.nodes.find((n) => n.component_id === withImage.urn)?.images).toEqual(['host', 'oci:busy']);
  });

  it('an oci: image asked of any node lands on the node that has it and reaches the sliver', async () => {
    const slice = 'urn:fedlab:plc.test:slice:imgs';
    const agg = site.aggClient();
    const alloc = await agg.allocate(
      { users: [], requestId: 'img-1', sliceUrn: slice, providerUrn: SP, request: request({ image: 'oci:busy', count: 1 }) },
      { chain },
    );
    expect(alloc.slivers.map((s) => s.nodeUrn)).toEqual([withImage.urn]);
    expect(alloc.slivers[0]?.resources?.image).toBe('oci:busy');
    // The image is part of the request: the same request id with another image is another request.
    await expect(
      agg.allocate({ users: [], requestId: 'img-1', sliceUrn: slice, providerUrn: SP, request: request({ count: 1 }) }, { chain }),
    ).rejects.toMatchObject({ code: Status.ALREADY_EXISTS });

    const prov = await agg.provision({ urns: [slice], bestEffort: false, start: true }, { chain });
    expect(prov.results.map((r) => r.status?.code)).toEqual([Status.OK]);
    const onNode = (await withImage.client().listSlivers({ pageSize: 0, pageToken: '', sliceUrn: slice }, { chain: withImage.ownerChain }))
      .slivers;
    expect(onNode.map((s) => s.resources?.image)).toEqual(['oci:busy']);
    const urn = onNode[0]?.urn as string;
    await until(
      async () =>
        (await withImage.client().getSliver({ sliverUrn: urn }, { chain: withImage.ownerChain })).sliver?.operationalState ===
        OperationalState.OPERATIONAL_STATE_READY,
      15_000,
      'the sliver READY',
    );
    const out = await collectExec(
      withImage.client().exec({ sliverUrn: urn, argv: ['cat', '/etc/os-release'], env: {}, timeoutMs: 0 }, { chain: withImage.ownerChain }),
    );
    expect(out.stdout).toMatch(/^ID=fedlab-busy$/m);
    await agg.delete({ urns: [slice], bestEffort: false }, { chain });
  });

  it('a named node without the image, and a malformed image name, are refused and nothing is held', async () => {
    const agg = site.aggClient();
    const slice = 'urn:fedlab:plc.test:slice:imgbad';
    const refused = (await agg
      .allocate(
        {
          users: [],
          requestId: 'img-2',
          sliceUrn: slice,
          providerUrn: SP,
          request: request({ image: 'oci:busy', nodeUrns: [hostOnly.urn] }),
        },
        { chain },
      )
      .catch((e: unknown) => e)) as ServiceError;
    expect(refused.code).toBe(Status.FAILED_PRECONDITION);
    expect(refused.details).toMatch(/does not offer image oci:busy \(it offers host\)/);
    const bad = (await agg
      .allocate(
        { users: [], requestId: 'img-3', sliceUrn: slice, providerUrn: SP, request: request({ image: 'docker://x', count: 1 }) },
        { chain },
      )
      .catch((e: unknown) => e)) as ServiceError;
    expect(bad.code).toBe(Status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/request\.resources\.image: "docker:\/\/x" is not an image name/);
    await expect(agg.status({ urns: [slice] }, { chain })).rejects.toMatchObject({ code: Status.NOT_FOUND });
  });
});
