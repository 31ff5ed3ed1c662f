/**
 * The fixes `fedlab federation check` proposes: each as the exact `fedlab`
 * command an operator runs (with the files the check was given), and applied
 * by `--fix` through the same calls those commands make. Deletes at the slice
 * authority go first (they clean every site of a slice), then releases at
 * sites, then deletes on nodes, then re-reads; each distinct fix runs once.
 */
import { status as Status } from '@grpc/grpc-js';
import { isServiceError, createClient } from '../../../services/core/rpc/client.js';
import { plainOutcome } from '../../../services/core/rpc/outcome.js';
import { AggregateService } from '../../../services/generated/fedlab/v1/aggregate.js';
import { NodeManagerService } from '../../../services/generated/fedlab/v1/node_manager.js';
import { SliceAuthorityService, SliceState } from '../../../services/generated/fedlab/v1/slice_authority.js';
import type { Fix } from './check-analysis.js';
import type { CheckTarget, SiteTarget } from './check-target.js';
import { codeName } from '../../remote.js';
import { counted, enumName } from '../../printable.js';

/** What applying one fix did. */
export interface FixResult {
  readonly fix: Fix;
  readonly command: string;
  readonly ok: boolean;
  readonly message: string;
}

const ORDER: Record<Fix['op'], number> = { 'delete-slice': 0, 'release-at-site': 1, 'delete-on-node': 2, 'refresh-slice': 3 };

/** A shell word, quoted when it needs to be. */
function word(s: string): string {
  return /^[A-Za-z0-9_./:=@,+%-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The `fedlab` command that applies a fix (placeholders in <…> where the check was not given a file). */
export function fixCommand(target: CheckTarget, fix: Fix): string {
  const ca = target.caFile ? ['--ca', target.caFile] : [];
  const site = (domain: string): SiteTarget | undefined => target.sites.find((s) => s.domain === domain);
  let args: string[];
  switch (fix.op) {
    case 'delete-on-node': {
      const nodes = site(fix.site)?.nodes;
      args = [
        'sliver',
        'delete',
        '--node',
        fix.endpoint,
        '--node-urn',
        fix.nodeUrn,
        '--sliver',
        fix.sliverUrn,
        '--chain',
        nodes?.chain.file ?? `<chain rooted at ${fix.site}'s node owner>`,
        '--tls-dir',
        nodes?.holder.dir ?? '<its holder>',
        ...ca,
      ];
      break;
    }
    case 'release-at-site': {
      const s = site(fix.site);
      args = [
        'site',
        'release',
        '--ma',
        s?.address ?? `<${fix.site}'s MA>`,
        '--slice',
        fix.sliceUrn,
        ...fix.sliverUrns.flatMap((u) => ['--sliver', u]),
        '--chain',
        s?.release?.file ?? `<the slice authority's MA → SA chain for ${fix.site}>`,
        '--tls-dir',
        target.saSelf?.dir ?? "<the slice authority's own TLS dir>",
        ...ca,
      ];
      break;
    }
    case 'delete-slice':
    case 'refresh-slice':
      args = [
        'slice',
        fix.op === 'delete-slice' ? 'delete' : 'show',
        fix.sliceUrn,
        '--sa',
        target.sa.address,
        ...(target.sa.serverUrn ? ['--sa-urn', target.sa.serverUrn] : []),
        '--tls-dir',
        target.sa.admin.dir,
        ...ca,
      ];
      break;
  }
  return ['fedlab', ...args].map(word).join(' ');
}

/** Distinct fixes in the order they are applied. */
export function plannedFixes(fixes: readonly Fix[]): Fix[] {
  const seen = new Map<string, Fix>();
  for (const f of fixes) seen.set(JSON.stringify(f), f);
  return [...seen.values()].sort((a, b) => ORDER[a.op] - ORDER[b.op]);
}

/** Applies each distinct fix once, in order; a fix that fails does not stop the others. */
export async function applyFixes(target: CheckTarget, fixes: readonly Fix[]): Promise<FixResult[]> {
  const out: FixResult[] = [];
  for (const fix of plannedFixes(fixes)) {
    const command = fixCommand(target, fix);
    try {
      out.push({ fix, command, ok: true, message: await applyFix(target, fix) });
    } catch (err) {
      if (err instanceof MissingMeans) {
        out.push({ fix, command, ok: false, message: `not applied: ${err.message}` });
        continue;
      }
      const o = plainOutcome(err);
      out.push({ fix, command, ok: false, message: `${codeName(o.code)}: ${o.reason}` });
    }
  }
  return out;
}

/** Refusal of a fix the check was not given the means for. */
class MissingMeans extends Error {}

async function applyFix(target: CheckTarget, fix: Fix): Promise<string> {
  const deadlineMs = Math.max(target.deadlineMs, 30_000);
  switch (fix.op) {
    case 'delete-on-node': {
      const nodes = target.sites.find((s) => s.domain === fix.site)?.nodes;
      if (!nodes) throw new MissingMeans(`give --node-chain ${fix.site}=FILE to delete slivers on its nodes`);
      const client = createClient(NodeManagerService, { address: fix.endpoint, tls: nodes.holder.tls, serverUrn: fix.nodeUrn, deadlineMs });
      try {
        const res = await client.deleteSliver({ sliverUrn: fix.sliverUrn }, { chain: nodes.chain.chain });
        return res.existed ? `deleted ${fix.sliverUrn} on ${fix.nodeUrn}` : `${fix.sliverUrn} was already gone`;
      } finally {
        client.close();
      }
    }
    case 'release-at-site': {
      const site = target.sites.find((s) => s.domain === fix.site);
      if (!site?.release || !target.saSelf)
        throw new MissingMeans(`give --sa-tls-dir and --site-chain ${fix.site}=FILE to release what ${fix.site} holds`);
      const client = createClient(AggregateService, { address: site.address, tls: target.saSelf.tls, deadlineMs });
      try {
        const urns = fix.sliverUrns.length > 0 ? [...fix.sliverUrns] : [fix.sliceUrn];
        const res = await client.delete({ urns, bestEffort: true }, { chain: site.release.chain }).catch((err: unknown) => {
          // What the site no longer has is released already.
          if (isServiceError(err, Status.NOT_FOUND)) return { results: [] };
          throw err;
        });
        const failed = res.results.filter((r) => (r.status?.code ?? 0) !== 0);
        if (failed.length > 0) throw new Error(failed.map((r) => `${r.sliverUrn}: ${r.status?.reason ?? ''}`).join('; '));
        return `${fix.site} released ${counted(res.results.length, 'sliver')} of ${fix.sliceUrn}`;
      } finally {
        client.close();
      }
    }
    case 'delete-slice':
    case 'refresh-slice': {
      const client = createClient(SliceAuthorityService, {
        address: target.sa.address,
        tls: target.sa.admin.tls,
        deadlineMs: Math.max(deadlineMs, 120_000),
        ...(target.sa.serverUrn ? { serverUrn: target.sa.serverUrn } : {}),
      });
      try {
        if (fix.op === 'refresh-slice') {
          const res = await client.getSlice({ sliceUrn: fix.sliceUrn });
          return `the slice authority re-read ${fix.sliceUrn} from its sites (${enumName(SliceState, res.slice?.state, 'SLICE_STATE_')})`;
        }
        const res = await client.deleteSlice({ sliceUrn: fix.sliceUrn });
        const state = res.slice?.state;
        if (state === SliceState.SLICE_STATE_DELETING)
          return `${fix.sliceUrn} is being deleted; some sites have not confirmed yet and the slice authority keeps retrying`;
        return `${fix.sliceUrn} is ${enumName(SliceState, state, 'SLICE_STATE_')}`;
      } finally {
        client.close();
      }
    }
  }
}
