/** The wire form of a deployment and of its states, from its record. */
import { SiteRequest } from '../../generated/fedlab/v1/common.js';
import { StitchedLinks } from '../../generated/fedlab/v1/slice_authority.js';
import {
  DeploymentState,
  ServiceState,
  type Deployment,
  type DeploymentTarget,
  type DeployStep,
} from '../../generated/fedlab/v1/service_provider.js';
import type { DeploymentRecord, DeploymentStateName, ServiceStateName } from '../records.js';

const STATE: Record<DeploymentStateName, DeploymentState> = {
  pending: DeploymentState.DEPLOYMENT_STATE_PENDING,
  creating_slice: DeploymentState.DEPLOYMENT_STATE_CREATING_SLICE,
  running_steps: DeploymentState.DEPLOYMENT_STATE_RUNNING_STEPS,
  ready: DeploymentState.DEPLOYMENT_STATE_READY,
  partial: DeploymentState.DEPLOYMENT_STATE_PARTIAL,
  failed: DeploymentState.DEPLOYMENT_STATE_FAILED,
  deleting: DeploymentState.DEPLOYMENT_STATE_DELETING,
  deleted: DeploymentState.DEPLOYMENT_STATE_DELETED,
};

const SERVICE: Record<ServiceStateName, ServiceState> = {
  unspecified: ServiceState.SERVICE_STATE_UNSPECIFIED,
  starting: ServiceState.SERVICE_STATE_STARTING,
  running: ServiceState.SERVICE_STATE_RUNNING,
  backoff: ServiceState.SERVICE_STATE_BACKOFF,
  exited: ServiceState.SERVICE_STATE_EXITED,
  failed: ServiceState.SERVICE_STATE_FAILED,
  stopped: ServiceState.SERVICE_STATE_STOPPED,
};

/** The wire state of a deployment state. */
export function deploymentStateToWire(state: DeploymentStateName): DeploymentState {
  return STATE[state];
}

/** The wire form of a deployment. */
export function deploymentToWire(rec: DeploymentRecord): Deployment {
  return {
    name: rec.name,
    spec: {
      sliceUrn: rec.spec.sliceUrn,
      sliceAuthorityUrn: rec.spec.sliceAuthorityUrn,
      sliceName: rec.spec.sliceName,
      mode: rec.spec.mode,
      sites: rec.spec.sites.map((s) => SiteRequest.fromJSON(s)),
      ...(rec.spec.stitchedLinks !== undefined ? { stitchedLinks: StitchedLinks.fromJSON(rec.spec.stitchedLinks) } : {}),
      expiresAt: rec.spec.expiresAt !== undefined ? new Date(rec.spec.expiresAt) : undefined,
      steps: rec.spec.steps.map((s): DeployStep => ({
        name: s.name,
        argv: [...s.argv],
        env: { ...s.env },
        ...(s.stdin !== undefined ? { stdin: Buffer.from(s.stdin, 'base64') } : {}),
        timeoutMs: s.timeoutMs,
        service: s.service,
      })),
    },
    sliceUrn: rec.sliceUrn,
    state: STATE[rec.state],
    targets: rec.targets.map((t): DeploymentTarget => ({
      sliverUrn: t.sliverUrn,
      nodeUrn: t.nodeUrn,
      site: t.site,
      stepsDone: t.stepsDone,
      status: { code: t.code, reason: t.reason },
      serviceState: SERVICE[t.service],
      restarts: t.restarts,
      lastOutput: [...t.lastOutput],
      lastExit: t.lastExit,
      nextRestartAt: t.nextRestartAt !== undefined ? new Date(t.nextRestartAt) : undefined,
      nodeEndpoint: t.endpoint,
    })),
    createdAt: new Date(rec.createdAt),
    updatedAt: new Date(rec.updatedAt),
    error: rec.error,
    requestId: rec.requestId,
    sliceExpiresAt: rec.sliceExpiresAt !== undefined ? new Date(rec.sliceExpiresAt) : undefined,
    sliceRenewedAt: rec.sliceRenewedAt !== undefined ? new Date(rec.sliceRenewedAt) : undefined,
    ...(rec.renewalNote ? { renewalNote: rec.renewalNote } : {}),
  };
}

/** Who reads a deployment: its provider's administrators see everything, readers no step's env or stdin. */
export type DeploymentView = 'admin' | 'reader';

/**
 * A deployment as a reader may see it: every step's `env` empty and `stdin` unset, since that is
 * where secrets go (a reader cannot tell them from a step that has none).
 */
export function forView(deployment: Deployment, view: DeploymentView): Deployment {
  if (view === 'admin' || !deployment.spec) return deployment;
  return {
    ...deployment,
    spec: { ...deployment.spec, steps: deployment.spec.steps.map(({ stdin: _stdin, ...step }): DeployStep => ({ ...step, env: {} })) },
  };
}
