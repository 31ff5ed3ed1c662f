/**
 * Locating files that ship with the package (the descriptor set for
 * reflection), whether the code runs from TypeScript sources or from dist/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The package's root directory (the one holding Fedlab's package.json). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'fedlab') {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the fedlab package root');
    dir = up;
  }
}

/** Path of the compiled descriptor set of the fedlab.v1 API (written by `npm run gen`). */
export function descriptorSetPath(): string {
  return join(packageRoot(), 'services', 'generated', 'fedlab.binpb');
}
