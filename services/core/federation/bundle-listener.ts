/**
 * The public bundle endpoint (`federation.bundle_listen`): TLS with server
 * authentication only, serving Federation.GetBundle and nothing else. A
 * domain that is not peered yet cannot pass our mutual TLS, so its admin
 * fetches our bundle here and checks it against the fingerprint we gave out of
 * band (`fedlab federation peer add`). A bundle is public: it holds CA
 * certificates and public keys only.
 */
import { performance } from 'node:perf_hooks';
import { Server, ServerCredentials, status as Status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { FederationService, type GetBundleRequest, type GetBundleResponse } from '../../generated/fedlab/v1/federation.js';
import type { Logger } from '../log.js';
import { bindServer } from '../rpc/bind.js';
import type { TlsMaterial } from '../rpc/server.js';
import { toGrpcStatus } from '../rpc/status.js';
import type { BundleSource } from './bundle-source.js';
import { bundleResponse } from './federation-service.js';

/** A running bundle endpoint. */
export interface BundleListener {
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts the public bundle endpoint. */
export async function startBundleListener(o: { readonly host: string; readonly port: number; readonly tls: Pick<TlsMaterial, 'cert' | 'key'>; readonly bundle: BundleSource; readonly log: Logger }): Promise<BundleListener> {
  const server = new Server({ 'grpc.enable_channelz': 0 });
  const def = FederationService.getBundle;
  server.addService(
    { getBundle: { ...def, originalName: 'GetBundle' } } as never,
    {
      getBundle: (call: ServerUnaryCall<GetBundleRequest, GetBundleResponse>, callback: sendUnaryData<GetBundleResponse>) => {
        const started = performance.now();
        bundleResponse(o.bundle, call.request).then(
          (res) => {
            o.log.info({ method: def.path, listener: 'bundle', code: 'OK', ms: Math.round((performance.now() - started) * 10) / 10 }, 'rpc');
            callback(null, res);
          },
          (err: unknown) => {
            const st = toGrpcStatus(err, o.log, def.path);
            o.log.info({ method: def.path, listener: 'bundle', code: Status[st.code] }, 'rpc');
            callback(st);
          },
        );
      },
    },
  );
  const creds = ServerCredentials.createSsl(null, [{ private_key: Buffer.from(o.tls.key), cert_chain: Buffer.from(o.tls.cert) }], false);
  const port = await bindServer(server, o.host, o.port, creds, { setting: 'federation.bundle_listen' });
  o.log.info({ address: `${o.host}:${port}` }, 'bundle endpoint listening');
  let stopping: Promise<void> | undefined;
  return {
    port,
    stop: () => {
      stopping ??= new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      return stopping;
    },
  };
}
