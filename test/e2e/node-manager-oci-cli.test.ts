// An OCI image from the command line to the sliver (root, runc, umoci): a federation whose node runs the
// container driver with an image built here from busybox-static; `fedlab slice create --image oci:<name>`
// (and the request-file form, resources.image) through the slice authority and the site reach the node, and
// `fedlab sliver exec ... -- cat /etc/os-release` prints the image's own file. A malformed --image exits 2.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../services/core/log.js';
import type { SliverDriver } from '../../services/node-manager/drivers/driver.js';
import { createDriver } from '../../services/node-manager/drivers/select.js';
import { runCli } from '../helpers/cli.js';
import { disposeParties } from '../helpers/ma-harness.js';
import { buildBusyboxImage, canContain, cannotContainReason, umociThere } from '../helpers/node-manager.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';

if (!canContain || !umociThere) console.log(`skipping fedlab slice create --image: ${cannotContainReason || 'umoci is missing'}`);

describe.skipIf(!canContain || !umociThere)(
  'fedlab slice create --image and fedlab sliver exec on an oci: sliver',
  { timeout: 180_000 },
  () => {
    let fed: Federation;
    let root: string;
    let conn: string[];
    let tls: string[];
    const drivers: SliverDriver[] = [];

    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), 'fedlab-oci-cli-'));
      // Slivers' root users traverse it to reach their bundles.
      chmodSync(root, 0o711);
      const imagesDir = join(root, 'images');
      buildBusyboxImage(imagesDir, 'busy');
      let n = 0;
      const containerDriver = (): SliverDriver => {
        const driver = createDriver({
          kind: 'container',
          workRoot: join(root, `node${++n}`, 'slivers'),
          instance: `ocicli${process.pid}n${n}`,
          imagesDir,
          log: silentLogger(),
        });
        drivers.push(driver);
        return driver;
      };
      fed = await startFederation({ sites: [{ domain: 'plc.test', style: 'planetlab', nodes: 1, driverObject: containerDriver }] });
      const sp = fed.home.sp;
      tls = ['--cert', sp.certPath, '--key', sp.keyPath, '--ca', sp.caPath];
      conn = ['--sa', fed.saAddress(), '--sa-urn', fed.home.sa.urn, ...tls];
    }, 180_000);

    afterAll(async () => {
      await fed?.destroy();
      for (const d of drivers) await d.purge();
      await disposeParties();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    /** Runs `cat /etc/os-release` in the slice's sliver with `fedlab sliver exec` and a slice credential of the provider. */
    async function osRelease(slice: string): Promise<{ code: number | null; stdout: string; stderr: string; image: string | undefined }> {
      const shown = await runCli(['slice', 'show', slice, '--json', ...conn]);
      expect(shown.code, shown.stderr).toBe(0);
      const s = JSON.parse(shown.stdout) as { urn: string; slivers: { urn: string; nodeUrn: string; resources?: { image?: string } }[] };
      const sliver = s.slivers[0];
      const node = fed.nodes.get('plc.test')?.find((x) => x.urn === sliver?.nodeUrn);
      if (!sliver || !node) throw new Error(`slice ${slice} has no sliver on a known node: ${shown.stdout}`);
      const cred = await fed.saClient().issueSliceCredential({
        requestId: `cred-${slice}`,
        sliceUrn: s.urn,
        holderCertificatePem: fed.home.sp.certPem,
        privileges: ['sliver.exec'],
        targets: [],
        limits: undefined,
        ttlS: 0,
        maxDelegations: 0,
      });
      const chainFile = join(root, `${slice}.chain`);
      writeFileSync(chainFile, `${cred.chain.join('\n')}\n`);
      const ex = await runCli(
        ['sliver', 'exec', '--node', node.endpoint, '--sliver', sliver.urn, '--chain', chainFile, ...tls, '--', 'cat', '/etc/os-release'],
        { timeoutMs: 60_000 },
      );
      return { ...ex, image: sliver.resources?.image };
    }

    it('--image oci:busy: the sliver runs on the image, and sliver exec shows its /etc/os-release', async () => {
      const created = await runCli(
        ['slice', 'create', 'oci1', '--site', 'plc.test=1', '--image', 'oci:busy', '--lifetime', '1h', ...conn],
        {
          timeoutMs: 90_000,
        },
      );
      expect(created.code, created.stderr).toBe(0);
      expect(created.stdout).toMatch(/state\s+READY/);
      const out = await osRelease('oci1');
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toBe('ID=fedlab-busy\nPRETTY_NAME="Fedlab test image busy"\n');
      expect(out.image).toBe('oci:busy');
      expect((await runCli(['slice', 'delete', 'oci1', ...conn], { timeoutMs: 60_000 })).code).toBe(0);
    });

    it('a request file with resources.image does the same; a malformed --image exits 2 naming it', async () => {
      const file = join(root, 'req.json');
      writeFileSync(file, JSON.stringify({ nodes: { count: 1 }, resources: { memMb: 64, image: 'oci:busy' } }));
      const created = await runCli(['slice', 'create', 'oci2', '--request', `plc.test=${file}`, '--lifetime', '1h', ...conn], {
        timeoutMs: 90_000,
      });
      expect(created.code, created.stderr).toBe(0);
      const out = await osRelease('oci2');
      expect(out.stdout).toMatch(/^ID=fedlab-busy$/m);
      expect((await runCli(['slice', 'delete', 'oci2', ...conn], { timeoutMs: 60_000 })).code).toBe(0);

      const bad = await runCli(['slice', 'create', 'oci3', '--site', 'plc.test=1', '--image', 'docker://busy', ...conn]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--image "docker:\/\/busy": write host or oci:NAME/);
    });
  },
);
