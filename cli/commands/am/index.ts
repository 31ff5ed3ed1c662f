/**
 * `fedlab am`: a site's Aggregate API from the command line, one command per call as omni has them —
 * getversion, listresources, describe, allocate, provision, poa, status, renew, delete, shutdown.
 * The site is `--address` (or a profile's `--ma`); the calls on slices show `--chain` (the slice
 * authority's MA → SA chain for that site) and are made with the slice authority's TLS identity.
 * Exit codes: 0 done (every sliver OK); 1 refused, unreachable, or a sliver failed; 2 bad input.
 */
import type { Command } from 'commander';
import { registerAmAllocate } from './allocate.js';
import { registerAmDelete } from './delete.js';
import { registerAmDescribe } from './describe.js';
import { registerAmGetVersion } from './getversion.js';
import { registerAmListResources } from './listresources.js';
import { registerAmPoa } from './poa.js';
import { registerAmProvision } from './provision.js';
import { registerAmRenew } from './renew.js';
import { registerAmShutdown } from './shutdown.js';
import { registerAmStatus } from './status.js';

/** Registers `fedlab am`. */
export function registerAmCommand(program: Command): void {
  const am = program.command('am').description("a site's Aggregate API (GENI AM API v3), one command per call");
  registerAmGetVersion(am);
  registerAmListResources(am);
  registerAmDescribe(am);
  registerAmAllocate(am);
  registerAmProvision(am);
  registerAmPoa(am);
  registerAmStatus(am);
  registerAmRenew(am);
  registerAmDelete(am);
  registerAmShutdown(am);
}
