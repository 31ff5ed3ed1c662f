// The schedule of one chaos round, made from the run's seed and the round number alone (so any round
// replays): slice creates, renews and deletes at random moments, and faults — kill -9 of a party and its
// restart some time later, or SIGSTOP and SIGCONT some time later — of random parties at random moments.
// A round deletes the slices the round before created, so the federation never fills up.
import { Prng } from './prng.js';

/** A party of the federation: `sa`, `<domain>/ma` or `<domain>/<node>`. */
export type Party = string;

/** One thing a round does, `at` ms after the round starts. */
export type Step =
  | { readonly at: number; readonly op: 'create'; readonly slice: string; readonly sites: readonly string[]; readonly bestEffort: boolean }
  | { readonly at: number; readonly op: 'renew'; readonly slice: string; readonly days: number }
  | { readonly at: number; readonly op: 'delete'; readonly slice: string }
  | { readonly at: number; readonly op: 'kill'; readonly party: Party; readonly downMs: number }
  | { readonly at: number; readonly op: 'stop'; readonly party: Party; readonly forMs: number };

/** A round's plan. */
export interface RoundPlan {
  readonly seed: number;
  readonly round: number;
  readonly steps: readonly Step[];
}

/** What a schedule is made over. */
export interface World {
  /** The sites' domains. */
  readonly domains: readonly string[];
  /** Every party kill -9 may hit. */
  readonly parties: readonly Party[];
  /** The parties SIGSTOP may hit (node managers only when asked: see chaos-run.ts). */
  readonly stoppable: readonly Party[];
}

/** Bounds of a round's schedule. */
const ROUND = {
  /** Operations start within this many ms. */
  opsWithinMs: 3500,
  /** Faults start within this many ms. */
  faultsWithinMs: 4000,
  /** A killed party is restarted after this many ms. */
  downMs: [200, 3000],
  /** A stopped party is continued after this many ms (past the slice authority's per-site deadline at the top). */
  stoppedMs: [500, 9000],
} as const;

/** The names of the slices round `round` creates (none before round 1). */
export function createdIn(seed: number, round: number, world: World): string[] {
  if (round < 1) return [];
  return planRound(seed, round, world)
    .steps.filter((s) => s.op === 'create')
    .map((s) => (s as { slice: string }).slice);
}

/** The plan of round `round` (1, 2, …) of the run with `seed`. */
export function planRound(seed: number, round: number, world: World): RoundPlan {
  const rng = Prng.forRound(seed, round);
  const steps: Step[] = [];
  const created: string[] = [];
  const creates = rng.int(1, 3);
  for (let k = 0; k < creates; k++) {
    const slice = `r${round}-${k}`;
    created.push(slice);
    const sites = world.domains.filter(() => rng.chance(0.7));
    steps.push({
      at: rng.int(0, ROUND.opsWithinMs - 1000),
      op: 'create',
      slice,
      sites: sites.length > 0 ? sites : [rng.pick(world.domains)],
      bestEffort: rng.chance(0.3),
    });
  }
  // The previous round's slices go (its plan is derived the same way, from the seed).
  const previous = round > 1 ? createdIn(seed, round - 1, world) : [];
  for (const slice of previous) steps.push({ at: rng.int(0, ROUND.opsWithinMs), op: 'delete', slice });
  steps.push({ at: rng.int(500, ROUND.opsWithinMs), op: 'renew', slice: rng.pick([...previous, ...created]), days: rng.int(1, 6) });
  if (rng.chance(0.3)) steps.push({ at: rng.int(1500, ROUND.opsWithinMs + 500), op: 'delete', slice: rng.pick(created) });
  const faults = rng.int(1, 2);
  const hit = new Set<Party>();
  for (let f = 0; f < faults; f++) {
    const kill = rng.chance(0.5);
    const party = rng.pick((kill ? world.parties : world.stoppable).filter((p) => !hit.has(p)));
    hit.add(party);
    const at = rng.int(0, ROUND.faultsWithinMs);
    if (kill) steps.push({ at, op: 'kill', party, downMs: rng.int(ROUND.downMs[0], ROUND.downMs[1]) });
    else steps.push({ at, op: 'stop', party, forMs: rng.int(ROUND.stoppedMs[0], ROUND.stoppedMs[1]) });
  }
  return { seed, round, steps: steps.sort((a, b) => a.at - b.at) };
}

/** One step in words. */
export function describeStep(s: Step): string {
  const at = `+${String(s.at).padStart(4)} ms`;
  switch (s.op) {
    case 'create':
      return `${at} create ${s.slice} at ${s.sites.join(', ')}${s.bestEffort ? ' (best effort)' : ''}`;
    case 'renew':
      return `${at} renew ${s.slice} by ${s.days} d`;
    case 'delete':
      return `${at} delete ${s.slice}`;
    case 'kill':
      return `${at} kill -9 ${s.party}, restart ${s.downMs} ms later`;
    case 'stop':
      return `${at} SIGSTOP ${s.party}, SIGCONT ${s.forMs} ms later`;
  }
}

/** A round's plan in words, one step a line. */
export function describePlan(plan: RoundPlan): string {
  return [`round ${plan.round} (seed ${plan.seed}):`, ...plan.steps.map((s) => `  ${describeStep(s)}`)].join('\n');
}
