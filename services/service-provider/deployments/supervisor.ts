/**
 * Supervising one sliver of a deployment: its steps run one after another
 * through NodeManager.Exec (a step already done is not run again), then its
 * service — the last step, when it is one — is kept running, restarted with
 * a doubling back-off after each failure (reset by a run that lasted
 * `backoffResetMs`). A sliver that is gone fails; a node that cannot be
 * reached or refuses the credential is tried again. A node answers for a
 * sliver it no longer holds as for a credential it does not trust (so as not
 * to tell whether it exists): when a fresh credential does not help, the slice
 * authority is asked, at most once a minute, whether the slice still holds
 * the sliver.
 *
 * Why the provider supervises Exec streams (rather than the node manager
 * owning the program): Exec is the node manager's only way to run a program
 * on a slice's behalf, and it is bounded by its call; keeping supervision
 * here needs no new node-side state and keeps the restart policy (back-off,
 * cap, counts, output) in one place the provider can report on. A supervised
 * run ends when the call ends: the command exits, the node kills it at its
 * timeout, or the provider goes away (the node kills it when the call is
 * cancelled).
 */
import { status as Status } from '@grpc/grpc-js';
import { parseUrn } from '../../core/identity/urn.js';
import { sleep } from '../../core/timing.js';
import { errorForCode, plainOutcome } from '../../core/rpc/outcome.js';
import type { DeploymentRecord, StepRecord, TargetRecord } from '../records.js';
import { sliceHoldsSliver } from '../slice-at-authority.js';
import type { DeploymentContext } from './context.js';
import { settleWhenReady } from './settle.js';

/** How one run of a step ended. */
interface Exit {
  readonly code?: number;
  readonly signal?: string;
  readonly timedOut: boolean;
}

/** The delay before restart number `n` (1-based) of a service: doubling from `initial`, capped at `max`. */
export function backoffDelay(n: number, initialMs: number, maxMs: number): number {
  return Math.min(initialMs * 2 ** Math.min(Math.max(n - 1, 0), 40), maxMs);
}

/** How a run ended, in words. */
export function exitText(exit: { code?: number | undefined; signal?: string | undefined; timedOut?: boolean | undefined }): string {
  const base = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code ?? 0}`;
  return exit.timedOut ? `${base} (timed out)` : base;
}

/** The shortest time between two questions to the slice authority about one refused sliver (ms). */
export const SLIVER_CHECK_MS = 60_000;

/** Runs the steps on one sliver, then keeps its service running. */
export async function superviseSliver(context: DeploymentContext, name: string, sliverUrn: string, signal: AbortSignal): Promise<void> {
  const { records, outputs, tasks } = context;
  const settings = context.deps.supervision;
  let failuresInRow = 0;
  // Set when the node could not be reached: it may have moved, so its site is asked again (in memory, so
  // an unreachable node costs no record write per attempt).
  let lookAgain = false;
  // When the slice authority was last asked whether the slice still holds this sliver.
  let sliceCheckedAt = -Infinity;
  while (!signal.aborted && !tasks.stopped) {
    const rec = records.get(name);
    const t = rec?.targets.find((x) => x.sliverUrn === sliverUrn);
    if (!rec || !t || rec.desired !== 'run') return;
    const steps = rec.spec.steps;
    if (t.stepsDone >= steps.length) {
      await records.patchTarget(name, sliverUrn, { service: 'exited' }, `all steps done on ${sliverUrn}`);
      // A deployment without a service settles here (READY once every sliver is done).
      settleWhenReady(context, name);
      return;
    }
    const step = steps[t.stepsDone] as StepRecord;
    let endpoint = t.endpoint;
    if (!endpoint || lookAgain) {
      try {
        endpoint = await lookupEndpoint(context, t, signal);
        lookAgain = false;
        if (endpoint !== t.endpoint) await records.patchTarget(name, sliverUrn, { endpoint }, undefined);
      } catch (err) {
        const { code, reason } = plainOutcome(err);
        await records.patchTarget(
          name,
          sliverUrn,
          { code, reason: `node endpoint: ${reason}` },
          `cannot find ${t.nodeUrn}'s node manager (${reason}); retrying`,
        );
        await sleep(settings.retryMs, signal);
        continue;
      }
    }
    const started = context.now();
    // A step being retried after its node refused or could not be reached keeps that outcome recorded
    // until the step's next outcome differs: a retry loop must not rewrite the record on every attempt.
    const retrying = !step.service && t.code !== 0 && t.reason.startsWith(`step ${step.name}: `);
    if (!retrying) {
      await records.patchTarget(
        name,
        sliverUrn,
        { service: step.service ? 'running' : 'starting', code: 0, reason: '', nextRestartAt: undefined },
        step.service ? `service ${step.name} started on ${sliverUrn}` : `step ${step.name} on ${sliverUrn}`,
        step.name,
      );
    }
    if (step.service) settleWhenReady(context, name);
    let result: { exit?: Exit; error?: { code: number; reason: string } };
    try {
      result = { exit: await runExec(context, rec, t, endpoint, step, signal) };
    } catch (err) {
      result = { error: plainOutcome(err) };
    }
    outputs.flush(name, sliverUrn);
    if (signal.aborted || tasks.stopped) return;
    const ranMs = context.now() - started;
    if (result.exit && !result.exit.signal && (result.exit.code ?? 0) === 0 && !result.exit.timedOut) {
      failuresInRow = 0;
      if (step.service) {
        await records.patchTarget(
          name,
          sliverUrn,
          { service: 'exited', stepsDone: t.stepsDone + 1, lastExit: 'exit code 0' },
          `service ${step.name} exited 0 on ${sliverUrn}; not restarted`,
          step.name,
        );
        settleWhenReady(context, name);
        return;
      }
      // A refusal recorded while the step was retried goes with its success.
      await records.patchTarget(
        name,
        sliverUrn,
        { stepsDone: t.stepsDone + 1, code: 0, reason: '' },
        `step ${step.name} done on ${sliverUrn}`,
        step.name,
      );
      continue;
    }
    const why = result.exit ? exitText(result.exit) : (result.error?.reason ?? 'unknown error');
    const code = result.error?.code ?? Status.FAILED_PRECONDITION;
    if (result.error && code === Status.NOT_FOUND) {
      await records.patchTarget(
        name,
        sliverUrn,
        { service: 'failed', code, reason: `the sliver is gone: ${why}` },
        `sliver ${sliverUrn} is gone`,
        step.name,
        { code, reason: why },
      );
      settleWhenReady(context, name);
      return;
    }
    // A fresh credential may cure it (revoked, expired); one refused again soon after is not churned (slice-credentials.ts).
    if (result.error && (code === Status.UNAUTHENTICATED || code === Status.PERMISSION_DENIED)) {
      const fresh = await context.deps.credentials.refused(rec.sliceUrn);
      if (!fresh && context.now() - sliceCheckedAt >= SLIVER_CHECK_MS) {
        sliceCheckedAt = context.now();
        const holds = await sliceHoldsSliver(context.deps.remotes, rec.sliceUrn, sliverUrn, {
          deadlineMs: context.deps.sliceDeadlineMs,
          signal,
        });
        if (holds === false) {
          const reason = `the sliver is gone: its slice authority says slice ${rec.sliceUrn} no longer holds it (its node answered: ${why})`;
          await records.patchTarget(
            name,
            sliverUrn,
            { service: 'failed', code: Status.NOT_FOUND, reason },
            `sliver ${sliverUrn} is gone`,
            step.name,
            { code: Status.NOT_FOUND, reason },
          );
          settleWhenReady(context, name);
          return;
        }
      }
    }
    // A node that cannot be reached may have moved: ask its site for the endpoint again next time.
    if (result.error && code === Status.UNAVAILABLE) lookAgain = true;
    if (!step.service) {
      if (result.exit) {
        const reason = `step ${step.name} failed: ${why}`;
        await records.patchTarget(
          name,
          sliverUrn,
          { service: 'failed', code: Status.FAILED_PRECONDITION, reason },
          `${reason} on ${sliverUrn}`,
          step.name,
          { code: Status.FAILED_PRECONDITION, reason },
        );
        settleWhenReady(context, name);
        return;
      }
      // The node could not be reached (or refused the call): try the step again; recorded when the outcome changed.
      const now = records.get(name)?.targets.find((x) => x.sliverUrn === sliverUrn);
      if (now?.code !== code || now.reason !== `step ${step.name}: ${why}`) {
        await records.patchTarget(
          name,
          sliverUrn,
          { code, reason: `step ${step.name}: ${why}` },
          `step ${step.name} on ${sliverUrn} could not run (${why}); retrying`,
          step.name,
          { code, reason: why },
        );
      }
      await sleep(settings.retryMs, signal);
      continue;
    }
    if (ranMs >= settings.backoffResetMs) failuresInRow = 0;
    failuresInRow++;
    const delay = backoffDelay(failuresInRow, settings.backoffInitialMs, settings.backoffMaxMs);
    outputs.outputFor(name, sliverUrn).note(`[fedlab] service ${step.name} ended: ${why}; restarting in ${delay} ms`);
    outputs.flush(name, sliverUrn);
    await records.patchTarget(
      name,
      sliverUrn,
      {
        service: 'backoff',
        restarts: t.restarts + 1,
        lastExit: why,
        nextRestartAt: context.now() + delay,
        code: result.error ? code : 0,
        reason: result.error ? why : '',
      },
      `service ${step.name} on ${sliverUrn} ended (${why}); restart ${t.restarts + 1} in ${delay} ms`,
      step.name,
      { code, reason: why },
    );
    settleWhenReady(context, name);
    await sleep(delay, signal);
  }
}

/** The endpoint of a sliver's node manager, as its site's MA knows it. */
async function lookupEndpoint(context: DeploymentContext, t: TargetRecord, signal: AbortSignal): Promise<string> {
  const siteEp = context.siteByDomain.get(parseUrn(t.nodeUrn).domain);
  if (!siteEp) throw errorForCode(Status.FAILED_PRECONDITION, `site ${t.site} is not in this provider's config (sites[])`);
  const node = (
    await context.deps.remotes.site(siteEp).ma.getNode({ nodeUrn: t.nodeUrn }, { deadlineMs: context.deps.maDeadlineMs, signal })
  ).node;
  if (!node?.endpoint) throw errorForCode(Status.FAILED_PRECONDITION, `the site does not know ${t.nodeUrn}'s endpoint`);
  return node.endpoint;
}

/** One Exec of a step on a sliver, output into the sliver's lines; resolves with the exit. */
async function runExec(
  context: DeploymentContext,
  rec: DeploymentRecord,
  t: TargetRecord,
  endpoint: string,
  step: StepRecord,
  signal: AbortSignal,
): Promise<Exit> {
  const { credentials, remotes, supervision } = context.deps;
  const chain = await credentials.chainFor(rec.sliceUrn, signal);
  const nm = remotes.nodeManager(endpoint, t.nodeUrn);
  const timeoutMs = step.timeoutMs || (step.service ? supervision.execTimeoutMs : 0);
  const out = context.outputs.outputFor(rec.name, t.sliverUrn);
  const stream = nm.exec(
    {
      sliverUrn: t.sliverUrn,
      argv: [...step.argv],
      env: { ...step.env },
      ...(step.stdin !== undefined ? { stdin: Buffer.from(step.stdin, 'base64') } : {}),
      timeoutMs,
    },
    // The node bounds the run by timeout_ms; the call's deadline only has to outlast it.
    { chain, signal, deadlineMs: (timeoutMs || 3_600_000) + 30_000 },
  );
  try {
    for await (const msg of stream) {
      const c = msg.chunk;
      if (!c) continue;
      if (c.$case === 'stdout') out.write('stdout', c.stdout);
      else if (c.$case === 'stderr') out.write('stderr', c.stderr);
      else {
        const st = c.exit.status;
        return {
          ...(st?.$case === 'signal' ? { signal: st.signal } : { code: st?.$case === 'code' ? st.code : 0 }),
          timedOut: c.exit.timedOut,
        };
      }
      context.outputs.flush(rec.name, t.sliverUrn);
    }
  } finally {
    out.end();
  }
  throw errorForCode(Status.UNAVAILABLE, 'the exec stream ended without an exit');
}
