/** `fedlab slice renew`: a slice's expiry moved; each site grants what its maximum and its MA → SA chain allow. */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { Slice } from '../../../services/generated/fedlab/v1/slice_authority.js';
import { action, CliExit, EXIT_FAILURE, printJson } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { resolveSlice, saClient, withConn, type ConnFlags } from './sa-client.js';
import { table } from '../../text-table.js';
import { codeName } from '../../remote.js';
import { time } from './slice-view.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab slice renew`. */
export function registerSliceRenew(slice: Command): void {
  withConn(
    slice
      .command('renew <slice>')
      .description('move a slice’s expiry; each site grants what its maximum and its MA → SA chain allow')
      .option('--lifetime <duration>', 'new expiry from now, e.g. 14d')
      .option('--until <time>', 'new expiry, an RFC 3339 time')
      .option('--best-effort', 'renew where possible and report the rest'),
  ).action(
    action(async (ref: string, flags: ConnFlags & { lifetime?: string; until?: string; bestEffort?: boolean }) => {
      if ((flags.lifetime === undefined) === (flags.until === undefined))
        throw new InvalidArgumentError('give exactly one of --lifetime and --until');
      const at = flags.lifetime ? Date.now() + parseDuration(flags.lifetime, '--lifetime') * 1000 : Date.parse(flags.until as string);
      if (!Number.isFinite(at))
        throw new InvalidArgumentError(`--until ${JSON.stringify(flags.until)} is not a time (e.g. 2026-12-01T00:00:00Z)`);
      const client = saClient(flags);
      try {
        const urn = await resolveSlice(client, ref);
        const res = await client
          .renewSlice({ sliceUrn: urn, expiresAt: new Date(at), bestEffort: flags.bestEffort ?? false })
          .catch((err: unknown) => refused(err, `cannot renew slice ${urn}`));
        const renewed = res.slice as Slice;
        if (flags.json) {
          printJson({
            slice: Slice.toJSON(renewed),
            results: res.results.map((r) => ({ site: r.site, code: r.status?.code ?? 0, reason: r.status?.reason ?? '' })),
          });
        } else {
          const rows = renewed.sites.map((x) => {
            const r = res.results.find((y) => y.site === x.site);
            const granted = x.expiresAt?.getTime();
            const note = r?.status?.code
              ? `${codeName(r.status.code)}: ${r.status.reason}`
              : granted !== undefined && granted < at - 1000
                ? 'capped by the site (its maximum or its MA → SA chain)'
                : '';
            return [x.site, time(x.expiresAt), note];
          });
          writeOut(`${table(['SITE', 'EXPIRES (granted)', 'NOTE'], rows)}\nslice ${renewed.urn} now expires ${time(renewed.expiresAt)}\n`);
        }
        const failed = res.results.filter((r) => r.status?.code);
        if (failed.length)
          throw new CliExit(EXIT_FAILURE, `not renewed at ${failed.map((r) => `${r.site} (${r.status?.reason})`).join('; ')}`);
      } finally {
        client.close();
      }
    }),
  );
}
