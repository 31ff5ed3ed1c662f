/**
 * Peering of local domains without a network round trip: the record `fedlab federation peer add`
 * leaves in a domain's peers directory (the peer's bundle, pinned by its fingerprint), written
 * directly from the peer's bundle file. For federations whose admins are simulated: the test
 * harnesses and the benchmarks. `fedlab up` peers through the command itself.
 */
import { readFileSync } from 'node:fs';
import { federationSettings } from '../../services/core/config.js';
import { PeerDirectory, type PeerRecord } from '../../services/core/federation/peers.js';
import { bundleFingerprint, parseTrustBundle, type TrustBundle } from '../../services/core/identity/trust-bundle.js';

/**
 * The endpoint recorded for a peer that serves no public bundle endpoint: nothing listens on the
 * discard port, so a refresh finds the peer unreachable and keeps trusting the pinned bundle.
 */
export const NO_BUNDLE_ENDPOINT = '127.0.0.1:9';

/** Where a peer record goes and what it says. */
export interface PeerRecordOptions {
  /** `host:port` serving the peer's Federation.GetBundle ({@link NO_BUNDLE_ENDPOINT} when it serves none). */
  readonly endpoint?: string;
  /** When the bundle was pinned and accepted (now by default). */
  readonly at?: Date;
}

/** Writes into `peersDir` a record that pins `bundle` (its domain's bundle) as it is now; returns the record. */
export async function writePeerRecord(peersDir: string, bundle: TrustBundle, options: PeerRecordOptions = {}): Promise<PeerRecord> {
  const at = (options.at ?? new Date()).toISOString();
  const fingerprint = bundleFingerprint(bundle);
  const record: PeerRecord = {
    v: 1,
    domain: bundle.domain,
    endpoint: options.endpoint ?? NO_BUNDLE_ENDPOINT,
    pinned_fingerprint: fingerprint,
    pinned_at: at,
    bundle,
    fingerprint,
    accepted_at: at,
  };
  await new PeerDirectory(peersDir).put(record);
  return record;
}

/** One domain to peer: its trust bundle file and where its services look for peers. */
export interface PeeringDomain {
  readonly bundleFile: string;
  /** The domain's peers directory; by default the services' own default, `peers/` beside the bundle. */
  readonly peersDir?: string;
}

/** Peers every domain with every other: each one's peers directory gets a record of every other's bundle. */
export async function peerEachOther(domains: readonly PeeringDomain[], options: Omit<PeerRecordOptions, 'endpoint'> = {}): Promise<void> {
  const bundles = await Promise.all(domains.map(async (domain) => parseTrustBundle(readFileSync(domain.bundleFile, 'utf8'))));
  const at = options.at ?? new Date();
  for (const [i, domain] of domains.entries()) {
    const peersDir = domain.peersDir ?? federationSettings({ trust_bundle: domain.bundleFile }).peersDir;
    for (const [j, bundle] of bundles.entries()) if (i !== j) await writePeerRecord(peersDir, bundle, { at });
  }
}
