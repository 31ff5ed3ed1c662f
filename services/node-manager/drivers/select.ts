/**
 * Choosing a sliver driver. `container` (runc) is the default wherever it can
 * work (root, user and other namespaces, cgroups v1 or v2, runc and a static
 * init program); otherwise `process`, which says plainly that it does not
 * isolate. `simulated` is only ever chosen by name.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FailedPreconditionError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { ImageStore } from '../runtime/images.js';
import { DEFAULT_RLIMITS, type SliverRlimits } from '../runtime/oci-spec.js';
import { findRunc, Runc } from '../runtime/runc.js';
import { SliverFiles } from '../runtime/sliver-files.js';
import { Cgroups, detectOwnCgroups, type CgroupLayout } from './cgroups.js';
import { ContainerDriver } from './container.js';
import type { DriverKind, SliverDriver } from './driver.js';
import { ProcessDriver } from './process.js';
import { SimulatedDriver } from './simulated.js';
import { WorkDirs } from './work-dirs.js';

/** The static program every sliver runs as its first process. */
export const DEFAULT_INIT = '/bin/busybox';
/** Where umoci is looked for. */
export const DEFAULT_UMOCI = '/usr/bin/umoci';

/** Whether the container driver can run here, and if not why. */
export type ContainerSupport =
  { readonly ok: true; readonly layout: CgroupLayout; readonly runc: string } | { readonly ok: false; readonly reason: string };

/** Checks root, namespaces, cgroups, runc and the init program the container driver needs. */
export function containerSupport(o: { runc?: string; init?: string } = {}): ContainerSupport {
  if (process.platform !== 'linux') return { ok: false, reason: `the container driver needs Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the container driver needs root (runc with user namespaces and cgroups)' };
  for (const ns of ['user', 'pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup']) {
    if (!existsSync(`/proc/self/ns/${ns}`)) return { ok: false, reason: `the kernel has no ${ns} namespaces` };
  }
  const runc = findRunc(o.runc);
  if (!runc.ok) return { ok: false, reason: runc.reason };
  const init = o.init ?? DEFAULT_INIT;
  if (!existsSync(init))
    return {
      ok: false,
      reason: `the container driver runs ${init} as each sliver's first process and it is missing; install it: apt-get install busybox-static`,
    };
  const layout = detectOwnCgroups();
  if ('reason' in layout) return { ok: false, reason: layout.reason };
  return { ok: true, layout, runc: runc.path };
}

/** Options of {@link createDriver}. */
export interface DriverOptions {
  /** `auto` picks container where it can run, else process. */
  readonly kind: DriverKind | 'auto';
  /** `<data_dir>/slivers`: the slivers' directories (bundles or work dirs). */
  readonly workRoot: string;
  /** This node manager's instance id. */
  readonly instance: string;
  /** Kept for older callers: every container sliver has its own network namespace. */
  readonly netNamespace?: boolean;
  readonly log: Logger;
  /** runc's path (found in the usual places when absent). */
  readonly runc?: string;
  /** umoci's path. */
  readonly umoci?: string;
  /** The static init program. */
  readonly init?: string;
  /** Where the owner places OCI image layouts. */
  readonly imagesDir?: string;
  readonly rlimits?: SliverRlimits;
  readonly startTimeoutMs?: number;
}

/** Builds the configured driver, or explains why it cannot run here. */
export function createDriver(o: DriverOptions): SliverDriver {
  if (o.kind === 'simulated') return new SimulatedDriver();
  const workDirs = new WorkDirs(o.workRoot);
  if (o.kind === 'process') return new ProcessDriver({ workDirs, instance: o.instance });
  const support = containerSupport({ ...(o.runc ? { runc: o.runc } : {}), ...(o.init ? { init: o.init } : {}) });
  if (support.ok) {
    const dataDir = dirname(o.workRoot);
    const images = new ImageStore({
      ...(o.imagesDir ? { imagesDir: o.imagesDir } : {}),
      storeDir: join(dataDir, 'images'),
      umoci: o.umoci ?? DEFAULT_UMOCI,
      log: o.log,
    });
    return new ContainerDriver({
      runc: new Runc(support.runc, join(dataDir, 'runc')),
      files: new SliverFiles({ root: o.workRoot, images, initBinary: o.init ?? DEFAULT_INIT }),
      images,
      cgroups: new Cgroups(support.layout, o.instance),
      rlimits: o.rlimits ?? DEFAULT_RLIMITS,
      log: o.log,
      ...(o.startTimeoutMs ? { startTimeoutMs: o.startTimeoutMs } : {}),
      relay: o.init ?? DEFAULT_INIT,
    });
  }
  if (o.kind === 'container') {
    throw new FailedPreconditionError(
      `driver "container" cannot run here: ${support.reason}; use driver "process" (no isolation) on this machine`,
    );
  }
  o.log.warn({ reason: support.reason }, 'container driver unavailable; using the process driver, which does NOT isolate slivers');
  return new ProcessDriver({ workDirs, instance: o.instance });
}
