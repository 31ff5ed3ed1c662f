/** `fedlab federation peer ls`: the peered domains. */
import type { Command } from 'commander';
import { PeerDirectory } from '../../../services/core/federation/peers.js';
import { action, printJson } from '../../cli-support.js';
import { serviceView, summary, withDir, type DirFlags } from './peers-flags.js';
import { writeOut, writeErr } from '../../printable.js';

function table(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Registers `fedlab federation peer ls`. */
export function registerPeerLs(peer: Command): void {
  withDir(peer.command('ls').description('list the peered domains'))
    .option('--json', 'print JSON')
    .action(
      action(async (flags: DirFlags & { json?: boolean }) => {
        const view = serviceView(flags);
        const { records, errors } = await new PeerDirectory(view.peersDir).list();
        if (flags.json) {
          printJson({ peers_dir: view.peersDir, peers: records.map(summary), unreadable: errors });
          return;
        }
        if (records.length === 0) writeOut(`no peers in ${view.peersDir}\n`);
        else {
          const rows = [
            ['DOMAIN', 'ENDPOINT', 'SERIAL', 'FINGERPRINT', 'LAST REFRESH'],
            ...records.map((r) => [
              r.domain,
              r.endpoint,
              String(r.bundle.serial),
              r.fingerprint,
              r.last_refresh ? `${r.last_refresh.result} ${r.last_refresh.at}` : 'never',
            ]),
          ];
          writeOut(`${table(rows)}\n`);
        }
        for (const e of errors) writeErr(`fedlab: ${e.error} (not trusted)\n`);
      }),
    );
}
