/**
 * Peering of a local federation's domains, as their admins would do it: the admin of A runs
 * `fedlab federation peer add` for B with B's bundle fingerprint (read from B's bundle file, as B's
 * admin would hand it over), fetched from B's public bundle endpoint; the record lands in A's peers
 * directory, which all of A's services watch. Pairs already pinned to the current bundle are skipped.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PeerDirectory } from '../../services/core/federation/peers.js';
import { bundleFingerprint, parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import type { LocalFederation, SiteRuntime } from './federation.js';
import { pool, sleep } from '../../services/core/timing.js';

/** Peers every domain of the federation with every other. */
export async function peerDomains(fed: LocalFederation): Promise<void> {
  const fingerprints = new Map<string, string>();
  for (const s of fed.sites) fingerprints.set(s.domain, bundleFingerprint(await parseTrustBundle(readFileSync(s.paths.bundle, 'utf8'))));
  const pairs: [SiteRuntime, SiteRuntime][] = [];
  for (const a of fed.sites) {
    const peers = new PeerDirectory(a.paths.peers);
    for (const b of fed.sites) {
      if (a === b) continue;
      const have = await peers.get(b.domain);
      if (!have || have.pinned_fingerprint !== fingerprints.get(b.domain)) pairs.push([a, b]);
    }
  }
  await pool(pairs, 3, async ([a, b]) => {
    const args = [
      ...fed.fedlabArgs,
      'federation',
      'peer',
      'add',
      '--config',
      a.paths.maConfig,
      '--domain',
      b.domain,
      '--endpoint',
      `localhost:${b.plan.bundle_port}`,
      '--fingerprint',
      fingerprints.get(b.domain) as string,
    ];
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, args, { timeout: 30_000 }, (err, _stdout, stderr) => {
        if (err)
          reject(new Error(`fedlab federation peer add --domain ${b.domain} for ${a.domain} failed: ${stderr.trim() || err.message}`));
        else resolve();
      });
    });
  });
  fed.say(`peered ${fed.sites.map((s) => s.domain).join(', ')} with each other (fedlab federation peer add, pinned bundle fingerprints)`);
  // Services reload their peers directory every reload_interval_ms (500 ms here).
  if (pairs.length) await sleep(1200);
}
