/** `fedlab slice delete`: a slice deleted at every site (idempotent). */
import type { Command } from 'commander';
import { Slice, SliceState } from '../../../services/generated/fedlab/v1/slice_authority.js';
import { action, printJson } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { resolveSlice, saClient, withConn, type ConnFlags } from './sa-client.js';
import { failureLines, resultsTable, STATE } from './slice-view.js';
import { writeOut, writeErr } from '../../printable.js';

/** Registers `fedlab slice delete`. */
export function registerSliceDelete(slice: Command): void {
  withConn(slice.command('delete <slice>').description('delete a slice at every site (idempotent)')).action(
    action(async (ref: string, flags: ConnFlags) => {
      const client = saClient(flags, 120_000);
      try {
        const urn = await resolveSlice(client, ref);
        const res = await client.deleteSlice({ sliceUrn: urn }).catch((err: unknown) => refused(err, `cannot delete slice ${urn}`));
        const deleted = res.slice as Slice;
        if (flags.json)
          printJson({
            slice: Slice.toJSON(deleted),
            results: res.results.map((r) => ({ site: r.site, code: r.status?.code ?? 0, reason: r.status?.reason ?? '' })),
          });
        else
          writeOut(`${res.results.length ? `${resultsTable(res.results)}\n` : ''}slice ${deleted.urn} is ${STATE[deleted.state] ?? '?'}\n`);
        if (deleted.state === SliceState.SLICE_STATE_DELETING) {
          writeErr(
            `fedlab: some sites have not confirmed yet; the slice authority keeps retrying:\n  ${failureLines(deleted).join('\n  ')}\n`,
          );
        }
      } finally {
        client.close();
      }
    }),
  );
}
