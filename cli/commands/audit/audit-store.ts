/**
 * Opening a service's store for `fedlab audit`: read from its data directory
 * while the service is stopped (LevelDB lets one process hold a store).
 */
import { Store } from '../../../services/core/store/store.js';
import { readServiceConfig } from '../backup/service-config.js';

/** Runs `fn` over the store of the service that `configFile` describes, then closes it. */
export async function withServiceStore<T>(configFile: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const config = readServiceConfig(configFile);
  const store = await Store.open(config.data_dir);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
