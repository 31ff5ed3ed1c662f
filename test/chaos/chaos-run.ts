// The chaos suite's engine: rounds of random slice creates, renews and deletes with kill -9 and
// SIGSTOP/SIGCONT of random parties at random moments (schedule.ts), on a running local federation.
// After each round every party is brought back, and the federation must settle, within a bound, to what
// `fedlab federation check` calls clean (read twice in a row); and what was acknowledged must still be
// so: a slice whose create answered READY or PARTIAL is still live unless something tried to delete it,
// and one whose delete answered DELETED is DELETED. A failing round reports its seed, its schedule,
// what each step got and what the checker said, and how to replay it.
import { status as Status } from '@grpc/grpc-js';
import { isServiceError, type PromiseClient } from '../../services/core/rpc/client.js';
import { sleep } from '../../services/core/timing.js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceState, type SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { Finding } from '../../cli/commands/federation/check-analysis.js';
import { checkOnce } from '../../cli/commands/federation/check-run.js';
import type { CheckTarget } from '../../cli/commands/federation/check-target.js';
import type { LocalFederation } from '../../cli/up/federation.js';
import { checkTargetFor } from './check-flags.js';
import { Faults } from './faults.js';
import { createdIn, describePlan, describeStep, planRound, type RoundPlan, type Step, type World } from './schedule.js';

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  readonly fed: LocalFederation;
  readonly seed: number;
  readonly rounds: number;
  /** The first round (to replay one round alone; 1 by default). */
  readonly firstRound?: number;
  /** No new round starts once this much time has passed (ms); the bound of a CI run. */
  readonly budgetMs?: number;
  /** How long the federation may take to settle after a round (ms). */
  readonly settleMs?: number;
  readonly say: (line: string) => void;
  /**
   * SIGSTOP node managers too (on by default). A node manager stopped past the MA's call deadline
   * during a Provision receives the stale CreateSliver with the MA's undo (a DeleteSliver of a sliver
   * it did not have yet) behind it; the call's signal and the delete's tombstone fence it
   * (services/node-manager/sliver-tombstones.ts). False leaves node managers to kill -9 only.
   */
  readonly stopNodes?: boolean;
}

/** What a run did. */
export interface ChaosResult {
  readonly seed: number;
  readonly rounds: number;
  readonly ok: boolean;
  /** The failing round's report (seed, schedule, outcomes, findings, replay command). */
  readonly failure?: string;
  /** Counts per operation and outcome, faults, and settling times. */
  readonly stats: { readonly steps: Record<string, number>; readonly settleMs: number[]; readonly elapsedMs: number };
}

const STATE = (s: SliceState | undefined): string => (SliceState[s ?? 0] ?? '?').replace('SLICE_STATE_', '');

/** Runs rounds until one fails, the rounds are done, or the budget is spent; then deletes what is left and checks once more. */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const t0 = Date.now();
  const faults = new Faults(o.fed);
  const parties = faults.parties();
  const world: World = {
    domains: o.fed.sites.map((s) => s.domain),
    parties,
    stoppable: o.stopNodes === false ? parties.filter((p) => p === 'sa' || p.endsWith('/ma')) : parties,
  };
  const target = checkTargetFor(o.fed, { grace: '5s', timeout: '5s' });
  // A fresh client per call, as a provider's separate commands would be: a long-lived channel that
  // saw the slice authority go away fails fast while it backs off, which would hide the restarted one.
  const sa = <T>(fn: (c: SaClient) => Promise<T>): Promise<T> => withClient(() => o.fed.saClient(o.fed.homePaths.sp, 30_000), fn);
  const urnOf = (name: string): string => `urn:fedlab:${o.fed.home}:slice:${name}`;
  const acked = new Map<string, 'live' | 'deleted'>();
  const touched = new Set<string>();
  const stats = { steps: {} as Record<string, number>, settleMs: [] as number[] };
  const count = (key: string): void => {
    stats.steps[key] = (stats.steps[key] ?? 0) + 1;
  };
  const first = o.firstRound ?? 1;
  let last = first - 1;
  try {
    for (let round = first; round < first + o.rounds; round++) {
      if (o.budgetMs !== undefined && Date.now() - t0 > o.budgetMs) break;
      const plan = planRound(o.seed, round, world);
      o.say(describePlan(plan));
      const outcomes = await Promise.all(plan.steps.map((step) => runStep(step, { sa, urnOf, faults, acked, touched, count })));
      for (const line of outcomes) o.say(`  ${line}`);
      const healed = await faults.heal();
      const verdict = await judge(target, sa, urnOf, acked, touched, o.settleMs ?? 90_000);
      last = round;
      stats.settleMs.push(verdict.ms);
      o.say(`round ${round}: settled in ${verdict.ms} ms${verdict.problems.length ? '' : ', checker clean'}`);
      if (verdict.problems.length > 0) return failed(o, plan, outcomes, healed, verdict.problems, stats, t0, round - first + 1);
    }
    // What the last round made is deleted too, with the parties all up: the federation must end empty and clean.
    const leftovers = createdIn(o.seed, last, world);
    const cleanup: RoundPlan = {
      seed: o.seed,
      round: last + 1,
      steps: leftovers.map((slice) => ({ at: 0, op: 'delete' as const, slice })),
    };
    const outcomes = await Promise.all(cleanup.steps.map((step) => runStep(step, { sa, urnOf, faults, acked, touched, count })));
    const verdict = await judge(target, sa, urnOf, acked, touched, o.settleMs ?? 90_000);
    if (verdict.problems.length > 0) return failed(o, cleanup, outcomes, [], verdict.problems, stats, t0, last - first + 1);
    return { seed: o.seed, rounds: last - first + 1, ok: true, stats: { ...stats, elapsedMs: Date.now() - t0 } };
  } finally {
    await faults.heal().catch(() => undefined);
  }
}

type SaClient = PromiseClient<typeof SliceAuthorityService>;
/** Runs `fn` with a fresh slice authority client, closed afterwards. */
type WithSa = <T>(fn: (c: SaClient) => Promise<T>) => Promise<T>;

async function withClient<T>(make: () => SaClient, fn: (c: SaClient) => Promise<T>): Promise<T> {
  const c = make();
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

interface StepDeps {
  readonly sa: WithSa;
  /** A slice's URN from its name (the home slice authority's slices are `urn:fedlab:<home>:slice:<name>`). */
  readonly urnOf: (name: string) => string;
  readonly faults: Faults;
  readonly acked: Map<string, 'live' | 'deleted'>;
  readonly touched: Set<string>;
  readonly count: (key: string) => void;
}

/** Runs one step at its moment; says what it got. */
async function runStep(step: Step, d: StepDeps): Promise<string> {
  await sleep(step.at);
  const said = (what: string): string => `${describeStep(step)} → ${what}`;
  try {
    switch (step.op) {
      case 'create': {
        const res = await d.sa((c) =>
          c.createSlice({
            users: [],
            requestId: `chaos-${step.slice}`,
            name: step.slice,
            description: 'chaos',
            mode: step.bestEffort ? SliceMode.SLICE_MODE_BEST_EFFORT : SliceMode.SLICE_MODE_ALL_OR_NOTHING,
            sites: step.sites.map((site) => ({
              site,
              request: {
                nodes: { nodeUrns: [], count: 1, clientIds: [] },
                resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
                links: [],
                exclusive: false,
                requestDocument: '',
                requestDocumentFormat: '',
              },
            })),
            start: true,
            wait: true,
          }),
        );
        const state = res.slice?.state;
        if (state === SliceState.SLICE_STATE_READY || state === SliceState.SLICE_STATE_PARTIAL) d.acked.set(step.slice, 'live');
        d.count(`create ${STATE(state)}`);
        return said(STATE(state));
      }
      case 'renew': {
        await d.sa((c) =>
          c.renewSlice({
            sliceUrn: d.urnOf(step.slice),
            expiresAt: new Date(Date.now() + step.days * 86_400_000),
            bestEffort: false,
          }),
        );
        d.count('renew OK');
        return said('OK');
      }
      case 'delete': {
        d.touched.add(step.slice);
        const res = await d.sa((c) => c.deleteSlice({ sliceUrn: d.urnOf(step.slice) }));
        if (res.slice?.state === SliceState.SLICE_STATE_DELETED) d.acked.set(step.slice, 'deleted');
        d.count(`delete ${STATE(res.slice?.state)}`);
        return said(STATE(res.slice?.state));
      }
      case 'kill':
        await d.faults.kill(step.party, step.downMs);
        d.count('kill -9');
        return said('restarted');
      case 'stop':
        await d.faults.stop(step.party, step.forMs);
        d.count('SIGSTOP');
        return said('continued');
    }
  } catch (err) {
    d.count(`${step.op} failed`);
    if (isServiceError(err)) return said(`${Status[err.code] ?? err.code}: ${err.details.slice(0, 200)}`);
    return said(`error: ${(err as Error).message.slice(0, 200)}`);
  }
}

/**
 * Waits (up to `settleMs`) until two readings in a row find nothing, then checks the acknowledged
 * outcomes. Returns what is still wrong (empty: settled) and how long it took.
 */
async function judge(
  target: CheckTarget,
  sa: WithSa,
  urnOf: (name: string) => string,
  acked: ReadonlyMap<string, 'live' | 'deleted'>,
  touched: ReadonlySet<string>,
  settleMs: number,
): Promise<{ problems: string[]; ms: number }> {
  const t0 = Date.now();
  let clean = 0;
  let last: Finding[] = [];
  let lastError = '';
  while (Date.now() - t0 < settleMs && clean < 2) {
    try {
      last = (await checkOnce(target, 0)).findings;
      lastError = '';
      clean = last.length === 0 ? clean + 1 : 0;
    } catch (err) {
      lastError = `the checker could not read the slice authority: ${(err as Error).message}`;
      clean = 0;
    }
    if (clean < 2) await sleep(1000);
  }
  const ms = Date.now() - t0;
  if (clean < 2) return { problems: lastError ? [lastError] : last.map((f) => `${f.kind}: ${f.message}`), ms };
  const problems: string[] = [];
  for (const [name, want] of acked) {
    if (want === 'live' && touched.has(name)) continue;
    const state = await sliceState(sa, urnOf(name));
    if (want === 'live' && state !== 'READY' && state !== 'PARTIAL')
      problems.push(`slice ${name}: its create was acknowledged live and nothing deleted it, but it is ${state}`);
    if (want === 'deleted' && state !== 'DELETED') problems.push(`slice ${name}: its delete was acknowledged, but it is ${state}`);
  }
  return { problems, ms };
}

async function sliceState(sa: WithSa, urn: string): Promise<string> {
  try {
    return STATE((await sa((c) => c.getSlice({ sliceUrn: urn }))).slice?.state);
  } catch (err) {
    return isServiceError(err) ? `unreadable (${err.details})` : `unreadable (${(err as Error).message})`;
  }
}

function failed(
  o: ChaosOptions,
  plan: RoundPlan,
  outcomes: readonly string[],
  healed: readonly string[],
  problems: readonly string[],
  stats: { steps: Record<string, number>; settleMs: number[] },
  t0: number,
  rounds: number,
): ChaosResult {
  const nodes = o.stopNodes === false ? ' --no-stop-nodes' : '';
  const failure = [
    `chaos round ${plan.round} of seed ${o.seed} did not settle clean:`,
    describePlan(plan),
    'what each step got:',
    ...outcomes.map((x) => `  ${x}`),
    ...(healed.length ? [`brought back after the round: ${healed.join(', ')}`] : []),
    'still wrong:',
    ...problems.map((p) => `  ${p}`),
    `replay: npm run chaos -- --seed ${o.seed} --rounds ${plan.round}${nodes}   (or this round alone: --seed ${o.seed} --from-round ${plan.round} --rounds 1${nodes})`,
  ].join('\n');
  return { seed: o.seed, rounds, ok: false, failure, stats: { ...stats, elapsedMs: Date.now() - t0 } };
}
