/**
 * Choosing a sliver driver. `container` is the default wherever it can work
 * (root, cgroups v1 or v2, and the namespace tools); otherwise `process`, which
 * says plainly that it does not isolate. `simulated` is only ever chosen by name.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FailedPreconditionError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { Cgroups, detectOwnCgroups, type CgroupLayout } from './cgroups.js';
import { ContainerDriver } from './container.js';
import type { DriverKind, SliverDriver } from './driver.js';
import { ProcessDriver } from './process.js';
import { SimulatedDriver } from './simulated.js';
import { WorkDirs } from './work-dirs.js';

/** The programs the container driver runs. */
const CONTAINER_TOOLS = ['unshare', 'nsenter', 'setpriv', 'sleep'];

function onPath(program: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

/** Whether the container driver can run here, and if not why. */
export type ContainerSupport = { readonly ok: true; readonly layout: CgroupLayout } | { readonly ok: false; readonly reason: string };

/** Checks root, namespaces, cgroups and the tools the container driver needs. */
export function containerSupport(): ContainerSupport {
  if (process.platform !== 'linux') return { ok: false, reason: `the container driver needs Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the container driver needs root (namespaces and cgroups)' };
  for (const ns of ['pid', 'mnt', 'uts', 'ipc']) {
    if (!existsSync(`/proc/self/ns/${ns}`)) return { ok: false, reason: `the kernel has no ${ns} namespaces` };
  }
  const missing = CONTAINER_TOOLS.filter((t) => !onPath(t));
  if (missing.length) return { ok: false, reason: `the container driver needs ${missing.join(', ')} (util-linux, coreutils) on PATH` };
  const layout = detectOwnCgroups();
  if ('reason' in layout) return { ok: false, reason: layout.reason };
  return { ok: true, layout };
}

/** Options of {@link createDriver}. */
export interface DriverOptions {
  /** `auto` picks container where it can run, else process. */
  readonly kind: DriverKind | 'auto';
  /** Root of the slivers' work directories. */
  readonly workRoot: string;
  /** This node manager's instance id. */
  readonly instance: string;
  readonly netNamespace: boolean;
  readonly log: Logger;
}

/** Builds the configured driver, or explains why it cannot run here. */
export function createDriver(o: DriverOptions): SliverDriver {
  if (o.kind === 'simulated') return new SimulatedDriver();
  const workDirs = new WorkDirs(o.workRoot);
  if (o.kind === 'process') return new ProcessDriver({ workDirs, instance: o.instance });
  const support = containerSupport();
  if (support.ok) {
    return new ContainerDriver({ cgroups: new Cgroups(support.layout, o.instance), workDirs, instance: o.instance, netNamespace: o.netNamespace, log: o.log });
  }
  if (o.kind === 'container') {
    throw new FailedPreconditionError(`driver "container" cannot run here: ${support.reason}; use driver "process" (no isolation) on this machine`);
  }
  o.log.warn({ reason: support.reason }, 'container driver unavailable; using the process driver, which does NOT isolate slivers');
  return new ProcessDriver({ workDirs, instance: o.instance });
}
