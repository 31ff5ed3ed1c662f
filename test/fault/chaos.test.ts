// The chaos suite, bounded for `npm test` (about three minutes): a small federation of real processes
// (two sites of two node managers each and a slice authority), rounds of random slice creates, renews
// and deletes with kill -9 and SIGSTOP/SIGCONT of random parties at random moments; after each round
// every party is brought back and `fedlab federation check` must find nothing once the federation
// settles, and acknowledged outcomes must hold (test/chaos/chaos-run.ts). Node managers are stopped too:
// a stale CreateSliver that reaches a node after the MA's undo is fenced (its signal, the delete's
// tombstone). The seed is printed first; a
// failing round prints its schedule and the command that replays it. FEDLAB_CHAOS_SEED picks the seed;
// `npm run chaos -- --rounds 200` runs long.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChaos } from '../chaos/chaos-run.js';
import { startChaosFederation } from '../chaos/chaos-federation.js';
import { freshSeed } from '../chaos/prng.js';
import type { TestFederation } from '../helpers/federation.js';

const seed = process.env.FEDLAB_CHAOS_SEED ? Number(process.env.FEDLAB_CHAOS_SEED) : freshSeed();
let tf: TestFederation;
const lines: string[] = [];

describe('chaos: random kill -9 and SIGSTOP of any party during slice work', () => {
  beforeAll(async () => {
    console.log(`chaos seed ${seed} (replay: npm run chaos -- --seed ${seed} --rounds 12)`);
    tf = await startChaosFederation();
  }, 180_000);

  afterAll(async () => {
    await tf?.destroy();
  }, 60_000);

  it('settles clean after every round, and keeps what it acknowledged', { timeout: 260_000 }, async () => {
    const result = await runChaos({
      fed: tf.fed,
      seed,
      rounds: 12,
      // Rounds start only within this budget, so the whole file stays near three minutes.
      budgetMs: 100_000,
      settleMs: 40_000,
      stopNodes: true,
      say: (line) => lines.push(line),
    });
    const settle = [...result.stats.settleMs].sort((a, b) => a - b);
    console.log(
      `chaos seed ${seed}: ${result.rounds} round(s) in ${Math.round(result.stats.elapsedMs / 1000)} s; steps ${JSON.stringify(result.stats.steps)}; settled in ${settle.join(', ')} ms`,
    );
    if (!result.ok) console.log(`${lines.join('\n')}\n${result.failure ?? ''}`);
    expect(result.ok, result.failure).toBe(true);
    expect(result.rounds).toBeGreaterThanOrEqual(2);
  });
});
