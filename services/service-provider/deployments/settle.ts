/** A deployment's outcome once every sliver has settled: READY, PARTIAL or FAILED. */
import { SETTLED_SERVICES, STABLE_STATES, type DeploymentStateName } from '../records.js';
import type { DeploymentContext } from './context.js';

/** Marks the deployment READY / PARTIAL / FAILED once every sliver settled. */
export function settleWhenReady(context: DeploymentContext, name: string): void {
  const rec = context.records.get(name);
  if (!rec || rec.desired !== 'run' || STABLE_STATES.has(rec.state)) return;
  if (!rec.targets.every((t) => SETTLED_SERVICES.has(t.service) && !(t.service === 'backoff' && t.restarts === 0))) return;
  const failed = rec.targets.filter((t) => t.service === 'failed');
  const state: DeploymentStateName =
    failed.length === rec.targets.length ? 'failed' : failed.length > 0 || rec.sliceProblems ? 'partial' : 'ready';
  const error = [rec.sliceProblems ?? '', ...failed.map((t) => `${t.sliverUrn}: ${t.reason}`)].filter(Boolean).join('; ');
  void context.records.update(name, (r) => ({ ...r, state, error }), { message: `deployment ${state}`, snapshot: true, sync: true });
}
