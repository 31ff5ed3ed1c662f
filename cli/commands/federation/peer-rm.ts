/** `fedlab federation peer rm`: a peered domain no longer trusted. */
import type { Command } from 'commander';
import { NotFoundError } from '../../../services/core/errors.js';
import { PeerDirectory } from '../../../services/core/federation/peers.js';
import { action } from '../../cli-support.js';
import { domainArg, serviceView, withDir, type DirFlags } from './peers-flags.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab federation peer rm`. */
export function registerPeerRm(peer: Command): void {
  withDir(
    peer
      .command('rm')
      .description('stop trusting a peered domain (running services drop it within their reload interval)')
      .argument('<domain>'),
  ).action(
    action(async (domain: string, flags: DirFlags) => {
      const view = serviceView(flags);
      const removed = await new PeerDirectory(view.peersDir).remove(domainArg(domain));
      if (!removed) throw new NotFoundError(`${domain} is not peered in ${view.peersDir}`);
      writeOut(`removed ${domain} from ${view.peersDir}\n`);
    }),
  );
}
