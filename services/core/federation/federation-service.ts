/** The `Federation` service: serves this domain's trust bundle to peers. */
import { FederationService, type GetBundleRequest, type GetBundleResponse } from '../../generated/fedlab/v1/federation.js';
import { defineService, type ServiceRegistration } from '../rpc/adapter.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { isValidDomain } from '../identity/urn.js';
import type { BundleSource } from './bundle-source.js';

/** The answer to GetBundle (shared by the mutual-TLS service and the public bundle endpoint). */
export async function bundleResponse(source: BundleSource, request: GetBundleRequest): Promise<GetBundleResponse> {
  const domain = request.domain.trim();
  if (domain !== '' && !isValidDomain(domain)) {
    throw new InvalidArgumentError(
      `domain ${JSON.stringify(domain.slice(0, 80))} is not a lower-case DNS name; leave it empty for this server's own bundle`,
    );
  }
  if (domain !== '' && domain !== source.domain) {
    throw new NotFoundError(`this server publishes only the bundle of ${source.domain}; ask a server of ${domain} for its own`);
  }
  const { bundle, json, fingerprint } = await source.current();
  return { domain: bundle.domain, serial: bundle.serial, fingerprint, bundleJson: json };
}

/** The Federation registration for a server of domain `source.domain`. */
export function federationService(source: BundleSource): ServiceRegistration {
  return defineService(FederationService, {
    async getBundle(request) {
      return bundleResponse(source, request);
    },
  });
}
