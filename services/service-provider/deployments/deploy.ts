/**
 * Deploy: the deployment is checked, recorded with its request id in one
 * atomic write (or found again by that request id), and driven in the
 * background; the caller's stream gets a snapshot first and then every event
 * until the deployment is stable.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../core/canonical-json.js';
import { AlreadyExistsError, FailedPreconditionError } from '../../core/errors.js';
import { requestId } from '../../core/validate.js';
import type { DeployRequest, DeployResponse } from '../../generated/fedlab/v1/service_provider.js';
import { STABLE_STATES, type DeploymentRecord, type SpecRecord } from '../records.js';
import { nameField } from '../validate.js';
import type { DeploymentContext } from './context.js';
import { checkSpec } from './deployment-spec.js';
import type { DeploymentListener } from './events.js';
import { driveDeployment } from './slice-driver.js';

/** Deploy: records the deployment (or finds the one of this request id) and streams its progress until it is stable. */
export async function* deploy(context: DeploymentContext, req: DeployRequest, signal: AbortSignal): AsyncGenerator<DeployResponse> {
  const rid = requestId(req.requestId);
  const name = nameField('name', req.name);
  const spec = checkSpec(req.spec, {
    sliceAuthorityUrn: context.deps.sliceAuthorityUrn,
    knownSites: context.siteByDomain,
    now: context.now(),
  });
  const fingerprint = createHash('sha256').update(canonicalJson({ name, spec })).digest('base64url');
  const events: DeployResponse[] = [];
  let wake: (() => void) | undefined;
  const listener: DeploymentListener = (e) => {
    events.push(e);
    wake?.();
  };
  // Subscribe before anything can happen, so no event is missed.
  const { rec, first } = await admit(context, rid, name, spec, fingerprint, listener);
  const onAbort = (): void => wake?.();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    yield first;
    if (STABLE_STATES.has(rec.state)) return;
    for (;;) {
      while (events.length > 0) {
        const e = events.shift() as DeployResponse;
        yield e;
        if (e.deployment) return;
      }
      if (signal.aborted) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    context.events.unsubscribe(name, listener);
  }
}

/** Records a new deployment (or finds this request's) and subscribes; the first event is made at subscription, so no event comes before it. */
function admit(
  context: DeploymentContext,
  rid: string,
  name: string,
  spec: SpecRecord,
  fingerprint: string,
  listener: DeploymentListener,
): Promise<{ rec: DeploymentRecord; first: DeployResponse }> {
  const { records, events } = context;
  return context.admission.run(async () => {
    const seen = await records.request(rid);
    if (seen) {
      if (seen.fingerprint !== fingerprint || seen.name !== name) {
        throw new AlreadyExistsError(`request id ${rid} was already used for another deployment (${seen.name}); use a new request id`, {
          rule: 'request_id',
        });
      }
      const existing = records.get(name);
      // Its deployment was deleted and purged, or the name now belongs to another request: never attach to that.
      if (!existing || existing.requestId !== rid) {
        throw new FailedPreconditionError(
          `deployment ${name} of request ${rid} was deleted and is gone${existing ? ` (the name is now request ${existing.requestId}'s)` : ''}; deploy with a new request id`,
          { rule: 'request_id' },
        );
      }
      events.subscribe(name, listener);
      return { rec: existing, first: events.make(existing, { message: `deployment is ${existing.state}`, snapshot: true, consume: true }) };
    }
    const existing = records.get(name);
    if (existing && existing.state !== 'deleted') {
      throw new AlreadyExistsError(
        `deployment ${name} already exists (request ${existing.requestId}); delete it first or choose another name`,
        { field: 'name' },
      );
    }
    if (context.tasks.stopped) throw new FailedPreconditionError('the service provider is stopping; try again');
    const now = context.now();
    const rec: DeploymentRecord = {
      name,
      requestId: rid,
      fingerprint,
      spec,
      state: 'pending',
      desired: 'run',
      deleteSlice: false,
      sliceUrn: spec.sliceUrn,
      createdSlice: false,
      targets: [],
      createdAt: now,
      updatedAt: now,
      error: '',
    };
    await records.insert(rec);
    events.restart(name);
    events.subscribe(name, listener);
    const first = events.make(rec, { message: 'deployment recorded', snapshot: true });
    context.deps.log.info({ deployment: name, request: rid }, 'deployment recorded');
    context.tasks.spawn(name, (s) => driveDeployment(context, name, s));
    return { rec, first };
  });
}
