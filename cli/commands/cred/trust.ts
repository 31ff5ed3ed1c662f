/** The trust `fedlab cred verify` checks a chain against: bundle files or directories of bundles. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TrustStore } from '../../../services/core/credentials/index.js';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { parseTrustBundle } from '../../../services/core/identity/trust-bundle.js';

/** Loads trust from bundle files or directories of bundles (every *.json in a directory must be a bundle). */
export async function loadTrust(paths: readonly string[]): Promise<TrustStore> {
  const trust = new TrustStore();
  for (const p of paths) {
    const files = statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith('.json'))
          .sort()
          .map((f) => join(p, f))
      : [p];
    for (const f of files) {
      let bundle;
      try {
        bundle = await parseTrustBundle(readFileSync(f, 'utf8'));
      } catch (err) {
        throw new InvalidArgumentError(`${f}: ${(err as Error).message}`);
      }
      if (trust.bundle(bundle.domain)) throw new InvalidArgumentError(`two trust bundles for ${bundle.domain} (${f}); give one per domain`);
      trust.addBundle(bundle);
    }
  }
  return trust;
}
