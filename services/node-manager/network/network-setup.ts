/**
 * Wiring the sliver network into a node manager at start: the driver is
 * wrapped when the config has a `network` section and the driver is the
 * container driver (the others give slivers no network namespace of their
 * own: the section is ignored with a warning), and after the slivers are
 * reconciled the network of every provisioned sliver is restored and what no
 * record explains removed.
 */
import type { Logger } from '../../core/log.js';
import { ContainerDriver } from '../drivers/container.js';
import type { SliverDriver } from '../drivers/driver.js';
import type { SliverRecord } from '../records.js';
import { NetworkedDriver } from './networked-driver.js';
import type { NetworkConfig } from './network-config.js';
import { SliverNetwork } from './sliver-network.js';
import type { NetworkSliver } from './sliver-wiring.js';

/** The driver with the sliver network around it, or the driver as it is when there is none. */
export async function withSliverNetwork(
  driver: SliverDriver,
  config: NetworkConfig | undefined,
  instance: string,
  log: Logger,
): Promise<SliverDriver> {
  if (!config) return driver;
  if (!(driver instanceof ContainerDriver)) {
    log.warn({ driver: driver.kind }, 'the network section is ignored: only container slivers have network namespaces to wire');
    return driver;
  }
  const network = await SliverNetwork.open(config, instance, log);
  const { plan } = network;
  log.info(
    {
      bridge: plan.bridge,
      uplink: plan.uplink,
      nodeAddress: plan.nodeAddress,
      ports: `${plan.firstPort}-${plan.lastPort}`,
      slivers: plan.capacity,
    },
    'sliver network planned',
  );
  return new NetworkedDriver(driver, network);
}

/** The network's view of a record. */
export function networkSliver(rec: SliverRecord): NetworkSliver {
  return { name: rec.name, urn: rec.urn, sliceUrn: rec.sliceUrn, ...(rec.ids ? { ids: rec.ids } : {}) };
}

/** After reconcile: re-wires every running sliver's network and removes what no running sliver explains. */
export async function restoreSliverNetwork(driver: SliverDriver, records: readonly SliverRecord[], log: Logger): Promise<void> {
  if (!(driver instanceof NetworkedDriver)) return;
  const running = records.flatMap((r) =>
    r.runtime && r.wantRunning && r.operational === 'ready' && !r.deleting ? [{ sliver: networkSliver(r), pid: r.runtime.pid }] : [],
  );
  const r = await driver.network.restore(running);
  log.info({ restored: r.restored.length, removed: r.removed }, 'sliver network restored');
  for (const f of r.failed) log.error({ sliver: f.name, err: f.error }, 'could not restore the network of a sliver');
}

/** The node's underlay address, when the network section names one (reported to the MA for links). */
export function underlayAddressOf(driver: SliverDriver): string | undefined {
  return driver instanceof NetworkedDriver ? driver.network.plan.underlayAddress : undefined;
}
