// A real PKI for tests, one call each: a CA (`makeTestPki`), certificates for any URN (`pki.issue`),
// a server certificate for localhost (`pki.issueServer`), a trust bundle (`pki.bundle`), and an unrelated
// CA (`makeTestPki` again, for the same domain or another). Everything lives in a temporary directory
// that is removed when the test process exits (or earlier with `pki.cleanup()`).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki, type TestPki, type TestPkiOptions } from '../../certs/test-pki.js';

export type { TestIdentity, TestIssueOptions, TestPki } from '../../certs/test-pki.js';

const made = new Set<string>();
let hooked = false;

function removeAll(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made.clear();
}

/** Makes a CA for `domain` (default `plc.test`) in a fresh temporary directory. */
export async function makeTestPki(domain = 'plc.test', options: Omit<TestPkiOptions, 'domain'> = {}): Promise<TestPki> {
  const pki = await createTestPki({ ...options, domain });
  if (!options.dir) {
    made.add(pki.dir);
    if (!hooked) {
      hooked = true;
      process.once('exit', removeAll);
    }
  }
  const cleanup = pki.cleanup;
  return {
    ...pki,
    cleanup: async () => {
      made.delete(pki.dir);
      await cleanup();
    },
  };
}

/**
 * Every path under `root` with its mode and a SHA-256 of its contents (directories marked as such):
 * compare two snapshots to show that a failed command wrote nothing. Missing root gives an empty map.
 */
export function snapshotTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = statSync(p);
      if (st.isDirectory()) {
        out.set(`${r}/`, `dir ${(st.mode & 0o777).toString(8)}`);
        walk(p, r);
      } else {
        out.set(r, `${(st.mode & 0o777).toString(8)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
      }
    }
  };
  walk(root, '');
  return out;
}
