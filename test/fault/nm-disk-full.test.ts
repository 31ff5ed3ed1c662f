// A node manager (`fedlab serve nm`) whose data directory is on a small tmpfs that fills up: every
// CreateSliver and DeleteSliver that must write answers UNAVAILABLE naming the store and changes nothing
// (no sliver made, none deleted, no tombstone); reads go on; once space is freed the node manager writes
// again by itself; after a kill -9 and a restart every acknowledged sliver is there and no refused one
// is. The simulated driver: the store is what is tested, and it keeps the sliver runtimes off the full
// disk. Root only (it mounts the tmpfs).
import { status as Status } from '@grpc/grpc-js';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { exited, startCli } from '../helpers/cli.js';
import { until } from '../helpers/ma-harness.js';
import { createRequest, NODE_URN, parties, tlsOf, withSaJwk, writeNmConfig } from '../helpers/node-manager.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../helpers/tmpfs.js';

const skip = tmpfsUnavailable();
if (skip) console.warn(`skipping the node manager disk-full test: ${skip}`);

let fs: Tmpfs | undefined;
let dataDir = '';
let configFile = '';
let child: ChildProcess | undefined;
let client: PromiseClient<typeof NodeManagerService> | undefined;

/** What became of a sliver's calls: acknowledged or refused by the store. */
interface Fate {
  created: 'ok' | 'refused';
  deleted?: 'ok' | 'refused';
}
const fates = new Map<string, Fate>();
const urnOf = (name: string): string => `urn:fedlab:plc.test:sliver:${name}`;

/** 'ok', or 'refused' when the store refused the write (UNAVAILABLE naming the store, "nothing was changed"); anything else fails the test. */
async function outcome(call: Promise<unknown>): Promise<'ok' | 'refused'> {
  try {
    await call;
    return 'ok';
  } catch (err) {
    const e = err as { code?: number; details?: string; metadata?: { get(k: string): unknown[] } };
    expect(e.code, String(e.details)).toBe(Status.UNAVAILABLE);
    expect(e.details).toMatch(/the store at .* refuses writes since .*(disk full|I\/O error).*nothing was changed/);
    expect(String(e.metadata?.get('fedlab-store')[0])).toBe(dataDir);
    return 'refused';
  }
}

async function serve(): Promise<void> {
  const p = await parties();
  const started = await startCli(['serve', 'nm', '--config', configFile], (l) => l.msg === 'listening', { timeoutMs: 60_000 });
  child = started.child;
  client?.close();
  client = createClient(NodeManagerService, {
    address: started.line.address as string,
    tls: tlsOf(p, p.ma),
    serverUrn: NODE_URN,
    deadlineMs: 20_000,
  });
}

async function make(name: string): Promise<Fate> {
  const p = await parties();
  const req = await withSaJwk(createRequest(name, { sliceUrn: `urn:fedlab:plc.test:slice:${name}` }));
  const fate: Fate = {
    created: await outcome((client as PromiseClient<typeof NodeManagerService>).createSliver(req, { chain: p.ownerChain })),
  };
  fates.set(name, fate);
  return fate;
}

async function remove(name: string): Promise<'ok' | 'refused'> {
  const p = await parties();
  const fate = fates.get(name) as Fate;
  fate.deleted = await outcome(
    (client as PromiseClient<typeof NodeManagerService>).deleteSliver({ sliverUrn: urnOf(name) }, { chain: p.ownerChain }),
  );
  return fate.deleted;
}

async function listed(): Promise<string[]> {
  const p = await parties();
  const res = await (client as PromiseClient<typeof NodeManagerService>).listSlivers(
    { pageSize: 0, pageToken: '', sliceUrn: '' },
    { chain: p.ownerChain },
  );
  return res.slivers.map((s) => s.urn).sort();
}

beforeAll(async () => {
  if (skip) return;
  fs = mountTmpfs(4096);
  dataDir = join(fs.dir, 'data');
  configFile = await writeNmConfig(dataDir, { driver: 'simulated', config: { log_level: 'info', reaper_interval_ms: 60_000 } });
  await serve();
}, 90_000);

afterAll(async () => {
  client?.close();
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await exited(child);
  }
  fs?.unmount();
});

describe.skipIf(skip !== undefined)('node manager on a full disk', () => {
  it('refuses what it cannot write, changes nothing, resumes by itself, and a restart finds exactly what it acknowledged', async () => {
    for (const name of ['before-1', 'before-2', 'before-3']) expect(await make(name)).toEqual({ created: 'ok' });

    (fs as Tmpfs).fill(0);
    let n = 0;
    await until(async () => (await make(`full-${n++}`)).created === 'refused', 20_000, 'a CreateSliver refused by the store');
    for (let i = 0; i < 3; i++) expect(await make(`refused-${i}`)).toEqual({ created: 'refused' });
    expect(await remove('before-1')).toBe('refused');
    // A delete of a sliver the node does not have must write its tombstone: refused too.
    expect(await outcome(client!.deleteSliver({ sliverUrn: urnOf('never-here') }, { chain: (await parties()).ownerChain }))).toBe(
      'refused',
    );
    // Nothing of it happened, and reads go on.
    const during = await listed();
    for (let i = 0; i < 3; i++) expect(during).not.toContain(urnOf(`refused-${i}`));
    expect(during).toContain(urnOf('before-1'));

    (fs as Tmpfs).free();
    let m = 0;
    await until(async () => (await make(`after-${m++}`)).created === 'ok', 30_000, 'a CreateSliver taken again');
    for (const name of ['after-x', 'after-y']) expect(await make(name)).toEqual({ created: 'ok' });
    expect(await remove('before-2')).toBe('ok');

    // kill -9 and a restart on the same data.
    child!.kill('SIGKILL');
    await exited(child!);
    await serve();
    const want = [...fates]
      .filter(([, f]) => f.created === 'ok' && f.deleted !== 'ok')
      .map(([name]) => urnOf(name))
      .sort();
    expect(await listed()).toEqual(want);
    expect([...fates.values()].filter((f) => f.created === 'refused').length).toBeGreaterThanOrEqual(4);
  }, 150_000);
});
