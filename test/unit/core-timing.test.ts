// sleep ends early on abort, until names what it waited for, pool bounds concurrency and reports the first failure.
import { describe, expect, it } from 'vitest';
import { pool, sleep, until } from '../../services/core/timing.js';

describe('timing', () => {
  it('sleep resolves at once when aborted, before or during', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = sleep(10_000, ac.signal);
    ac.abort();
    await p;
    await sleep(10_000, ac.signal);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('until polls and names what it waited for', async () => {
    let n = 0;
    await until(() => ++n > 3, 2_000, 'three polls', 1);
    expect(n).toBe(4);
    await expect(until(() => false, 30, 'never', 5)).rejects.toThrow('timed out after 30 ms waiting for never');
  });

  it('pool keeps at most `limit` in flight and rethrows the first failure after all settle', async () => {
    let inFlight = 0;
    let most = 0;
    const done: number[] = [];
    await pool([1, 2, 3, 4, 5, 6, 7], 3, async (x) => {
      most = Math.max(most, ++inFlight);
      await sleep(2);
      inFlight--;
      done.push(x);
    });
    expect(most).toBe(3);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const settled: number[] = [];
    await expect(
      pool([1, 2, 3], 2, async (x) => {
        if (x === 1) throw new Error('first');
        await sleep(5);
        settled.push(x);
      }),
    ).rejects.toThrow('first');
    expect(settled).toContain(2);
  });
});
