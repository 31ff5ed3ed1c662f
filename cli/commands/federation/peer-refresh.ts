/** `fedlab federation peer refresh`: peers' bundles refreshed now (a changed one only if it chains from the trusted one). */
import type { Command } from 'commander';
import { NotFoundError } from '../../../services/core/errors.js';
import { PeerDirectory, type PeerRecord } from '../../../services/core/federation/peers.js';
import { BundleRefresher } from '../../../services/core/federation/refresher.js';
import { createLogger } from '../../../services/core/log.js';
import { action, CliExit, EXIT_FAILURE, printJson } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { dialIdentity, domainArg, serviceView, withDial, type DialFlags } from './peers-flags.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab federation peer refresh`. */
export function registerPeerRefresh(peer: Command): void {
  withDial(
    peer
      .command('refresh')
      .description("refresh peers' bundles now (a changed bundle is accepted only if it chains from the trusted one)")
      .argument('[domain]'),
  )
    .option('--json', 'print JSON')
    .action(
      action(async (domain: string | undefined, flags: DialFlags & { json?: boolean }) => {
        const view = serviceView(flags);
        const identity = dialIdentity(flags, view);
        const dir = new PeerDirectory(view.peersDir);
        const records = domain
          ? [await dir.get(domainArg(domain))].filter((r): r is PeerRecord => r !== undefined)
          : (await dir.list()).records;
        if (domain && records.length === 0) throw new NotFoundError(`${domain} is not peered in ${view.peersDir}`);
        const refresher = new BundleRefresher({
          peersDir: view.peersDir,
          log: createLogger({ level: 'silent' }),
          ...(identity ? { identity } : {}),
          intervalMs: 0,
          deadlineMs: flags.timeout ? parseDuration(flags.timeout, '--timeout') * 1000 : 10_000,
        });
        const results = [];
        for (const r of records) results.push({ domain: r.domain, ...(await refresher.refreshOne(r)) });
        if (flags.json) printJson(results);
        else
          for (const r of results)
            writeOut(`${r.domain}: ${r.result}${r.fingerprint ? ` ${r.fingerprint}` : ''}${r.detail ? ` (${r.detail})` : ''}\n`);
        if (results.some((r) => r.result === 'refused' || r.result === 'unreachable'))
          throw new CliExit(EXIT_FAILURE, 'some peers were not refreshed; see above');
      }),
    );
}
