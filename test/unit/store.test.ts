import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store } from '../../services/core/store/store.js';
import { DeadlineExceededError, FailedPreconditionError } from '../../services/core/errors.js';

interface Node {
  name: string;
  cpu: number;
}

describe('Store', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-store-'));
    store = await Store.open(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps tables apart and round-trips JSON values', async () => {
    const nodes = store.table<Node>('nodes');
    const slivers = store.table<Node>('slivers');
    await nodes.put('a', { name: 'a', cpu: 100 });
    expect(await nodes.get('a')).toEqual({ name: 'a', cpu: 100 });
    expect(await slivers.get('a')).toBeUndefined();
    expect(await nodes.has('a')).toBe(true);
    await nodes.del('a');
    expect(await nodes.get('a')).toBeUndefined();
  });

  it('iterates ranges and prefixes in key order', async () => {
    const t = store.table<number>('t');
    for (const k of ['b/2', 'a/1', 'b/1', 'c/1', 'b/3']) await t.put(k, k.length);
    const keys: string[] = [];
    for await (const [k] of t.entries({ prefix: 'b/' })) keys.push(k);
    expect(keys).toEqual(['b/1', 'b/2', 'b/3']);
    const after: string[] = [];
    for await (const [k] of t.entries({ gt: 'b/1', limit: 2 })) after.push(k);
    expect(after).toEqual(['b/2', 'b/3']);
    expect(await t.count()).toBe(5);
    expect(await t.getMany(['a/1', 'zz'])).toEqual([3, undefined]);
  });

  it('writes a batch over several tables at once', async () => {
    const a = store.table<string>('a');
    const b = store.table<string>('b');
    await a.put('old', 'x');
    await store.batch().put(a, 'k', 'v1').put(b, 'k', 'v2').del(a, 'old').write({ sync: true });
    expect(await a.get('k')).toBe('v1');
    expect(await b.get('k')).toBe('v2');
    expect(await a.get('old')).toBeUndefined();
  });

  it('persists across close and reopen', async () => {
    await store.table<number>('n').put('x', 42);
    await store.close();
    store = await Store.open(dir);
    expect(await store.table<number>('n').get('x')).toBe(42);
  });

  it('refuses a second opener of the same directory with a clear error', async () => {
    await expect(Store.open(dir)).rejects.toThrow(FailedPreconditionError);
    await expect(Store.open(dir)).rejects.toThrow(/in use by another process/);
  });

  it('never commits a write whose call ended: aborted before queueing or while queued behind another', async () => {
    const t = store.table<number>('fenced');
    const ended = AbortSignal.abort(new Error('deadline exceeded'));
    await expect(t.put('a', 1, { signal: ended })).rejects.toBeInstanceOf(DeadlineExceededError);
    await expect(store.batch().put(t, 'b', 2).write({ signal: ended })).rejects.toThrow(
      /before its change was committed; nothing was changed/,
    );
    // Queued behind a write in flight, then its call ends: it is dropped, the others land as one group.
    const ac = new AbortController();
    const first = t.put('c', 3);
    const late = t.put('d', 4, { signal: ac.signal });
    const after = t.put('e', 5);
    ac.abort();
    // Refused as the first batch forms (its call ended before it was written), maybe before `first` lands.
    const refused = expect(late).rejects.toBeInstanceOf(DeadlineExceededError);
    await first;
    await refused;
    await after;
    expect(await t.getMany(['a', 'b', 'c', 'd', 'e'])).toEqual([undefined, undefined, 3, undefined, 5]);
  });

  it('never commits a first write whose call ended in the same turn, with the store idle (a cancellation read with the call)', async () => {
    const t = store.table<number>('same-turn');
    const ac = new AbortController();
    // Nothing in flight: the write is the first of its batch. Its call is cancelled before any I/O runs,
    // as when a client's cancellation arrives in the same read as its request.
    const write = t.put('k', 1, { sync: true, signal: ac.signal });
    ac.abort(new Error('cancelled by the client'));
    await expect(write).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(await t.get('k')).toBeUndefined();
    // A write whose call goes on still lands.
    await t.put('k', 2, { sync: true, signal: new AbortController().signal });
    expect(await t.get('k')).toBe(2);
  });

  it('groups writes queued behind one in flight into one LevelDB write, each still atomic', async () => {
    const a = store.table<number>('ga');
    const b = store.table<number>('gb');
    const writes: number[] = [];
    const stop = store.onWrite((ops) => void writes.push(ops.length));
    await Promise.all([a.put('x', 1), store.batch().put(a, 'y', 2).put(b, 'y', 2).write(), b.del('none'), a.put('z', 3)]);
    stop();
    expect(writes.reduce((n, w) => n + w, 0)).toBe(5);
    expect(writes.length).toBeLessThan(4);
    expect(await a.getMany(['x', 'y', 'z'])).toEqual([1, 2, 3]);
  });

  it('rejects a table name that could collide with sublevel separators', () => {
    expect(() => store.table('a!b')).toThrow(/table name/);
  });
});
