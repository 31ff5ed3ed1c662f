#!/usr/bin/env node
// Regenerates the generated code and fails if that changed anything: generated code is committed and never edited by hand.
import { execSync } from 'node:child_process';

execSync('npm run --silent gen', { stdio: 'inherit' });
const diff = execSync('git status --porcelain -- services/generated', { encoding: 'utf8' });
if (diff.trim()) {
  process.stderr.write(`generated code is stale; run \`npm run gen\` and commit:\n${diff}`);
  process.exit(1);
}
process.stdout.write('generated code is up to date\n');
