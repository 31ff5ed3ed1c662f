/**
 * DeleteDeployment: the intent `desired: delete` is recorded first, every
 * sliver's supervision is stopped (cancelling the Exec calls makes the nodes
 * kill the commands), then the slice is deleted if this deployment asked for
 * it. A slice authority that cannot be reached leaves the deployment
 * DELETING and the delete is tried again.
 */
import { status as Status } from '@grpc/grpc-js';
import { NotFoundError } from '../../core/errors.js';
import type { Deployment } from '../../generated/fedlab/v1/service_provider.js';
import { SliceState } from '../../generated/fedlab/v1/slice_authority.js';
import { errorForCode, plainOutcome } from '../../core/rpc/outcome.js';
import type { DeploymentRecord } from '../records.js';
import { nameField } from '../validate.js';
import type { DeploymentContext } from './context.js';
import { sliceRequestId } from './slice-driver.js';
import { deploymentToWire } from './to-wire.js';

/** DeleteDeployment: stops every sliver's service, deletes the slice if this deployment made it (unless kept). Idempotent. */
export async function deleteDeployment(context: DeploymentContext, name: string, keepSlice: boolean): Promise<Deployment> {
  nameField('name', name);
  const rec = context.records.get(name);
  if (!rec) throw new NotFoundError(`no deployment ${name}; list them with ListDeployments`);
  if (rec.state === 'deleted') return deploymentToWire(rec);
  if (rec.desired !== 'delete') {
    // A deployment that asked for its own slice deletes it, even if the answer to CreateSlice never arrived.
    await context.records.update(
      name,
      (r) => ({ ...r, desired: 'delete', state: 'deleting', deleteSlice: !r.spec.sliceUrn && !keepSlice }),
      { message: 'deleting', sync: true },
    );
  }
  // Stop supervision first: cancelling the Exec calls makes the nodes kill the commands.
  await context.tasks.stopLive(name);
  const signal = new AbortController().signal;
  await finishDelete(context, name, signal);
  return deploymentToWire(context.records.get(name) as DeploymentRecord);
}

/** Deletes the deployment's slice when it should, then marks the deployment DELETED; retried later when the slice authority does not answer. */
export async function finishDelete(context: DeploymentContext, name: string, signal: AbortSignal): Promise<void> {
  const { records, tasks } = context;
  const { remotes, credentials, log, sliceDeadlineMs, supervision } = context.deps;
  const rec = records.get(name);
  if (!rec || rec.state === 'deleted') return;
  if (rec.deleteSlice) {
    try {
      const sliceUrn = rec.sliceUrn || (await findOwnSlice(context, rec, signal));
      if (!sliceUrn) throw errorForCode(Status.NOT_FOUND, 'no slice was made for this deployment');
      const res = await remotes.sliceAuthority().deleteSlice({ sliceUrn }, { deadlineMs: sliceDeadlineMs, signal });
      log.info({ deployment: name, slice: rec.sliceUrn, state: res.slice?.state }, 'slice deleted');
    } catch (err) {
      const { code, reason } = plainOutcome(err);
      if (code !== Status.NOT_FOUND) {
        await records.update(name, (r) => ({ ...r, error: `deleting slice ${r.sliceUrn}: ${reason}` }), {
          message: `slice not deleted yet (${reason}); retrying`,
        });
        if (!tasks.stopped && !signal.aborted) {
          tasks.spawnLater(name, supervision.retryMs, (s) => finishDelete(context, name, s));
        }
        return;
      }
    }
    if (rec.sliceUrn) await credentials.forget(rec.sliceUrn);
  }
  await records.update(
    name,
    (r) => ({
      ...r,
      state: 'deleted',
      error: '',
      targets: r.targets.map((t) => ({
        ...t,
        service: t.service === 'failed' ? t.service : ('stopped' as const),
        nextRestartAt: undefined,
      })),
    }),
    { message: 'deployment deleted', sync: true, snapshot: true },
  );
}

/** The slice the slice authority made for this deployment's CreateSlice request id, if any (when the answer was lost). */
async function findOwnSlice(context: DeploymentContext, rec: DeploymentRecord, signal: AbortSignal): Promise<string> {
  const rid = sliceRequestId(rec.requestId);
  let token = '';
  do {
    const page = await context.deps.remotes
      .sliceAuthority()
      .listSlices({ pageSize: 1000, pageToken: token, state: SliceState.SLICE_STATE_UNSPECIFIED }, { signal });
    const hit = page.slices.find((x) => x.requestId === rid);
    if (hit) return hit.urn;
    token = page.nextPageToken;
  } while (token);
  return '';
}
