import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../../services/core/store/store.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/batch-writer.ts');

/** Starts the writer, waits until it has written for `ms`, then kills it with SIGKILL. */
async function runAndKill(dir: string, ms: number): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
  });
  await new Promise((r) => setTimeout(r, ms));
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe('store crash safety', () => {
  it('a kill -9 in the middle of batches leaves every batch whole or absent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlab-crash-'));
    try {
      for (const ms of [150, 400, 700]) {
        await runAndKill(dir, ms);
        const store = await Store.open(dir);
        try {
          const round = await store.table<number>('meta').get('round');
          expect(round).toBeGreaterThan(0);
          const rounds = new Set<number>();
          let n = 0;
          for await (const [, v] of store.table<{ round: number }>('records').entries()) {
            rounds.add(v.round);
            n++;
          }
          // Every record carries the round of the last batch that landed, and that batch landed whole.
          expect(n).toBe(200);
          expect([...rounds]).toEqual([round]);
        } finally {
          await store.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
