/**
 * `fedlab site delegate|revoke`: a site administrator's delegation of slice
 * creation to a slice authority (the site's own or a peered domain's, as the
 * MA's `delegation_policy` allows), and revocation. `delegate` calls
 * DelegateToSliceAuthority and writes the `MA → SA` chain file the slice
 * authority reads (one compact JWS per line, root first).
 * Exit codes: 0 done; 1 the MA refused or could not be reached; 2 bad input.
 */
import type { Command } from 'commander';
import { registerSiteDelegate } from './delegate.js';
import { registerSiteRelease } from './release.js';
import { registerSiteRevoke } from './revoke.js';

/** Registers `fedlab site`. */
export function registerSiteCommand(program: Command): void {
  const site = program.command('site').description("a site administrator's delegations to slice authorities");
  registerSiteDelegate(site);
  registerSiteRevoke(site);
  registerSiteRelease(site);
}
