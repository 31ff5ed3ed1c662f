// A whole local federation for end-to-end tests, through the same library as `fedlab up`
// (cli/up): every party a separate `fedlab serve` process, under a temporary directory that is
// removed afterwards, with every process stopped and every sliver runtime swept.
import { rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalFederation, type FederationOptions } from '../../cli/up/federation.js';
import { cliArgs } from './cli.js';

/** A started federation and how to get rid of it. */
export interface TestFederation {
  readonly fed: LocalFederation;
  readonly dir: string;
  /** Stops every process, sweeps sliver runtimes and namespaces, removes the directory. Says what had to be killed or swept. */
  destroy(): Promise<{ killed: string[]; swept: string[] }>;
}

/** Opens a federation in a fresh temporary directory (nothing started yet). */
export async function openFederation(o: Omit<FederationOptions, 'dir'> = {}): Promise<TestFederation> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlab-e2e-'));
  const fed = await LocalFederation.open({ fedlabArgs: cliArgs(), ...o, dir });
  let destroyed: Promise<{ killed: string[]; swept: string[] }> | undefined;
  return {
    fed,
    dir,
    destroy: () =>
      (destroyed ??= (async () => {
        const killed = await fed.stop();
        const swept = await fed.sweepLeftovers();
        rmSync(dir, { recursive: true, force: true });
        return { killed, swept };
      })()),
  };
}
