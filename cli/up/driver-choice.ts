/** Which sliver driver the node managers of a local federation run with: container where it can run, else process. */
import { FailedPreconditionError } from '../../services/core/errors.js';
import { containerSupport } from '../../services/node-manager/drivers/select.js';

/** The sliver driver the node managers run with, and why. */
export interface DriverChoice {
  readonly kind: 'container' | 'process';
  /** Why not the container driver, when it is `process`. */
  readonly reason?: string;
}

/** Chooses the node managers' driver: container where it can run (root, cgroups), else process. */
export function chooseDriver(asked: 'auto' | 'container' | 'process' = 'auto'): DriverChoice {
  if (asked === 'process') return { kind: 'process', reason: 'asked for with --driver process' };
  const support = containerSupport();
  if (support.ok) return { kind: 'container' };
  if (asked === 'container') throw new FailedPreconditionError(`the container driver cannot run here: ${support.reason}`);
  return { kind: 'process', reason: support.reason };
}
