/**
 * `fedlab deployment show --follow`: after the deployment as `show` prints it, what changes — its
 * state, each sliver's service state, and each sliver's new output lines — read from GetDeployment
 * once a second, until the deployment ends (deleted, failed, or settled with nothing left running),
 * is gone, or the user presses Ctrl-C. With `--json`, the whole deployment as one JSON line each
 * time it changes. A closed standard output ends it quietly at the next write (closed-output.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { status as Status } from '@grpc/grpc-js';
import { isServiceError } from '../../../services/core/rpc/client.js';
import { DeploymentState, ServiceState, type Deployment } from '../../../services/generated/fedlab/v1/service_provider.js';
import { EXIT_FAILURE } from '../../cli-support.js';
import { printable, printableJson, printableLine, writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { deploymentJson, serviceName, shortName, stateName } from './deployment-view.js';
import type { spClient } from './provider-client.js';

/** Services still at work: while any sliver has one, a settled deployment is followed on. */
const LIVE_SERVICES: ReadonlySet<ServiceState> = new Set([
  ServiceState.SERVICE_STATE_STARTING,
  ServiceState.SERVICE_STATE_RUNNING,
  ServiceState.SERVICE_STATE_BACKOFF,
]);

/** Whether a deployment has ended: nothing about it will change by itself any more. */
export function hasEnded(d: Deployment): boolean {
  if (d.state === DeploymentState.DEPLOYMENT_STATE_DELETED || d.state === DeploymentState.DEPLOYMENT_STATE_FAILED) return true;
  const settled = d.state === DeploymentState.DEPLOYMENT_STATE_READY || d.state === DeploymentState.DEPLOYMENT_STATE_PARTIAL;
  return settled && !d.targets.some((t) => LIVE_SERVICES.has(t.serviceState));
}

/**
 * The lines of `cur` that `prev` did not show. Both are the last lines of one output (a window that
 * moves): the longest end of `prev` that starts `cur` is what was seen already.
 */
export function newLines(prev: readonly string[], cur: readonly string[]): string[] {
  for (let k = Math.min(prev.length, cur.length); k > 0; k--) {
    let same = true;
    for (let i = 0; i < k && same; i++) same = prev[prev.length - k + i] === cur[i];
    if (same) return cur.slice(k);
  }
  return [...cur];
}

/** What changed from `prev` to `cur`, as the lines `--follow` prints. */
export function changeLines(prev: Deployment, cur: Deployment): string[] {
  const out: string[] = [];
  if (prev.state !== cur.state) out.push(`${printable(cur.name)}: ${stateName(prev.state)} → ${stateName(cur.state)}`);
  if (cur.error && cur.error !== prev.error) out.push(`error: ${printable(cur.error)}`);
  const before = new Map(prev.targets.map((t) => [t.sliverUrn, t]));
  for (const t of cur.targets) {
    const p = before.get(t.sliverUrn);
    const who = printable(shortName(t.sliverUrn));
    if (!p || p.serviceState !== t.serviceState || p.restarts !== t.restarts) {
      const restarts = t.restarts > 0 ? ` (restarts ${t.restarts})` : '';
      const exit = t.lastExit && t.lastExit !== p?.lastExit ? `, last exit ${printable(t.lastExit)}` : '';
      out.push(`${who}: service ${p ? `${serviceName(p.serviceState)} → ` : ''}${serviceName(t.serviceState)}${restarts}${exit}`);
    }
    for (const line of newLines(p?.lastOutput ?? [], t.lastOutput)) out.push(`${who} | ${printableLine(line)}`);
  }
  return out;
}

/** Options of {@link followDeployment}. */
export interface FollowOptions {
  readonly json: boolean;
  /** Between two reads (ms). */
  readonly intervalMs: number;
}

/**
 * Follows a deployment from `first` (already printed) until it ends, is gone or Ctrl-C. Resolves to
 * the exit status: 1 when it ended FAILED or PARTIAL, else 0.
 */
export async function followDeployment(client: ReturnType<typeof spClient>, first: Deployment, options: FollowOptions): Promise<number> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let last = first;
  try {
    while (!hasEnded(last)) {
      try {
        await sleep(options.intervalMs, undefined, { signal: stop.signal });
      } catch {
        return 0; // Ctrl-C: the user has seen enough.
      }
      let cur: Deployment | undefined;
      try {
        cur = (await client.getDeployment({ name: first.name }, { signal: stop.signal })).deployment;
      } catch (err) {
        if (stop.signal.aborted) return 0;
        if (isServiceError(err) && err.code === Status.NOT_FOUND) {
          writeOut(options.json ? `${printableJson({ name: first.name, state: 'GONE' })}\n` : `${printable(first.name)} is gone\n`);
          return 0;
        }
        refused(err, `could not read deployment ${first.name}`);
      }
      if (!cur) return 0;
      if (options.json) {
        if (JSON.stringify(deploymentJson(cur)) !== JSON.stringify(deploymentJson(last)))
          writeOut(`${printableJson(deploymentJson(cur))}\n`);
      } else {
        const lines = changeLines(last, cur);
        if (lines.length > 0) writeOut(`${lines.join('\n')}\n`);
      }
      last = cur;
    }
    const bad = last.state === DeploymentState.DEPLOYMENT_STATE_FAILED || last.state === DeploymentState.DEPLOYMENT_STATE_PARTIAL;
    return bad ? EXIT_FAILURE : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
