/**
 * The images slivers can have: `host` (the host's system directories,
 * read-only, under a private root) and `oci:<name>`, an OCI image layout the
 * node owner placed in `images_dir/<name>`. An OCI image is unpacked once,
 * with umoci, into a content-addressed root file system (named by its
 * manifest digest) under the node's data directory, which every sliver of it
 * shares read-only below its own writable overlay.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { HOST_TOOL_ENV } from './runc.js';

/** The default image. */
export const HOST_IMAGE = 'host';
const OCI_NAME = /^oci:([a-z0-9][a-z0-9._-]{0,62})$/;
const REF_NAME = 'org.opencontainers.image.ref.name';

/** An image as a sliver names it. */
export type ImageRef = { readonly kind: 'host' } | { readonly kind: 'oci'; readonly name: string };

/** Parses an image name: empty or `host`, or `oci:<name>`; anything else is INVALID_ARGUMENT naming it. */
export function parseImageName(image: string): ImageRef {
  if (image === '' || image === HOST_IMAGE) return { kind: 'host' };
  const m = OCI_NAME.exec(image);
  if (!m) {
    throw new InvalidArgumentError(
      `resources.image ${JSON.stringify(image.slice(0, 80))} is not an image name: use "host" or "oci:<name>" (name [a-z0-9][a-z0-9._-]*)`,
      {
        field: 'resources.image',
      },
    );
  }
  return { kind: 'oci', name: m[1] as string };
}

/** The canonical name of an image ref. */
export function imageName(ref: ImageRef): string {
  return ref.kind === 'host' ? HOST_IMAGE : `oci:${ref.name}`;
}

/** An OCI image ready for slivers. */
export interface UnpackedImage {
  readonly name: string;
  /** The manifest's digest (`sha256:<hex>`). */
  readonly digest: string;
  /** The shared, read-only root file system. */
  readonly rootfs: string;
}

/** Options of {@link ImageStore}. */
export interface ImageStoreOptions {
  /** Where the owner places OCI image layouts (one directory per image); none: only `host`. */
  readonly imagesDir?: string;
  /** Where unpacked root file systems are kept (under the node's data directory). */
  readonly storeDir: string;
  /** Absolute path of umoci. */
  readonly umoci: string;
  readonly log: Logger;
}

/** The node's images. */
export class ImageStore {
  private readonly unpacking = new Map<string, Promise<UnpackedImage>>();

  constructor(private readonly o: ImageStoreOptions) {}

  /** Removes what an unpack interrupted by a crash left. */
  async init(): Promise<void> {
    await mkdir(this.o.storeDir, { recursive: true, mode: 0o700 });
    for (const e of readdirSync(this.o.storeDir))
      if (e.startsWith('.tmp-')) await rm(join(this.o.storeDir, e), { recursive: true, force: true });
  }

  /** Every image the node offers: `host` and each OCI layout in the image directory, sorted. */
  list(): string[] {
    const names = [HOST_IMAGE];
    const dir = this.o.imagesDir;
    if (dir && existsSync(dir)) {
      for (const e of readdirSync(dir).sort()) {
        const name = `oci:${e}`;
        if (OCI_NAME.test(name) && existsSync(join(dir, e, 'oci-layout'))) names.push(name);
      }
    }
    return names;
  }

  /** Checks that a named image exists here (INVALID_ARGUMENT naming it when not). */
  check(ref: ImageRef): void {
    if (ref.kind === 'host') return;
    this.layoutOf(ref.name);
  }

  /** The layout directory and the manifest to unpack, or INVALID_ARGUMENT saying what is wrong. */
  private layoutOf(name: string): { dir: string; tag: string; digest: string } {
    const image = `oci:${name}`;
    if (!this.o.imagesDir)
      throw new InvalidArgumentError(`image ${image} is unknown: this node has no images_dir, only "host"`, { field: 'resources.image' });
    const dir = join(this.o.imagesDir, name);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new InvalidArgumentError(`image ${image} is unknown on this node (its images: ${this.list().join(', ')})`, {
        field: 'resources.image',
      });
    }
    const notLayout = (why: string): InvalidArgumentError =>
      new InvalidArgumentError(`image ${image} is not an OCI image layout: ${why}; the node owner must replace ${dir}`, {
        field: 'resources.image',
      });
    let index: { manifests?: { digest?: string; annotations?: Record<string, string> }[] };
    try {
      const layout = JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8')) as { imageLayoutVersion?: string };
      if (typeof layout.imageLayoutVersion !== 'string') throw notLayout('oci-layout has no imageLayoutVersion');
      index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as typeof index;
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err;
      throw notLayout(`cannot read oci-layout and index.json (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const manifests = (index.manifests ?? []).filter(
      (m) => typeof m.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(m.digest) && m.annotations?.[REF_NAME],
    );
    const chosen = manifests.length === 1 ? manifests[0] : manifests.find((m) => m.annotations?.[REF_NAME] === 'latest');
    if (!chosen) throw notLayout(manifests.length === 0 ? 'index.json names no tagged manifest' : 'several tags and none is "latest"');
    return { dir, tag: chosen.annotations?.[REF_NAME] as string, digest: chosen.digest as string };
  }

  /** The image's shared root file system, unpacked on first use (once, however many slivers ask at the same time). */
  async unpack(name: string): Promise<UnpackedImage> {
    const { dir, tag, digest } = this.layoutOf(name);
    const target = join(this.o.storeDir, digest.replace(':', '-'));
    const done = (): UnpackedImage => ({ name: `oci:${name}`, digest, rootfs: join(target, 'rootfs') });
    if (existsSync(join(target, 'rootfs'))) return done();
    let p = this.unpacking.get(digest);
    if (!p) {
      p = this.unpackInto(dir, tag, target, `oci:${name}`).then(done);
      this.unpacking.set(digest, p);
      p.finally(() => this.unpacking.delete(digest)).catch(() => undefined);
    }
    return p;
  }

  private async unpackInto(layout: string, tag: string, target: string, image: string): Promise<void> {
    const tmp = join(this.o.storeDir, `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const started = Date.now();
    try {
      await new Promise<void>((resolve, reject) =>
        execFile(
          this.o.umoci,
          ['unpack', '--image', `${layout}:${tag}`, tmp],
          { env: HOST_TOOL_ENV, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 },
          (err, _out, stderr) => {
            if (!err) return resolve();
            const why = stderr.trim().split('\n').filter(Boolean).pop() ?? err.message;
            reject(
              new FailedPreconditionError(
                `image ${image} cannot be unpacked (a damaged layer or manifest?): ${why.slice(0, 400)}; the node owner must replace it`,
              ),
            );
          },
        ),
      );
      if (!existsSync(join(tmp, 'rootfs')))
        throw new FailedPreconditionError(`image ${image} unpacked to nothing; the node owner must replace it`);
      // Only the root file system is kept; renaming makes it appear whole or not at all.
      await rename(tmp, target);
      this.o.log.info({ image, ms: Date.now() - started }, 'image unpacked');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
