/**
 * `fedlab federation peer add|ls|show|rm|refresh`: a domain's peers, kept in
 * the peers directory its services share (`federation.peers_dir`; by default
 * `peers/` beside the service's `trust_bundle`). `add` fetches the peer's
 * bundle with Federation.GetBundle, authenticated by the fingerprint the
 * peer's admin gave out of band, and stores it only when everything checks;
 * running services pick changes up without a restart.
 * `fedlab federation check` (check.ts) compares a slice authority's books with
 * its sites' and their nodes' and prints the fix of every difference.
 * Exit codes: 0 done; 1 the peer refused, could not be reached, or served a
 * bundle that does not match the pin; 2 bad input.
 */
import type { Command } from 'commander';
import { registerFederationCheck } from './check.js';
import { registerPeerAdd } from './peer-add.js';
import { registerPeerLs } from './peer-ls.js';
import { registerPeerRefresh } from './peer-refresh.js';
import { registerPeerRm } from './peer-rm.js';
import { registerPeerShow } from './peer-show.js';

/** Registers `fedlab federation`. */
export function registerFederationCommand(program: Command): void {
  const federation = program
    .command('federation')
    .description('peering with other domains (each with its own CA), and checking a federation for consistency');
  const peer = federation.command('peer').description("the domains this domain's services trust, each pinned by its bundle fingerprint");
  registerPeerAdd(peer);
  registerPeerLs(peer);
  registerPeerShow(peer);
  registerPeerRm(peer);
  registerPeerRefresh(peer);
  registerFederationCheck(federation);
}
