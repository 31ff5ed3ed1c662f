/**
 * The public bundle endpoint (`federation.bundle_listen`): TLS with server
 * authentication only, serving Federation.GetBundle and nothing else. A
 * domain that is not peered yet cannot pass our mutual TLS, so its admin
 * fetches our bundle here and checks it against the fingerprint we gave out of
 * band (`fedlab federation peer add`). A bundle is public: it holds CA
 * certificates and public keys only.
 */
import { FederationService, type GetBundleRequest } from '../../generated/fedlab/v1/federation.js';
import type { Logger } from '../log.js';
import { startPublicListener, type PublicListener } from '../rpc/public-listener.js';
import type { TlsMaterial } from '../rpc/server.js';
import type { BundleSource } from './bundle-source.js';
import { bundleResponse } from './federation-service.js';

/** A running bundle endpoint. */
export type BundleListener = PublicListener;

/** Starts the public bundle endpoint. */
export async function startBundleListener(options: {
  readonly host: string;
  readonly port: number;
  readonly tls: Pick<TlsMaterial, 'cert' | 'key'>;
  readonly bundle: BundleSource;
  readonly log: Logger;
  /** Most connections one client address may hold open (config `server.max_connections_per_address`). */
  readonly maxConnectionsPerAddress?: number;
}): Promise<BundleListener> {
  const listener = await startPublicListener({
    host: options.host,
    port: options.port,
    tls: options.tls,
    log: options.log,
    setting: 'federation.bundle_listen',
    name: 'bundle',
    ...(options.maxConnectionsPerAddress !== undefined ? { maxConnectionsPerAddress: options.maxConnectionsPerAddress } : {}),
    methods: {
      getBundle: {
        definition: FederationService.getBundle,
        originalName: 'GetBundle',
        handle: (req: GetBundleRequest) => bundleResponse(options.bundle, req),
      },
    },
  });
  options.log.info({ address: `${options.host}:${listener.port}` }, 'bundle endpoint listening');
  return listener;
}
