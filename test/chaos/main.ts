// `npm run chaos -- [--seed S] [--rounds N] [--from-round R] [--driver process|container] [--no-stop-nodes] [--keep]`: the
// chaos suite outside the test runner, as long as asked (`--rounds 200` runs long). Prints the seed
// first, each round's schedule, and at the end the figures; a failing round prints its seed, schedule,
// outcomes, the checker's findings and the command that replays it, keeps the federation's directory
// (logs) and exits 1.
import { parseArgs } from 'node:util';
import { runChaos } from './chaos-run.js';
import { startChaosFederation } from './chaos-federation.js';
import { freshSeed } from './prng.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    rounds: { type: 'string', default: '20' },
    'from-round': { type: 'string', default: '1' },
    driver: { type: 'string', default: 'process' },
    settle: { type: 'string', default: '90' },
    keep: { type: 'boolean', default: false },
    // SIGSTOP of node managers is on; --stop-nodes (the old switch) is still taken, --no-stop-nodes turns it off.
    'stop-nodes': { type: 'boolean', default: true },
    'no-stop-nodes': { type: 'boolean', default: false },
  },
});
const whole = (v: string | undefined, name: string): number => {
  if (!v || !/^[0-9]+$/.test(v)) {
    process.stderr.write(`chaos: --${name} must be a whole number\n`);
    process.exit(2);
  }
  return Number(v);
};
const seed = values.seed === undefined ? freshSeed() : whole(values.seed, 'seed');
const rounds = whole(values.rounds, 'rounds');
const driver = values.driver === 'container' ? 'container' : 'process';
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const stopNodes = !values['no-stop-nodes'];

say(
  `chaos: seed ${seed}, ${rounds} round(s) from round ${values['from-round']}, ${driver} driver; SIGSTOP of node managers ${stopNodes ? 'on' : 'off (--no-stop-nodes)'}`,
);
const tf = await startChaosFederation({ driver, say });
let ok = false;
try {
  const result = await runChaos({
    fed: tf.fed,
    seed,
    rounds,
    firstRound: whole(values['from-round'], 'from-round'),
    settleMs: whole(values.settle, 'settle') * 1000,
    stopNodes,
    say,
  });
  const settle = [...result.stats.settleMs].sort((a, b) => a - b);
  const pct = (p: number): number => settle[Math.min(settle.length - 1, Math.floor(p * settle.length))] ?? 0;
  say(`chaos: seed ${seed}: ${result.rounds} round(s) in ${Math.round(result.stats.elapsedMs / 1000)} s`);
  say(
    `  steps: ${Object.entries(result.stats.steps)
      .sort()
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );
  say(
    `  settled (checker clean twice) in ${pct(0)} / ${pct(0.5)} / ${pct(0.95)} / ${settle[settle.length - 1] ?? 0} ms (min / median / p95 / max)`,
  );
  if (result.ok) {
    ok = true;
    say('chaos: every round settled clean');
  } else say(result.failure ?? 'chaos: failed');
} finally {
  if (ok || !values.keep) await tf.destroy();
  else {
    await tf.fed.stop();
    await tf.fed.sweepLeftovers();
    say(`chaos: the federation's directory (logs under logs/) is kept: ${tf.dir}`);
  }
}
process.exit(ok ? 0 : 1);
