/** `fedlab slice show`: a slice (URN or name), its sites and every sliver. */
import type { Command } from 'commander';
import { Slice } from '../../../services/generated/fedlab/v1/slice_authority.js';
import { action, printJson } from '../../cli-support.js';
import { refused } from '../../remote.js';
import { resolveSlice, saClient, withConn, type ConnFlags } from './sa-client.js';
import { sliceDetail } from './slice-view.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab slice show`. */
export function registerSliceShow(slice: Command): void {
  withConn(slice.command('show <slice>').description('show a slice (URN or name): its sites and every sliver')).action(
    action(async (ref: string, flags: ConnFlags) => {
      const client = saClient(flags);
      try {
        const urn = await resolveSlice(client, ref);
        const shown = (await client.getSlice({ sliceUrn: urn }).catch((err: unknown) => refused(err, `cannot read slice ${urn}`)))
          .slice as Slice;
        if (flags.json) printJson(Slice.toJSON(shown));
        else writeOut(`${sliceDetail(shown)}\n`);
      } finally {
        client.close();
      }
    }),
  );
}
