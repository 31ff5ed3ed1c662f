#!/usr/bin/env node
// Runs the whole suite with vitest and ends with the plain line "N passed, N failed[, N skipped]".
// Exits non-zero on any failed test, any suite that failed to load, or a run with no tests.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'fedlab-test-report-'));
const report = join(dir, 'report.json');
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)];
// `npm test` built dist/ just before (pretest), so child processes may run the compiled CLI.
const run = spawnSync('npx', args, { stdio: 'inherit', env: { ...process.env, FEDLAB_TEST_CLI: process.env.FEDLAB_TEST_CLI ?? 'dist' } });

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests ?? 0;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A file that failed to load has no failed test but is a failure all the same.
  const brokenSuites = (r.testResults ?? []).filter(
    (s) => s.status === 'failed' && (s.assertionResults ?? []).every((a) => a.status !== 'failed'),
  ).length;
  failed = (r.numFailedTests ?? 0) + brokenSuites;
} catch {
  failed = Math.max(failed, 1);
  process.stderr.write('could not read the test report: the run did not finish\n');
}
rmSync(dir, { recursive: true, force: true });
if (run.status !== 0 && failed === 0) failed = 1;
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
