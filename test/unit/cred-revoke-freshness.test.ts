// `fedlab cred revoke` writes lists that can go stale: iat now and next_update --next-update-s later
// (7 days by default), signed again at every run (a repeat refreshes next_update); --next-update-s 0
// writes a list without one (never stale); --expires puts the credential's exp on the entry, and an
// entry past it (and the margin) leaves the list at the next write.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSignedRevocationList } from '../../services/core/credentials/index.js';
import { runCli } from '../helpers/cli.js';
import { makeTestPki, type TestIdentity } from '../helpers/pki.js';
import { testJti } from './credentials-fixtures.js';

let dir: string;
let ma: TestIdentity;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-cred-revoke-'));
  const pki = await makeTestPki('plc.test');
  ma = await pki.issue('urn:fedlab:plc.test:authority:ma');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (file: string) => parseSignedRevocationList(readFileSync(file, 'utf8'));

describe('fedlab cred revoke and next_update', { timeout: 120_000 }, () => {
  it('stamps the list (7 days by default, or --next-update-s), never stale with 0, and drops expired entries', async () => {
    const list = join(dir, 'ma.jws');
    const old = testJti();
    const live = testJti();
    const a = await runCli(['cred', 'revoke', '--jti', live, '--list', list, '--key', ma.keyPath, '--expires', '2100-01-01T00:00:00Z']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/the list holds until .+: sign it again before then/);
    const first = read(list);
    expect(first.next_update! - first.iat!).toBe(7 * 86_400);
    expect(first.entries[0]).toMatchObject({ jti: live, exp: 4_102_444_800 });

    const b = await runCli([
      'cred',
      'revoke',
      '--jti',
      old,
      '--list',
      list,
      '--key',
      ma.keyPath,
      '--expires',
      '978307200',
      '--next-update-s',
      '3600',
      '--json',
    ]);
    expect(b.code, b.stderr).toBe(0);
    const second = read(list);
    expect(second.next_update! - second.iat!).toBe(3600);
    // The entry of a long-expired credential does not stay; the version still counts it.
    expect(second.version).toBe(2);
    expect(second.entries.map((e) => e.jti)).toEqual([live]);

    const c = await runCli(['cred', 'revoke', '--jti', testJti(), '--list', list, '--key', ma.keyPath, '--next-update-s', '0']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/no next_update: verifiers never take it as stale/);
    expect(read(list).next_update).toBeUndefined();

    const bad = await runCli(['cred', 'revoke', '--jti', testJti(), '--list', list, '--key', ma.keyPath, '--next-update-s', '5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--next-update-s must be whole seconds, 60 or more/);
  });
});
