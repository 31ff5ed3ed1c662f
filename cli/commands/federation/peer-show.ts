/** `fedlab federation peer show`: one peer's record (pin, trusted bundle, authorities, last refresh). */
import type { Command } from 'commander';
import { NotFoundError } from '../../../services/core/errors.js';
import { PeerDirectory } from '../../../services/core/federation/peers.js';
import { action, printJson } from '../../cli-support.js';
import { domainArg, serviceView, summary, withDir, type DirFlags } from './peers-flags.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab federation peer show`. */
export function registerPeerShow(peer: Command): void {
  withDir(peer.command('show').description("one peer's record: pin, trusted bundle, authorities, last refresh").argument('<domain>'))
    .option('--json', 'print JSON')
    .action(
      action(async (domain: string, flags: DirFlags & { json?: boolean }) => {
        const view = serviceView(flags);
        const r = await new PeerDirectory(view.peersDir).get(domainArg(domain));
        if (!r) throw new NotFoundError(`${domain} is not peered in ${view.peersDir}`);
        if (flags.json) {
          printJson({ ...summary(r), ca_certs: r.bundle.ca_certs });
          return;
        }
        const lines = [
          `domain              ${r.domain}`,
          `endpoint            ${r.endpoint}`,
          `pinned              ${r.pinned_fingerprint} at ${r.pinned_at}`,
          `trusted bundle      ${r.fingerprint} (serial ${r.bundle.serial}, accepted ${r.accepted_at})`,
          `CA certificates     ${r.bundle.ca_certs.length}`,
          `authorities         ${r.bundle.authorities.map((a) => `${a.urn} (${a.kid})`).join('\n                    ') || 'none'}`,
          `revocation version  ${r.bundle.revocation_version}`,
          `last refresh        ${r.last_refresh ? `${r.last_refresh.result} at ${r.last_refresh.at}${r.last_refresh.fingerprint ? ` (${r.last_refresh.fingerprint})` : ''}${r.last_refresh.detail ? `: ${r.last_refresh.detail}` : ''}` : 'never'}`,
        ];
        writeOut(`${lines.join('\n')}\n`);
      }),
    );
}
