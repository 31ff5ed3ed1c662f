/**
 * Driving a deployment forward from wherever its record says it is: ensure
 * the slice (create it through the slice authority, idempotent on the
 * deployment's request id, or read the one given), find each provisioned
 * sliver's node manager, then supervise every sliver. A slice authority
 * that cannot be reached leaves the intent in place and is tried again.
 */
import { createHash } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import { parseUrn } from '../../core/identity/urn.js';
import { sleep } from '../../core/timing.js';
import { AllocationState, SiteRequest, SliceMode } from '../../generated/fedlab/v1/common.js';
import { SliceState, StitchedLinks, type Slice } from '../../generated/fedlab/v1/slice_authority.js';
import { errorForCode, plainOutcome } from '../../core/rpc/outcome.js';
import { STABLE_STATES, type DeploymentRecord, type TargetRecord } from '../records.js';
import type { DeploymentContext } from './context.js';
import { settleWhenReady } from './settle.js';
import { superviseSliver } from './supervisor.js';

/** How often a PENDING slice is asked again (ms). */
const SLICE_POLL_MS = 250;

/**
 * The CreateSlice request id of a deployment: derived from its own, so a retry after a crash is the
 * same request, and one-to-one, so two deployments never share a slice. `deploy.<id>` when that fits
 * the 128 characters of a request id (as before, so deployments recorded earlier keep their slice);
 * longer ids become `deploy-sha256.<SHA-256 of the whole id, base64url>` — never a truncation, and
 * never equal to a short form (which always starts with `deploy.`).
 */
export function sliceRequestId(deployRequestId: string): string {
  const plain = `deploy.${deployRequestId}`;
  if (plain.length <= 128) return plain;
  return `deploy-sha256.${createHash('sha256').update(deployRequestId, 'utf8').digest('base64url')}`;
}

/** Carries a deployment forward from wherever its record says it is. */
export async function driveDeployment(context: DeploymentContext, name: string, signal: AbortSignal): Promise<void> {
  const { records, tasks } = context;
  let rec = records.get(name) as DeploymentRecord;
  if (rec.targets.length === 0) {
    await records.update(name, (r) => ({ ...r, state: 'creating_slice' }), {
      message: rec.spec.sliceUrn ? `checking slice ${rec.spec.sliceUrn}` : 'creating the slice',
    });
    let slice: Slice;
    try {
      slice = await ensureSlice(context, rec, signal);
    } catch (err) {
      if (signal.aborted) return;
      const { code, reason } = plainOutcome(err);
      if (code === Status.UNAVAILABLE || code === Status.DEADLINE_EXCEEDED) {
        // The slice authority is unreachable: the intent stays, and the provider tries again.
        await records.update(name, (r) => ({ ...r, error: `slice authority: ${reason}` }), {
          message: `slice authority unreachable (${reason}); retrying`,
          status: { code, reason },
        });
        tasks.spawnLater(name, context.deps.supervision.retryMs, (s) => driveDeployment(context, name, s));
        return;
      }
      await records.update(name, (r) => ({ ...r, state: 'failed', error: `slice: ${reason}` }), {
        message: `slice failed: ${reason}`,
        status: { code, reason },
        snapshot: true,
        sync: true,
      });
      return;
    }
    const targets = await targetsOf(context, slice, signal);
    if (signal.aborted) return;
    const problems = slice.sites
      .filter((x) => (x.status?.code ?? Status.OK) !== Status.OK)
      .map((x) => `${x.site}: ${x.status?.reason ?? ''}`)
      .join('; ');
    const sliceExpiresAt = slice.expiresAt?.getTime();
    await records.update(
      name,
      (r) => ({
        ...r,
        sliceUrn: slice.urn,
        targets,
        ...(problems ? { sliceProblems: problems } : {}),
        // Kept from here on: the renewer moves it.
        ...(sliceExpiresAt !== undefined ? { sliceExpiresAt } : {}),
      }),
      {
        message: `slice ${slice.urn}: ${targets.length} ${targets.length === 1 ? 'sliver' : 'slivers'}${problems ? ` (failed at ${problems})` : ''}`,
        sync: true,
      },
    );
    rec = records.get(name) as DeploymentRecord;
    if (targets.length === 0) {
      await records.update(name, (r) => ({ ...r, state: 'failed', error: `slice ${slice.urn} has no provisioned sliver` }), {
        message: 'no sliver to deploy to',
        snapshot: true,
        sync: true,
      });
      return;
    }
  }
  if (!STABLE_STATES.has(rec.state))
    await records.update(name, (r) => ({ ...r, state: 'running_steps' }), { message: 'running the steps on every sliver' });
  for (const t of rec.targets) {
    if (t.service === 'failed' || t.service === 'exited' || t.service === 'stopped') continue;
    tasks.spawn(name, (s) => superviseSliver(context, name, t.sliverUrn, s));
  }
  settleWhenReady(context, name);
}

/** Creates the slice through the slice authority (idempotent on the deployment's request id), or reads the given one. */
async function ensureSlice(context: DeploymentContext, rec: DeploymentRecord, signal: AbortSignal): Promise<Slice> {
  const { remotes, sliceDeadlineMs } = context.deps;
  const sa = remotes.sliceAuthority();
  let slice: Slice | undefined;
  if (rec.spec.sliceUrn) {
    slice = (await sa.getSlice({ sliceUrn: rec.spec.sliceUrn }, { signal })).slice;
  } else {
    const res = await sa.createSlice(
      {
        users: (context.deps.sliceUsers ?? []).map((u) => ({ urn: u.urn, sshKeys: [...u.sshKeys] })),
        requestId: sliceRequestId(rec.requestId),
        name: rec.spec.sliceName || rec.name,
        description: `deployment ${rec.name}`,
        mode: rec.spec.mode || SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: rec.spec.sites.map((s) => SiteRequest.fromJSON(s)),
        ...(rec.spec.stitchedLinks !== undefined ? { stitchedLinks: StitchedLinks.fromJSON(rec.spec.stitchedLinks) } : {}),
        expiresAt: rec.spec.expiresAt !== undefined ? new Date(rec.spec.expiresAt) : undefined,
        start: true,
        wait: true,
      },
      { deadlineMs: sliceDeadlineMs, signal },
    );
    slice = res.slice;
    if (slice) {
      const made = slice;
      await context.records.update(rec.name, (r) => ({ ...r, sliceUrn: made.urn, createdSlice: true }), {
        message: `slice ${made.urn} is ${SliceState[made.state].replace('SLICE_STATE_', '')}`,
        sync: true,
      });
    }
  }
  const deadline = context.now() + sliceDeadlineMs;
  while (slice && (slice.state === SliceState.SLICE_STATE_PENDING || slice.state === SliceState.SLICE_STATE_UNSPECIFIED)) {
    if (context.now() > deadline) throw errorForCode(Status.DEADLINE_EXCEEDED, `slice ${slice.urn} is still PENDING`);
    await sleep(SLICE_POLL_MS, signal);
    if (signal.aborted) throw new Error('stopped');
    slice = (await sa.getSlice({ sliceUrn: slice.urn }, { signal })).slice;
  }
  if (!slice) throw new Error('the slice authority returned no slice');
  if (slice.state !== SliceState.SLICE_STATE_READY && slice.state !== SliceState.SLICE_STATE_PARTIAL) {
    const why = slice.sites
      .filter((s) => (s.status?.code ?? Status.OK) !== Status.OK)
      .map((s) => `${s.site}: ${s.status?.reason ?? ''}`)
      .join('; ');
    throw errorForCode(
      Status.FAILED_PRECONDITION,
      `slice ${slice.urn} is ${SliceState[slice.state].replace('SLICE_STATE_', '')}${why ? ` (${why})` : ''}`,
    );
  }
  return slice;
}

/** The slice's provisioned slivers, each with its node manager's endpoint (from the site's MA). */
async function targetsOf(context: DeploymentContext, slice: Slice, signal: AbortSignal): Promise<TargetRecord[]> {
  const out: TargetRecord[] = [];
  await Promise.all(
    slice.slivers
      .filter((s) => s.allocationState === AllocationState.ALLOCATION_STATE_PROVISIONED && s.nodeUrn)
      .map(async (s) => {
        const site = parseUrn(s.urn).domain;
        const base: TargetRecord = {
          sliverUrn: s.urn,
          nodeUrn: s.nodeUrn,
          site,
          endpoint: '',
          stepsDone: 0,
          code: 0,
          reason: '',
          service: 'starting',
          restarts: 0,
          lastOutput: [],
          lastExit: '',
        };
        const siteEp = context.siteByDomain.get(parseUrn(s.nodeUrn).domain);
        if (!siteEp) {
          out.push({
            ...base,
            service: 'failed',
            code: Status.FAILED_PRECONDITION,
            reason: `site ${site} is not in this provider's config (sites[]): its node managers cannot be found`,
          });
          return;
        }
        try {
          const { ma } = context.deps.remotes.site(siteEp);
          const node = (await ma.getNode({ nodeUrn: s.nodeUrn }, { deadlineMs: context.deps.maDeadlineMs, signal })).node;
          if (!node?.endpoint) throw errorForCode(Status.FAILED_PRECONDITION, `the site does not know ${s.nodeUrn}'s endpoint`);
          out.push({ ...base, endpoint: node.endpoint });
        } catch (err) {
          // The endpoint is looked up again when the sliver is supervised.
          out.push(base);
          context.deps.log.warn({ sliver: s.urn, reason: plainOutcome(err).reason }, 'node endpoint not known yet');
        }
      }),
  );
  return out.sort((a, b) => (a.sliverUrn < b.sliverUrn ? -1 : 1));
}
