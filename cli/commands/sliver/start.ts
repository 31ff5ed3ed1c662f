/** `fedlab sliver start`: starts a provisioned sliver on its node manager (ControlSliver START). */
import type { Command } from 'commander';
import { registerSliverControl } from './sliver-control.js';

/** Registers `fedlab sliver start`. */
export function registerSliverStart(sliver: Command): void {
  registerSliverControl(sliver, 'start', 'start a provisioned sliver on its node manager (needs sliver.control)');
}
