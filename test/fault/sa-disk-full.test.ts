// A slice authority (`fedlab serve sa`) whose data directory is on a small tmpfs that fills up: every
// CreateSlice and DeleteSlice that must write answers UNAVAILABLE naming the store and changes nothing
// (no slice, nothing at the sites, a slice not deleted); once space is freed the SA writes again by
// itself; after a kill -9 and a restart every acknowledged slice is there (and on its nodes) and no
// refused one is. Root only (it mounts the tmpfs).
import { status as Status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../helpers/tmpfs.js';

const skip = tmpfsUnavailable();
if (skip) console.warn(`skipping the SA disk-full test: ${skip}`);

let fs: Tmpfs | undefined;
let fed: Federation | undefined;
let dataDir = '';

/** What became of a slice: acknowledged READY, refused by the store, or recorded but rolled back (its outcome could not be written). */
type Created = 'ok' | 'refused' | 'rolled-back';
const created = new Map<string, Created>();
const deleted = new Map<string, 'ok' | 'refused'>();

const urnOf = (name: string): string => `urn:fedlab:plc.test:slice:${name}`;

/** The refusal of a write by the store: UNAVAILABLE naming the store, saying nothing was changed. */
function expectRefusal(err: unknown): void {
  const e = err as { code?: number; details?: string; metadata?: { get(k: string): unknown[] } };
  expect(e.code, String(e.details)).toBe(Status.UNAVAILABLE);
  expect(e.details).toMatch(/the store at .* refuses writes since .*(disk full|I\/O error).*nothing was changed/);
  expect(String(e.metadata?.get('fedlab-store')[0])).toBe(dataDir);
}

async function create(name: string): Promise<Created> {
  const sa = (fed as Federation).saClient();
  let fate: Created;
  try {
    const res = await sa.createSlice({
      users: [],
      requestId: `r-${name}`,
      name,
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test', { count: 1 })],
      start: true,
      wait: true,
    });
    expect(res.slice?.state).toBe(SliceState.SLICE_STATE_READY);
    fate = 'ok';
  } catch (err) {
    // Recorded, but its outcome could not be: the SA says so and rolls it back.
    if (/outcome of its creation could not be recorded/.test(String((err as { details?: string }).details))) fate = 'rolled-back';
    else {
      expectRefusal(err);
      fate = 'refused';
    }
  }
  created.set(name, fate);
  return fate;
}

async function remove(name: string): Promise<'ok' | 'refused'> {
  let fate: 'ok' | 'refused' = 'ok';
  try {
    const res = await (fed as Federation).saClient().deleteSlice({ sliceUrn: urnOf(name) });
    expect(res.slice?.state).toBe(SliceState.SLICE_STATE_DELETED);
  } catch (err) {
    expectRefusal(err);
    fate = 'refused';
  }
  deleted.set(name, fate);
  return fate;
}

/** The slice's state at the SA, or undefined when it has none. */
async function stateOf(name: string): Promise<SliceState | undefined> {
  try {
    return (await (fed as Federation).saClient().getSlice({ sliceUrn: urnOf(name) })).slice?.state;
  } catch (err) {
    expect((err as { code?: number }).code).toBe(Status.NOT_FOUND);
    return undefined;
  }
}

beforeAll(async () => {
  if (skip) return;
  fs = mountTmpfs(4096);
  dataDir = join(fs.dir, 'sa-data');
  fed = await startFederation({
    sites: [{ domain: 'plc.test', style: 'planetlab', nodes: 2, driver: 'simulated' }],
    child: true,
    saConfig: { data_dir: dataDir },
  });
}, 120_000);

afterAll(async () => {
  await fed?.destroy();
  fs?.unmount();
  await disposeParties();
});

describe.skipIf(skip !== undefined)('slice authority on a full disk', () => {
  it('refuses what it cannot write, changes nothing, resumes by itself, and a restart finds exactly what it acknowledged', async () => {
    const f = fed as Federation;
    for (const name of ['b1', 'b2', 'b3']) expect(await create(name)).toBe('ok');

    (fs as Tmpfs).fill(0);
    let n = 0;
    await until(async () => (await create(`full${n++}`)) === 'refused', 20_000, 'a CreateSlice refused by the store');
    for (let i = 0; i < 3; i++) expect(await create(`refused${i}`)).toBe('refused');
    expect(await remove('b1')).toBe('refused');
    // Nothing of it happened: no such slices, nothing of them at the site; b1 is still there.
    for (let i = 0; i < 3; i++) expect(await stateOf(`refused${i}`)).toBeUndefined();
    expect(await stateOf('b1')).toBe(SliceState.SLICE_STATE_READY);
    const atSite = new Set((await f.sliversOnNodes()).map(([, slice]) => slice));
    for (let i = 0; i < 3; i++) expect(atSite.has(urnOf(`refused${i}`))).toBe(false);
    expect(atSite.has(urnOf('b1'))).toBe(true);

    // Freed: the SA writes again on its own.
    (fs as Tmpfs).free();
    let m = 0;
    await until(async () => (await create(`after${m++}`)) === 'ok', 30_000, 'a CreateSlice taken again');
    for (const name of ['afterx', 'aftery']) expect(await create(name)).toBe('ok');
    expect(await remove('b2')).toBe('ok');

    // kill -9 and a restart on the same data.
    await f.kill9Sa();
    await f.startSa();
    const live = new Set<string>();
    for (const [name, fate] of created) {
      const want =
        fate === 'refused'
          ? undefined
          : fate === 'rolled-back'
            ? SliceState.SLICE_STATE_FAILED
            : deleted.get(name) === 'ok'
              ? SliceState.SLICE_STATE_DELETED
              : SliceState.SLICE_STATE_READY;
      await until(
        async () => (await stateOf(name)) === want,
        15_000,
        `${name} (${fate}) ${want === undefined ? 'absent' : SliceState[want]}`,
      );
      if (want === SliceState.SLICE_STATE_READY) live.add(urnOf(name));
    }
    // The site holds slivers of exactly the acknowledged live slices.
    await until(
      async () => [...new Set((await f.sliversOnNodes()).map(([, slice]) => slice))].sort().join() === [...live].sort().join(),
      15_000,
      'the nodes to hold exactly the acknowledged slices',
    );
    expect([...created.values()].filter((c) => c === 'refused').length).toBeGreaterThanOrEqual(4);
  }, 180_000);
});
