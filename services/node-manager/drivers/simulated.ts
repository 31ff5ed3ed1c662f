/**
 * The `simulated` driver: bookkeeping only, for control-plane scale
 * benchmarks. Nothing runs and nothing is written outside the store; slivers
 * are labelled SIMULATED everywhere, and the driver is never chosen by default.
 */
import { FailedPreconditionError } from '../../core/errors.js';
import { checkHostOnlyImage, type DriverSliver, type ExecChunk, type RuntimeRef, type SliverDriver, type SliverMeasure } from './driver.js';

/** The simulated driver. */
export class SimulatedDriver implements SliverDriver {
  readonly kind = 'simulated' as const;
  readonly description = 'simulated: bookkeeping only, nothing runs (control-plane benchmarks)';

  async init(): Promise<void> {}

  workDir(): undefined {
    return undefined;
  }

  async provision(_s: DriverSliver): Promise<void> {}

  async start(_s: DriverSliver): Promise<RuntimeRef> {
    return { pid: 0, startTicks: 0 };
  }

  async isRunning(_s: DriverSliver, _ref: RuntimeRef): Promise<boolean> {
    return true;
  }

  async stop(_s: DriverSliver, _ref: RuntimeRef | undefined): Promise<void> {}

  async destroy(_name: string): Promise<void> {}

  exec(s: DriverSliver): AsyncIterable<ExecChunk> {
    throw new FailedPreconditionError(
      `sliver ${s.urn} is simulated and runs nothing; Exec needs a node with the container or process driver`,
    );
  }

  async measure(_s: DriverSliver): Promise<SliverMeasure | undefined> {
    return undefined;
  }

  async diskUsageBytes(_name: string): Promise<number> {
    return 0;
  }

  images(): string[] {
    return ['host'];
  }

  checkImage(image: string): void {
    checkHostOnlyImage(this.kind, image);
  }

  async listArtifacts(): Promise<string[]> {
    return [];
  }

  async purge(): Promise<void> {}

  async releaseIdle(): Promise<void> {}
}
