/**
 * The container driver with the sliver network around it: at every start,
 * once runc has made the container's namespaces and before the sliver runs,
 * its interfaces are wired (the seam: {@link SliverNetwork.wire} and its
 * wirers); a stop or destroy removes its interfaces, rules and namespace name.
 * Stopping the node manager keeps every running sliver's network. What the
 * network has of a sliver counts among its artifacts, so reconcile removes
 * what no record explains.
 */
import type { ContainerDriver, ContainerSliver } from '../drivers/container.js';
import type {
  AttachedCommand,
  AttachSpec,
  DriverSliver,
  ExecChunk,
  ExecSpec,
  RuntimeRef,
  SliverDriver,
  SliverMeasure,
} from '../drivers/driver.js';
import type { SliverNetwork } from './sliver-network.js';

/** A {@link ContainerDriver} whose slivers have the node's sliver network. */
export class NetworkedDriver implements SliverDriver {
  readonly kind: SliverDriver['kind'];
  readonly description: string;

  constructor(
    private readonly inner: ContainerDriver,
    readonly network: SliverNetwork,
  ) {
    this.kind = inner.kind;
    this.description = `${inner.description}; eth0 on the node's sliver bridge (NAT out, forwarded ports in, slices apart) in a network namespace the sliver cannot reconfigure`;
  }

  async init(): Promise<void> {
    await this.inner.init();
    await this.network.init();
  }

  workDir(_name: string): string | undefined {
    return this.inner.workDir();
  }

  provision(s: DriverSliver): Promise<void> {
    return this.inner.provision(s);
  }

  start(s: DriverSliver): Promise<RuntimeRef> {
    // The seam: the container's namespace exists and every interface is wired before the sliver runs.
    const sliver: ContainerSliver = {
      ...s,
      onCreated: async (pid) => {
        await this.network.wire(s, pid);
      },
    };
    return this.inner.start(sliver);
  }

  isRunning(s: DriverSliver, ref: RuntimeRef): Promise<boolean> {
    return this.inner.isRunning(s, ref);
  }

  async stop(s: DriverSliver, ref: RuntimeRef | undefined): Promise<void> {
    await this.inner.stop(s, ref);
    await this.network.unwire(s.name);
  }

  async destroy(name: string): Promise<void> {
    // The container first: nothing of the sliver's runs in the namespace when it goes.
    await this.inner.destroy(name);
    await this.network.unwire(name);
  }

  exec(s: DriverSliver, ref: RuntimeRef, spec: ExecSpec, signal: AbortSignal): AsyncIterable<ExecChunk> {
    return this.inner.exec(s, ref, spec, signal);
  }

  attach(s: DriverSliver, ref: RuntimeRef, spec: AttachSpec): Promise<AttachedCommand> {
    return this.inner.attach(s, ref, spec);
  }

  connect(s: DriverSliver, ref: RuntimeRef, host: string, port: number): Promise<AttachedCommand> {
    return this.inner.connect(s, ref, host, port);
  }

  measure(s: DriverSliver): Promise<SliverMeasure | undefined> {
    return this.inner.measure(s);
  }

  diskUsageBytes(name: string): Promise<number> {
    return this.inner.diskUsageBytes(name);
  }

  images(): string[] {
    return this.inner.images();
  }

  checkImage(image: string): void {
    this.inner.checkImage(image);
  }

  async listArtifacts(): Promise<string[]> {
    return [...new Set([...(await this.inner.listArtifacts()), ...(await this.network.list())])];
  }

  async purge(): Promise<void> {
    await this.inner.purge();
    await this.network.purge();
  }

  releaseIdle(): Promise<void> {
    return this.inner.releaseIdle();
  }
}
