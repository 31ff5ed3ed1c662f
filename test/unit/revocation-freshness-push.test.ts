// The MA's own revocation list towards its nodes (OwnRevocationPush): copies signed with iat/next_update
// on the MA's clock, sent to UP nodes that lack the version or a copy younger than half of next_update_s,
// a pause after a node that could not be reached, and a fresh copy at once for a node back UP.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSignedRevocationList, RevocationStore, type RevocationList } from '../../services/core/credentials/index.js';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { OwnRevocationPush } from '../../services/management-authority/own-revocation-push.js';
import { principal, testJti } from './credentials-fixtures.js';

type Sent = { node: string; list: RevocationList };

describe('OwnRevocationPush', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-own-push-'));
    store = await Store.open(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends fresh copies to UP nodes that are behind, pauses on unreachable ones, and re-sends to a node back UP', async () => {
    const ma = principal('urn:fedlab:plc.test:authority:ma');
    const revocations = await RevocationStore.open(store, { cache: null });
    let now = 1_780_000_000_000;
    const nodes = [
      { record: { urn: 'urn:fedlab:plc.test:node:n1' }, up: true },
      { record: { urn: 'urn:fedlab:plc.test:node:n2' }, up: true },
      { record: { urn: 'urn:fedlab:plc.test:node:n3' }, up: false },
    ];
    const unreachable = new Set(['urn:fedlab:plc.test:node:n2']);
    const sent: Sent[] = [];
    const push = new OwnRevocationPush({
      revocations,
      maKey: ma.privateKey,
      maUrn: ma.urn,
      maKid: ma.kid,
      registry: { all: () => nodes as never },
      nodes: {
        fanOut: (async (items: string[], _nodeOf: unknown, fn: (c: unknown, o: unknown, i: string) => Promise<unknown>) =>
          Promise.all(
            items.map(async (node) => {
              if (unreachable.has(node)) return { nodeUrn: node, ok: false, code: 14, reason: 'down' };
              const client = {
                updateRevocations: async (req: { signedLists: string[] }) => {
                  for (const j of req.signedLists) sent.push({ node, list: parseSignedRevocationList(j) });
                  return { installed: 1, current: 0, skipped: 0 };
                },
              };
              return { nodeUrn: node, ok: true, value: await fn(client, {}, node) };
            }),
          )) as never,
      },
      settings: { nextUpdateS: 600, graceS: 60 },
      now: () => now,
      log: silentLogger(),
    });
    const to = (node: string) => sent.filter((s) => s.node.endsWith(node));

    // Version 0 goes out too, stamped on the MA's clock; only to UP nodes.
    expect(await push.push()).toBe(1);
    expect(to('n1')).toHaveLength(1);
    expect(to('n1')[0]?.list).toMatchObject({ iss: ma.urn, version: 0, iat: now / 1000, next_update: now / 1000 + 600 });
    expect(to('n3')).toHaveLength(0);
    // Nothing new, copy young: nothing sent.
    now += 100_000;
    expect(await push.push()).toBe(0);
    // A revocation goes out at once.
    await revocations.revoke(ma.privateKey, { jti: testJti(), reason: 'r', time: now / 1000 }, ma.urn);
    expect(await push.push()).toBe(1);
    expect(to('n1').at(-1)?.list.version).toBe(1);
    // Half of next_update_s later, a fresh copy of the same version.
    now += 300_000;
    expect(await push.push()).toBe(1);
    expect(to('n1').at(-1)?.list).toMatchObject({ version: 1, iat: now / 1000 });
    // The unreachable node (just tried again, in vain) is tried again only after the pause (a minute here).
    unreachable.delete('urn:fedlab:plc.test:node:n2');
    now += 30_000;
    expect(await push.push()).toBe(0);
    now += 31_000;
    expect(await push.push()).toBe(1);
    expect(to('n2')).toHaveLength(1);
    // A node back UP gets a fresh copy at once.
    const before = to('n1').length;
    expect(await push.nodeUp('urn:fedlab:plc.test:node:n1')).toBe(1);
    expect(to('n1')).toHaveLength(before + 1);
  });

  it('a thousand nodes coming UP at once cost two runs over the registry, and each node gets one copy', async () => {
    const ma = principal('urn:fedlab:plc.test:authority:ma');
    const revocations = await RevocationStore.open(store, { cache: null });
    const nodes = Array.from({ length: 1_000 }, (_, i) => ({ record: { urn: `urn:fedlab:plc.test:node:n${i}` }, up: false }));
    // As the registry does: the node is UP, then its change is told.
    const up = (n: (typeof nodes)[number]) => {
      n.up = true;
      return push.nodeUp(n.record.urn);
    };
    let scans = 0;
    let release!: () => void;
    let gate = new Promise<void>((r) => (release = r));
    const sent = new Map<string, number>();
    const failOnce = new Set<string>();
    const push = new OwnRevocationPush({
      revocations,
      maKey: ma.privateKey,
      maUrn: ma.urn,
      maKid: ma.kid,
      registry: {
        all: () => {
          scans++;
          return nodes as never;
        },
      },
      nodes: {
        fanOut: (async (items: string[], _nodeOf: unknown, fn: (c: unknown, o: unknown, i: string) => Promise<unknown>) => {
          // The first run is slow (its calls in flight) while every other node comes UP.
          await gate;
          return Promise.all(
            items.map(async (node) => {
              if (failOnce.delete(node)) return { nodeUrn: node, ok: false, code: 14, reason: 'restarting' };
              const client = {
                updateRevocations: async () => {
                  sent.set(node, (sent.get(node) ?? 0) + 1);
                  return { installed: 1, current: 0, skipped: 0 };
                },
              };
              return { nodeUrn: node, ok: true, value: await fn(client, {}, node) };
            }),
          );
        }) as never,
      },
      settings: { nextUpdateS: 600, graceS: 60 },
      now: () => 1_780_000_000_000,
      log: silentLogger(),
    });
    const first = up(nodes[0]!);
    const rest = nodes.slice(1).map(up);
    release();
    const counts = await Promise.all([first, ...rest]);
    // One run for the first, one shared by the 999 that came UP while it ran (not 999 runs over 1,000 nodes).
    expect(scans).toBe(2);
    expect(counts[0]).toBe(1);
    expect(new Set(counts.slice(1))).toEqual(new Set([999]));
    expect(sent.size).toBe(1_000);
    expect(new Set(sent.values())).toEqual(new Set([1]));

    /** A node comes UP, and UP again while the run that delivers to it waits: what each of the two runs delivered. */
    const upTwice = async (urn: string): Promise<[number, number]> => {
      gate = new Promise<void>((r) => (release = r));
      const first = push.nodeUp(urn);
      const again = push.nodeUp(urn);
      release();
      return [await first, await again];
    };

    // A node that comes UP again while a run delivers to it (it restarted meanwhile) is sent another copy after it.
    expect(await upTwice(nodes[5]!.record.urn)).toEqual([1, 1]);
    expect(sent.get(nodes[5]!.record.urn)).toBe(3);

    // The same, when the delivery to its old self fails (it was restarting): no pause, the next run reaches it.
    failOnce.add(nodes[6]!.record.urn);
    expect(await upTwice(nodes[6]!.record.urn)).toEqual([0, 1]);
    expect(sent.get(nodes[6]!.record.urn)).toBe(2);
  });
});
