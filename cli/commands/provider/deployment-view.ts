/** How the provider commands show a deployment: state names, JSON for scripts, the per-sliver table. */
import { parseUrn } from '../../../services/core/identity/urn.js';
import {
  DeploymentState,
  ServiceState,
  type Deployment,
  type DeploymentTarget,
} from '../../../services/generated/fedlab/v1/service_provider.js';
import { printable } from '../../printable.js';
import { table } from '../../text-table.js';

const STATE_NAMES: Record<number, string> = {
  [DeploymentState.DEPLOYMENT_STATE_PENDING]: 'PENDING',
  [DeploymentState.DEPLOYMENT_STATE_CREATING_SLICE]: 'CREATING_SLICE',
  [DeploymentState.DEPLOYMENT_STATE_RUNNING_STEPS]: 'RUNNING_STEPS',
  [DeploymentState.DEPLOYMENT_STATE_READY]: 'READY',
  [DeploymentState.DEPLOYMENT_STATE_PARTIAL]: 'PARTIAL',
  [DeploymentState.DEPLOYMENT_STATE_FAILED]: 'FAILED',
  [DeploymentState.DEPLOYMENT_STATE_DELETING]: 'DELETING',
  [DeploymentState.DEPLOYMENT_STATE_DELETED]: 'DELETED',
};
const SERVICE_NAMES: Record<number, string> = {
  [ServiceState.SERVICE_STATE_UNSPECIFIED]: '-',
  [ServiceState.SERVICE_STATE_STARTING]: 'starting',
  [ServiceState.SERVICE_STATE_RUNNING]: 'running',
  [ServiceState.SERVICE_STATE_BACKOFF]: 'backoff',
  [ServiceState.SERVICE_STATE_EXITED]: 'exited',
  [ServiceState.SERVICE_STATE_FAILED]: 'failed',
  [ServiceState.SERVICE_STATE_STOPPED]: 'stopped',
};

/** A deployment's state name. */
export function stateName(state: DeploymentState): string {
  return STATE_NAMES[state] ?? 'UNSPECIFIED';
}

/** A sliver's service state as the table prints it (`running`, `-` when unknown). */
export function serviceName(state: ServiceState): string {
  return SERVICE_NAMES[state] ?? '-';
}

/** One deployment as JSON for scripts. */
export function deploymentJson(deployment: Deployment): Record<string, unknown> {
  return {
    name: deployment.name,
    state: stateName(deployment.state),
    slice_urn: deployment.sliceUrn,
    request_id: deployment.requestId,
    error: deployment.error,
    slice_expires_at: deployment.sliceExpiresAt?.toISOString() ?? null,
    slice_renewed_at: deployment.sliceRenewedAt?.toISOString() ?? null,
    renewal_note: deployment.renewalNote ?? null,
    created_at: deployment.createdAt?.toISOString(),
    updated_at: deployment.updatedAt?.toISOString(),
    steps: deployment.spec?.steps.map((s) => ({ name: s.name, argv: s.argv, service: s.service })) ?? [],
    targets: deployment.targets.map((t) => ({
      sliver_urn: t.sliverUrn,
      node_urn: t.nodeUrn,
      node_endpoint: t.nodeEndpoint,
      site: t.site,
      steps_done: t.stepsDone,
      service: SERVICE_NAMES[t.serviceState] ?? '-',
      restarts: t.restarts,
      last_exit: t.lastExit,
      next_restart_at: t.nextRestartAt?.toISOString() ?? null,
      status: { code: t.status?.code ?? 0, reason: t.status?.reason ?? '' },
      last_output: t.lastOutput,
    })),
  };
}

/** `slice expires <time> (renewed <time>)` and the renewal note, one line each; empty before the slice exists. */
export function sliceExpiryLines(deployment: Deployment): string {
  if (!deployment.sliceExpiresAt) return '';
  const renewed = deployment.sliceRenewedAt ? ` (renewed ${deployment.sliceRenewedAt.toISOString()})` : '';
  const note = deployment.renewalNote ? `\n${printable(deployment.renewalNote)}` : '';
  return `slice expires ${deployment.sliceExpiresAt.toISOString()}${renewed}${note}\n`;
}

/** The name part of a URN (the URN itself when it does not parse). */
export function shortName(urn: string): string {
  try {
    const u = parseUrn(urn);
    return `${u.name}`;
  } catch {
    return urn;
  }
}

/** The per-sliver table of a deployment; every cell printable (it holds what slivers and nodes wrote). */
export function targetTable(targets: readonly DeploymentTarget[]): string {
  const head = ['SITE', 'SLIVER', 'NODE', 'SERVICE', 'RESTARTS', 'LAST EXIT', 'LAST OUTPUT'];
  const rows = targets
    .map((t) => [
      t.site,
      shortName(t.sliverUrn),
      shortName(t.nodeUrn),
      (t.status?.code ?? 0) !== 0 && t.serviceState === ServiceState.SERVICE_STATE_FAILED
        ? `failed: ${t.status?.reason ?? ''}`
        : (SERVICE_NAMES[t.serviceState] ?? '-'),
      String(t.restarts),
      t.lastExit || '-',
      t.lastOutput[t.lastOutput.length - 1] ?? '',
    ])
    .map((cells) => cells.map((c, i) => (i === 3 || i === 6 ? printable(c).slice(0, 60) : printable(c))));
  return table(head, rows);
}
