/** `fedlab sliver stop`: stops a sliver on its node manager (ControlSliver STOP); it keeps its resources and can be started again. */
import type { Command } from 'commander';
import { registerSliverControl } from './sliver-control.js';

/** Registers `fedlab sliver stop`. */
export function registerSliverStop(sliver: Command): void {
  registerSliverControl(sliver, 'stop', 'stop a sliver on its node manager, keeping it to start again (needs sliver.control)');
}
