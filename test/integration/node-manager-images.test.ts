// Images and bad input of the container driver (root only: runc, umoci, overlayfs). An OCI image the test builds
// itself from the host's static busybox (nothing is downloaded) is unpacked once into a shared rootfs and each
// sliver gets its own writable overlay; GetNodeInfo advertises the images the owner allows. Bad input — an unknown
// or unlisted image, a directory that is not an OCI layout, a corrupt layer, an exhausted id range, env names with
// "=" or NUL, a half-written bundle after a crash, runc missing — gets a clear code and message, and leaves no
// container, mount, overlay or id range behind (checked with runc list, /proc/self/mountinfo and the id slots).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationalState } from '../../services/generated/fedlab/v1/common.js';
import {
  buildBusyboxImage,
  canContain,
  cannotContainReason,
  collectExec,
  createRequest,
  createSliver,
  mountsUnder,
  runcList,
  startNodeManager,
  tempDir,
  withSaJwk,
  type NmHarness,
  umociThere,
} from '../helpers/node-manager.js';

if (!canContain || !umociThere)
  console.log(`skipping container image tests: ${canContain ? 'umoci is missing (apt-get install umoci)' : cannotContainReason}`);

const res = (image?: string) => ({
  cpuMillis: 100,
  memMb: 64,
  diskMb: 64,
  pids: 64,
  bandwidthKbps: 0,
  ...(image !== undefined ? { image } : {}),
});

describe.skipIf(!canContain || !umociThere)('container images and bad input', () => {
  let h: NmHarness;
  let imagesDir: string;
  let root: string;
  const chain = () => ({ chain: h.parties.ownerChain });
  const run = async (urn: string, script: string) =>
    collectExec(h.client().exec({ sliverUrn: urn, argv: ['sh', '-c', script], env: {}, timeoutMs: 20_000 }, chain()));
  const refused = async (p: Promise<unknown>) =>
    (await p.then(
      () => undefined,
      (e: ServiceError) => e,
    )) as ServiceError;
  /** Everything of the node that bad input must not change. */
  const footprint = () => ({
    containers: runcList(h.dataDir)
      .map((c) => c.id)
      .sort(),
    mounts: mountsUnder(h.dataDir),
    slots: h.nm.slivers.idSlotsInUse(),
    dirs: readdirSync(join(h.dataDir, 'slivers')).sort(),
  });

  beforeAll(async () => {
    root = tempDir('fedlab-nm-img-');
    imagesDir = join(root, 'images');
    buildBusyboxImage(imagesDir, 'bb');
    cpSync(join(imagesDir, 'bb'), join(imagesDir, 'other'), { recursive: true });
    // Another image (its own manifest), whose biggest blob (its layer) then loses its content: its digest no longer matches.
    buildBusyboxImage(imagesDir, 'corrupt');
    const blobs = join(imagesDir, 'corrupt', 'blobs', 'sha256');
    const layer = readdirSync(blobs).sort((x, y) => readFileSync(join(blobs, y)).length - readFileSync(join(blobs, x)).length)[0] as string;
    writeFileSync(join(blobs, layer), 'not a layer');
    mkdirSync(join(imagesDir, 'broken'));
    writeFileSync(join(imagesDir, 'broken', 'index.json'), '{}');
    h = await startNodeManager({
      driver: 'container',
      config: { images_dir: imagesDir, policy: { images: ['host', 'oci:bb', 'oci:corrupt', 'oci:broken'] }, container: { id_ranges: 3 } },
    });
  });
  afterAll(async () => {
    await h?.destroy();
    rmSync(root, { recursive: true, force: true });
  });

  it("runs an oci: sliver on the image's own root file system, shared read-only and unpacked once, with a writable layer of its own", async () => {
    const info = await h.client().getNodeInfo({}, chain());
    // "other" exists but the owner does not list it; "broken" is not a layout.
    expect(info.node?.images?.names).toEqual(['host', 'oci:bb', 'oci:corrupt']);
    const s1 = await createSliver(h, 'img1', { sliceUrn: 'urn:fedlab:plc.test:slice:img1', resources: res('oci:bb') });
    const s2 = await createSliver(h, 'img2', { sliceUrn: 'urn:fedlab:plc.test:slice:img2', resources: res('oci:bb') });
    expect(s1.operationalState).toBe(OperationalState.OPERATIONAL_STATE_READY);
    expect(s1.resources?.image).toBe('oci:bb');
    expect((await run(s1.urn, 'cat /etc/os-release')).stdout).toMatch(/^ID=fedlab-bb$/m);
    // Root of the sliver owns its files and can change the system (its own layer), as package installs do.
    const w = await run(
      s1.urn,
      'echo mine > /bin/added && echo changed >> /etc/os-release && id -u && stat -c %u /bin/busybox && cat /bin/added',
    );
    expect(w.stdout).toBe('0\n0\nmine\n');
    expect((await run(s2.urn, 'cat /bin/added 2>&1; grep -c changed /etc/os-release')).stdout).toMatch(/No such file[\s\S]*^0$/m);
    const unpacked = readdirSync(join(h.dataDir, 'images')).filter((d) => d.startsWith('sha256-'));
    expect(unpacked).toHaveLength(1);
    expect(existsSync(join(h.dataDir, 'images', unpacked[0] as string, 'rootfs', 'bin', 'added'))).toBe(false);
    expect(mountsUnder(h.dataDir)).toHaveLength(2);
    for (const s of [s1, s2]) await h.client().deleteSliver({ sliverUrn: s.urn }, chain());
    expect(footprint()).toEqual({ containers: [], mounts: [], slots: [], dirs: [] });
  });

  it('an unknown, unlisted, malformed or corrupt image is refused naming it, and nothing is left', async () => {
    const before = footprint();
    const cases: [string, number, RegExp][] = [
      ['oci:nope', Status.INVALID_ARGUMENT, /image oci:nope is unknown on this node/],
      ['oci:other', Status.PERMISSION_DENIED, /owner policy images: image oci:other may not be used/],
      ['docker.io/busybox', Status.INVALID_ARGUMENT, /is not an image name/],
      ['oci:broken', Status.INVALID_ARGUMENT, /image oci:broken is not an OCI image layout/],
      ['oci:corrupt', Status.FAILED_PRECONDITION, /image oci:corrupt cannot be unpacked/],
    ];
    for (const [image, code, message] of cases) {
      const err = await refused(h.client().createSliver(await withSaJwk(createRequest('bad', { resources: res(image) })), chain()));
      expect(err.code, image).toBe(code);
      expect(err.details, image).toMatch(message);
      expect(footprint(), image).toEqual(before);
    }
    expect(readdirSync(join(h.dataDir, 'images')).filter((d) => d.startsWith('.tmp-'))).toEqual([]);
  });

  it('an exhausted id range and bad env names are refused clearly, leaving nothing', async () => {
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await createSliver(h, `ids${i}`, { sliceUrn: `urn:fedlab:plc.test:slice:ids${i}` }));
    const before = footprint();
    expect(before.slots).toEqual([0, 1, 2]);
    const err = await refused(
      h.client().createSliver(await withSaJwk(createRequest('ids3', { sliceUrn: 'urn:fedlab:plc.test:slice:ids3' })), chain()),
    );
    expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/no user id range is free: all 3 ranges/);
    expect(footprint()).toEqual(before);
    for (const env of [{ 'A=B': 'x' }, { 'A\0B': 'x' }, { A: 'x\0y' }, { '1A': 'x' }] as Record<string, string>[]) {
      const e = await refused(collectExec(h.client().exec({ sliverUrn: made[0]!.urn, argv: ['true'], env, timeoutMs: 0 }, chain())));
      expect(e.code, JSON.stringify(env)).toBe(Status.INVALID_ARGUMENT);
      expect(e.details).toMatch(/env/);
    }
    expect(footprint()).toEqual(before);
    await h.client().deleteSliver({ sliverUrn: made[2]!.urn }, chain());
    // The freed range is the next one given out.
    const again = await createSliver(h, 'ids4', { sliceUrn: 'urn:fedlab:plc.test:slice:ids4' });
    expect(h.nm.slivers.get(again.urn)?.ids?.slot).toBe(2);
    for (const s of [made[0]!, made[1]!, again]) await h.client().deleteSliver({ sliverUrn: s.urn }, chain());
    expect(footprint()).toEqual({ containers: [], mounts: [], slots: [], dirs: [] });
  });

  it('a bundle half-written by a crash is rewritten, and one no record explains is removed, on restart', async () => {
    const s = await createSliver(h, 'crash1', { sliceUrn: 'urn:fedlab:plc.test:slice:crash1', resources: res('oci:bb') });
    await h.stop();
    const dir = join(h.dataDir, 'slivers', 'crash1');
    // The container died with the node manager down, and its config was cut short mid-write.
    const pid = runcList(h.dataDir).find((c) => c.id === 'crash1')?.pid;
    if (pid) process.kill(pid, 'SIGKILL');
    writeFileSync(join(dir, 'config.json'), '{"ociVersion": "1.0.2", "proc');
    writeFileSync(join(dir, 'config.json.3f2a'), '{');
    mkdirSync(join(h.dataDir, 'slivers', 'ghost', 'rootfs'), { recursive: true });
    writeFileSync(join(h.dataDir, 'slivers', 'ghost', 'config.json'), '{"oci');
    const h2 = await startNodeManager({
      driver: 'container',
      dataDir: h.dataDir,
      config: { images_dir: imagesDir, policy: { images: ['host', 'oci:bb'] }, container: { id_ranges: 3 } },
    });
    try {
      const got = (await h2.client().getSliver({ sliverUrn: s.urn }, { chain: h2.parties.ownerChain })).sliver;
      expect(got?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_READY);
      const out = await collectExec(
        h2.client().exec({ sliverUrn: s.urn, argv: ['cat', '/etc/os-release'], env: {}, timeoutMs: 0 }, { chain: h2.parties.ownerChain }),
      );
      expect(out.stdout).toMatch(/ID=fedlab-bb/);
      expect(readdirSync(join(h.dataDir, 'slivers'))).toEqual(['crash1']);
      expect(runcList(h.dataDir).map((c) => c.id)).toEqual(['crash1']);
      await h2.client().deleteSliver({ sliverUrn: s.urn }, { chain: h2.parties.ownerChain });
      expect(mountsUnder(h.dataDir)).toEqual([]);
    } finally {
      await h2.stop();
    }
  });

  it('refuses to start without runc, saying what to install', async () => {
    const err = await startNodeManager({ driver: 'container', config: { container: { runc: '/nonexistent/runc' } } }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/runc .*not found at \/nonexistent\/runc.*apt-get install runc/);
  });
});
