/**
 * Where a server's own trust bundle comes from: a bundle file written by
 * `fedlab certs bundle`. The file is re-read when it changes on disk, so an
 * admin publishing a new bundle does not need to restart the service; a file
 * that stops parsing keeps the last good bundle served (and is logged).
 */
import { readFile, stat } from 'node:fs/promises';
import { bundleFingerprint, parseTrustBundle, serializeTrustBundle, type TrustBundle } from '../identity/trust-bundle.js';
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../log.js';

/** A bundle with its canonical bytes and fingerprint. */
export interface PublishedBundle {
  readonly bundle: TrustBundle;
  readonly json: string;
  readonly fingerprint: string;
}

/** Gives the current bundle of one domain. */
export interface BundleSource {
  readonly domain: string;
  current(): Promise<PublishedBundle>;
}

/** Publishes a parsed bundle. */
export function publish(bundle: TrustBundle): PublishedBundle {
  return { bundle, json: serializeTrustBundle(bundle), fingerprint: bundleFingerprint(bundle) };
}

/** A {@link BundleSource} backed by a bundle file, reloaded when its mtime or size changes. */
export class FileBundleSource implements BundleSource {
  private constructor(
    private readonly file: string,
    private published: PublishedBundle,
    private stamp: string,
    private readonly log: Logger,
  ) {}

  get domain(): string {
    return this.published.bundle.domain;
  }

  /** Loads the file; fails (naming it) if it is missing or not a valid bundle, or not of `expectedDomain`. */
  static async open(file: string, expectedDomain: string, log: Logger): Promise<FileBundleSource> {
    let text: string;
    let st;
    try {
      st = await stat(file);
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError(`trust_bundle: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let bundle: TrustBundle;
    try {
      bundle = await parseTrustBundle(text);
    } catch (err) {
      throw new InvalidArgumentError(`trust_bundle ${file}: ${(err as Error).message}`);
    }
    if (bundle.domain !== expectedDomain) {
      throw new InvalidArgumentError(`trust_bundle ${file} is for domain ${bundle.domain}, but this service is in ${expectedDomain}`);
    }
    return new FileBundleSource(file, publish(bundle), `${st.mtimeMs}:${st.size}`, log);
  }

  async current(): Promise<PublishedBundle> {
    try {
      const st = await stat(this.file);
      const stamp = `${st.mtimeMs}:${st.size}`;
      if (stamp !== this.stamp) {
        const bundle = await parseTrustBundle(await readFile(this.file, 'utf8'));
        if (bundle.domain !== this.published.bundle.domain) throw new Error(`bundle file now names domain ${bundle.domain}`);
        this.published = publish(bundle);
        this.stamp = stamp;
        this.log.info({ fingerprint: this.published.fingerprint, serial: bundle.serial }, 'trust bundle reloaded');
      }
    } catch (err) {
      this.log.warn({ file: this.file, err: (err as Error).message }, 'trust bundle file unreadable; still serving the last good bundle');
    }
    return this.published;
  }
}
