/**
 * Hosting one Fedlab service process: opens the store, loads TLS and the
 * trust bundle, starts the server with Federation plus the role's own
 * services, and stops them all in order. Entry points call this with a
 * compiled config; tests call it with a config they build.
 */
import { parseUrn } from './identity/urn.js';
import { loadTls, type CommonConfig } from './config.js';
import { FileBundleSource, type BundleSource } from './federation/bundle-source.js';
import { federationService } from './federation/federation-service.js';
import type { Logger } from './log.js';
import type { ServiceRegistration } from './rpc/adapter.js';
import { startServer, type TlsMaterial } from './rpc/server.js';
import { Store } from './store/store.js';

/** What a role gets to build its services from. */
export interface RoleDeps<C extends CommonConfig> {
  readonly config: Readonly<C>;
  readonly store: Store;
  readonly tls: TlsMaterial;
  readonly bundle: BundleSource;
  readonly log: Logger;
}

/** A role's services plus what to do when the process stops. */
export interface RoleServices {
  readonly registrations: readonly ServiceRegistration[];
  /** Runs after the server stopped and before the store closes (stop timers, children...). */
  readonly onStop?: () => Promise<void>;
}

/** A running service process. */
export interface HostedService {
  readonly port: number;
  readonly store: Store;
  stop(): Promise<void>;
}

/** Starts a service: Federation, health and reflection always; the role's services from `build`. */
export async function hostService<C extends CommonConfig>(
  config: Readonly<C>,
  log: Logger,
  build: (deps: RoleDeps<C>) => Promise<RoleServices> | RoleServices,
  options: { handleSignals?: boolean } = {},
): Promise<HostedService> {
  const domain = parseUrn(config.urn).domain;
  const tls = loadTls(config);
  const bundle = await FileBundleSource.open(config.trust_bundle, domain, log);
  const store = await Store.open(config.data_dir);
  let role: RoleServices;
  try {
    role = await build({ config, store, tls, bundle, log });
  } catch (err) {
    await store.close();
    throw err;
  }
  try {
    const server = await startServer(
      {
        host: config.listen.host,
        port: config.listen.port,
        tls,
        log,
        shutdownGraceMs: config.shutdown_grace_ms,
        handleSignals: options.handleSignals ?? false,
        onStop: [async () => role.onStop?.(), async () => store.close()],
      },
      [federationService(bundle), ...role.registrations],
    );
    return { port: server.port, store, stop: server.stop };
  } catch (err) {
    await role.onStop?.();
    await store.close();
    throw err;
  }
}
