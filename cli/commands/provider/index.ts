/**
 * `fedlab deploy`, `fedlab deployment ls|show|delete` and `fedlab member
 * add|delegate|ls|revoke|remove`: a service provider's operators, against its ServiceProvider
 * API. `deploy` runs a command on every sliver of a slice made across sites
 * and shows per-sliver progress — a live table in a terminal, plain lines
 * otherwise, JSON lines with `--json`. `member delegate` writes the chain file
 * a member uses with `fedlab sliver exec|logs` (`--ssh-key` also puts the
 * member's SSH key on the slice); `member revoke` revokes one credential, `member remove` all.
 * Exit codes: 0 done (deploy: READY); 1 refused, unreachable, or the
 * deployment ended PARTIAL or FAILED; 2 bad input.
 */
import type { Command } from 'commander';
import { registerDeploy } from './deploy.js';
import { registerDeploymentDelete } from './deployment-delete.js';
import { registerDeploymentLs } from './deployment-ls.js';
import { registerDeploymentShow } from './deployment-show.js';
import { registerMemberAdd } from './member-add.js';
import { registerMemberDelegate } from './member-delegate.js';
import { registerMemberLs } from './member-ls.js';
import { registerMemberRemove } from './member-remove.js';
import { registerMemberRevoke } from './member-revoke.js';

/** Registers `fedlab deploy`, `fedlab deployment` and `fedlab member`. */
export function registerDeployCommands(program: Command): void {
  registerDeploy(program);

  const deployment = program.command('deployment').description("a provider's deployments: list, show, delete");
  registerDeploymentLs(deployment);
  registerDeploymentShow(deployment);
  registerDeploymentDelete(deployment);

  const member = program.command('member').description("a provider's members and their slice credentials");
  registerMemberAdd(member);
  registerMemberDelegate(member);
  registerMemberLs(member);
  registerMemberRevoke(member);
  registerMemberRemove(member);
}
