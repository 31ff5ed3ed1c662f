/** `fedlab am getversion`: what the aggregate is (API version, style, formats, limits, terms). */
import type { Command } from 'commander';
import { AggregateGetVersionResponse, OperationalAction } from '../../../services/generated/fedlab/v1/aggregate.js';
import { SiteStyle } from '../../../services/generated/fedlab/v1/common.js';
import { action, printJson } from '../../cli-support.js';
import { writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { withAm, withAmClient, type AmFlags } from './am-client.js';

/** Registers `fedlab am getversion`. */
export function registerAmGetVersion(am: Command): void {
  withAm(am.command('getversion').description("the aggregate's API version, style, formats, limits and terms (no chain)"), false).action(
    action(async (flags: AmFlags) => {
      const v = await withAmClient(flags, (c) => c.getVersion({}).catch((err: unknown) => refused(err, 'getversion failed')));
      if (flags.json) {
        printJson(AggregateGetVersionResponse.toJSON(v));
        return;
      }
      const lines = [
        `aggregate:        ${v.aggregateUrn}`,
        `domain:           ${v.domain}`,
        `style:            ${(SiteStyle[v.style] ?? '?').replace('SITE_STYLE_', '').toLowerCase()}`,
        `API version:      ${v.apiVersion}`,
        `software:         ${v.softwareVersion}`,
        `request formats:  ${v.requestDocumentFormats.join(', ') || '-'}`,
        `ad formats:       ${v.advertisementDocumentFormats.join(', ') || '-'}`,
        `actions:          ${v.operationalActions.map((a) => (OperationalAction[a] ?? '?').replace('OPERATIONAL_ACTION_', '').toLowerCase()).join(', ')}`,
        `allocation hold:  ${v.allocationHoldS} s`,
        `sliver lifetime:  ${v.defaultSliverLifetimeS} s (at most ${v.maxSliverLifetimeS} s)`,
        `netem:            ${v.netemAvailable ? 'yes' : 'no'}`,
        `credential types: ${v.credentialTypes.join(', ')}`,
        `terms digest:     ${v.termsDigest}`,
      ];
      writeOut(`${lines.join('\n')}\n`);
    }),
  );
}
