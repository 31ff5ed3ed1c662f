/** `fedlab federation peer add`: a peer's bundle fetched, checked against the pinned fingerprint, and stored. */
import type { Command } from 'commander';
import { pinPeer } from '../../../services/core/federation/bundle-client.js';
import { PeerDirectory } from '../../../services/core/federation/peers.js';
import { action, printJson } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { dialIdentity, domainArg, serviceView, summary, withDial, type DialFlags } from './peers-flags.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab federation peer add`. */
export function registerPeerAdd(peer: Command): void {
  withDial(
    peer.command('add').description("fetch a peer's bundle, check it against the pinned fingerprint, and store it (re-running it re-pins)"),
  )
    .requiredOption('--domain <domain>', "the peer's domain (e.g. emu.test)")
    .requiredOption(
      '--endpoint <host:port>',
      'a server of the peer serving Federation.GetBundle (its public bundle endpoint, or its mutual-TLS port if it already trusts you)',
    )
    .requiredOption(
      '--fingerprint <sha256>',
      "the peer bundle's fingerprint, given by its admin out of band (`fedlab certs bundle` prints it)",
    )
    .option('--json', 'print JSON')
    .action(
      action(async (flags: DialFlags & { domain: string; endpoint: string; fingerprint: string; json?: boolean }) => {
        const view = serviceView(flags);
        const identity = dialIdentity(flags, view);
        const record = await pinPeer({
          domain: domainArg(flags.domain),
          endpoint: flags.endpoint,
          fingerprint: flags.fingerprint,
          ...(identity ? { identity } : {}),
          ...(view.domain ? { ownDomain: view.domain } : {}),
          deadlineMs: flags.timeout ? parseDuration(flags.timeout, '--timeout') * 1000 : 10_000,
        });
        const dir = new PeerDirectory(view.peersDir);
        const before = await dir.get(record.domain).catch(() => undefined);
        await dir.put(record);
        if (flags.json) printJson({ ...summary(record), peers_dir: view.peersDir, repinned: before !== undefined });
        else {
          writeOut(
            `${before ? 're-pinned' : 'peered with'} ${record.domain}: bundle ${record.fingerprint} (serial ${record.bundle.serial}, ${record.bundle.ca_certs.length} CA certificate(s), ${record.bundle.authorities.length} authorit${record.bundle.authorities.length === 1 ? 'y' : 'ies'})\n` +
              `stored in ${view.peersDir}; running services pick it up within their reload interval\n`,
          );
        }
      }),
    );
}
