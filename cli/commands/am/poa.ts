/** `fedlab am poa ACTION`: PerformOperationalAction — start, stop, restart, swap-out, swap-in, update-users. */
import { Argument, type Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { OperationalAction } from '../../../services/generated/fedlab/v1/aggregate.js';
import { action } from '../../cli-support.js';
import { repeatable } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { sliceUserFromFlags } from '../slice/slice-user-flags.js';
import { amChain, checkUrns, withAm, withAmClient, type AmFlags } from './am-client.js';
import { printResults } from './am-view.js';

const ACTIONS: Record<string, OperationalAction> = {
  start: OperationalAction.OPERATIONAL_ACTION_START,
  stop: OperationalAction.OPERATIONAL_ACTION_STOP,
  restart: OperationalAction.OPERATIONAL_ACTION_RESTART,
  'swap-out': OperationalAction.OPERATIONAL_ACTION_SWAP_OUT,
  'swap-in': OperationalAction.OPERATIONAL_ACTION_SWAP_IN,
  'update-users': OperationalAction.OPERATIONAL_ACTION_UPDATE_USERS,
};

/** Registers `fedlab am poa`. */
export function registerAmPoa(am: Command): void {
  withAm(
    am
      .command('poa')
      .description('perform an operational action on slivers: start, stop, restart, swap-out, swap-in (emulab), update-users')
      .addArgument(new Argument('<action>', 'the action').choices(Object.keys(ACTIONS)))
      .argument('<urns...>', 'a slice URN, or sliver URNs of one slice')
      .option('--best-effort', 'act where possible and report the rest (default: all or nothing)')
      .option('--ssh-key <file>', "update-users: the slice user's SSH public key (repeatable)", repeatable, [])
      .option('--user <urn>', 'update-users: whose --ssh-key it is (default: you)'),
    true,
  ).action(
    action(async (name: string, urns: string[], flags: AmFlags & { bestEffort?: boolean; sshKey: string[]; user?: string }) => {
      const op = ACTIONS[name] as OperationalAction;
      const user = sliceUserFromFlags(flags);
      if (user && op !== OperationalAction.OPERATIONAL_ACTION_UPDATE_USERS)
        throw new InvalidArgumentError('--ssh-key and --user go with update-users only');
      const req = { urns: checkUrns(urns), action: op, bestEffort: flags.bestEffort === true, users: user ? [user] : [] };
      const chain = amChain(flags);
      const res = await withAmClient(flags, (c) =>
        c.performOperationalAction(req, { chain }).catch((err: unknown) => refused(err, `${name} failed`)),
      );
      printResults(flags.json, res.results);
    }),
  );
}
