// `fedlab federation check` reports nothing on a healthy `fedlab up`: the real command runs (two sites of
// one node each, the process driver: the smallest federation with a cross-domain slice, to keep the
// suite's time), deploys its service everywhere and says it is ready; the checker, given the flags of
// that directory, finds every site's books, every node's slivers and the slice authority's slices in
// agreement; Ctrl-C then stops it all.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkArgsFor, upLayout } from '../chaos/check-flags.js';
import { cliArgs, exited, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fedlab-up-check-'));
let up: ChildProcess | undefined;
let output = '';

/** Waits until `fedlab up` has printed a line matching `pattern` (or exits, or the time is up). */
function printed(pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = up as ChildProcess;
    const timer = setTimeout(() => done(new Error(`fedlab up did not print ${pattern} within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (): void => {
      if (pattern.test(output)) done();
    };
    const onExit = (code: number | null): void => done(new Error(`fedlab up exited with ${code} before printing ${pattern}:\n${output}`));
    function done(err?: Error): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    onData();
  });
}

afterAll(async () => {
  if (up && up.exitCode === null && up.signalCode === null) {
    up.kill('SIGINT');
    const stopped = await Promise.race([exited(up), new Promise((r) => setTimeout(() => r('timeout'), 60_000))]);
    if (stopped === 'timeout') up.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
}, 90_000);

describe('fedlab federation check on fedlab up', () => {
  it('finds nothing on a healthy federation, which Ctrl-C then stops', async () => {
    up = spawn(
      process.execPath,
      [...cliArgs(), 'up', '--dir', dir, '--sites', 'planetlab,protogeni', '--nodes', '1', '--driver', 'process', '--timeout', '150s'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    up.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    up.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await printed(/ready: the service runs in all 2 slivers on 2 sites/, 170_000);

    const res = await runCli(['federation', 'check', ...checkArgsFor(upLayout(dir)), '--json'], { timeoutMs: 60_000 });
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    const report = JSON.parse(res.stdout) as {
      clean: boolean;
      findings: unknown[];
      summary: { sites: { slivers: number; sliversOnNodes: number; nodesRead: number }[] };
    };
    expect(report.findings).toEqual([]);
    expect(report.clean).toBe(true);
    // It looked: each site's one sliver of the deployment, in its books and on its node.
    expect(report.summary.sites.map((s) => [s.slivers, s.sliversOnNodes, s.nodesRead])).toEqual([
      [1, 1, 1],
      [1, 1, 1],
    ]);

    up.kill('SIGINT');
    expect(await exited(up)).toBe(0);
    expect(output).toMatch(/stopped; everything is in /);
  }, 240_000);
});
