/**
 * `fedlab sliver ls|show|start|stop|renew|exec|logs|delete`: a slice's provider or member, directly
 * against a node manager, with a slice credential chain file (`fedlab member delegate`) held by the
 * caller's own certificate — or the node's operator with a chain rooted at its owner. `ls` lists
 * the node's slivers (one slice's with `--slice`), `show` one sliver, `start`/`stop`/`renew` control
 * it and move its expiry (ListSlivers, GetSliver, ControlSliver, RenewSliver). `exec` streams the command's output
 * and exits with its exit code; `logs` prints the last output lines the node
 * manager kept for the sliver (GetSliverOutput). `ssh-config` reads a slice at
 * its slice authority and prints the OpenSSH client config (and known_hosts
 * lines) for logging in to its slivers with any OpenSSH client.
 * Exit codes: exec — the command's own (128 + n when killed by signal n);
 * otherwise 0 done, 1 refused or unreachable, 2 bad input.
 */
import type { Command } from 'commander';
import { registerSliverExec } from './exec.js';
import { registerSliverDelete } from './delete.js';
import { registerSliverLogs } from './logs.js';
import { registerSliverSshConfig } from './ssh-config.js';
import { registerSliverLs } from './ls.js';
import { registerSliverShow } from './show.js';
import { registerSliverStart } from './start.js';
import { registerSliverStop } from './stop.js';
import { registerSliverRenew } from './renew.js';

/** Registers `fedlab sliver`. */
export function registerSliverCommand(program: Command): void {
  const sliver = program.command('sliver').description('use a sliver directly on its node manager with a slice credential');
  registerSliverLs(sliver);
  registerSliverShow(sliver);
  registerSliverStart(sliver);
  registerSliverStop(sliver);
  registerSliverRenew(sliver);
  registerSliverExec(sliver);
  registerSliverLogs(sliver);
  registerSliverDelete(sliver);
  registerSliverSshConfig(sliver);
}
