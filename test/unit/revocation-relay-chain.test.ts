// The MA's relay of a slice authority's revocation updates: it keeps a chain of signed messages that
// brings a node from nothing to the newest version — a whole list replaces it; deltas from the version
// held are appended, a stamp-only one replacing the earlier such; a delta above the version held is not
// kept (the answer names the version held); a new snapshot (deltas from 0) over a held chain is gathered
// apart and replaces the chain only with its stamped last part. Kept across a reload. The chain is capped:
// a delta past the cap is not kept (the answer names the version held; the authority sends a snapshot).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emptyRevocationList, signRevocationList } from '../../services/core/credentials/index.js';
import { signRevocationDelta } from '../../services/core/credentials/revocation-delta.js';
import type { RevocationEntry } from '../../services/core/credentials/revocation.js';
import { RevocationStore } from '../../services/core/credentials/revocation-store.js';
import { PermissionDeniedError } from '../../services/core/errors.js';
import { Store } from '../../services/core/store/store.js';
import { MAX_CHAIN_BYTES, MAX_CHAIN_PARTS, RevocationRelay } from '../../services/management-authority/revocation-relay.js';
import { T0, principal, testJti } from './credentials-fixtures.js';

const sa = principal('urn:fedlab:plc.test:authority:sa');
const stamp = (iat: number) => ({ iat, nextUpdate: iat + 600 });
const entry = (): RevocationEntry => ({ jti: testJti(), reason: 'x', time: T0 });

describe('RevocationRelay chains', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-relay-'));
    store = await Store.open(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a chain a node can replay from nothing', async () => {
    const relay = new RevocationRelay(store, () => T0 * 1000);
    const list = { ...emptyRevocationList(sa.privateKey, sa.urn), version: 1, entries: [entry()] };
    const whole = signRevocationList(list, sa.privateKey, stamp(T0));
    expect(await relay.accept(whole, sa.kid)).toMatchObject({ held: 1, newer: true });
    await expect(relay.accept(whole, principal('urn:fedlab:plc.test:authority:other').kid)).rejects.toBeInstanceOf(PermissionDeniedError);

    const d2 = signRevocationDelta(sa.privateKey, { base: 1, version: 2, entries: [entry()], validity: stamp(T0 + 1) });
    const s1 = signRevocationDelta(sa.privateKey, { base: 2, version: 2, entries: [], validity: stamp(T0 + 2) });
    const s2 = signRevocationDelta(sa.privateKey, { base: 2, version: 2, entries: [], validity: stamp(T0 + 3) });
    for (const m of [d2, s1, s2]) await relay.accept(m, sa.kid);
    expect(relay.chainFor(sa.kid)).toEqual([whole.trim(), d2, s2]);
    // A gap: not kept, the answer names what is held.
    const gap = signRevocationDelta(sa.privateKey, { base: 5, version: 6, entries: [entry()], validity: stamp(T0 + 4) });
    expect(await relay.accept(gap, sa.kid)).toMatchObject({ held: 2, newer: false });

    // A snapshot in two parts: the chain stays whole until its stamped last part, then is replaced.
    const p1 = signRevocationDelta(sa.privateKey, { base: 0, version: 2, entries: [entry()] });
    expect(await relay.accept(p1, sa.kid)).toMatchObject({ held: 2 });
    expect(relay.chainFor(sa.kid)).toEqual([whole.trim(), d2, s2]);
    const p2 = signRevocationDelta(sa.privateKey, { base: 2, version: 3, entries: [entry()], validity: stamp(T0 + 5) });
    expect(await relay.accept(p2, sa.kid)).toMatchObject({ held: 3, newer: true });
    expect(relay.chainFor(sa.kid)).toEqual([p1, p2]);

    // The chain replays on a node's store from nothing; and it survives a reload.
    const node = await RevocationStore.open(await Store.open(join(dir, 'node')), { cache: null });
    const { parseSignedRevocationUpdate } = await import('../../services/core/credentials/revocation-delta.js');
    for (const m of relay.chainFor(sa.kid)) expect(await node.importUpdate(parseSignedRevocationUpdate(m), T0)).toBe('installed');
    expect(node.list(sa.kid)?.version).toBe(3);
    await node.store.close();
    const again = new RevocationRelay(store, () => T0 * 1000);
    await again.load();
    expect(again.chainFor(sa.kid)).toEqual([p1, p2]);
    expect(again.versionFor(sa.kid)).toBe(3);
  });

  it('keeps no delta past the cap on the chain: the answer names the version held, and a snapshot replaces the chain', async () => {
    const relay = new RevocationRelay(store, () => T0 * 1000);
    const list = { ...emptyRevocationList(sa.privateKey, sa.urn), version: 1, entries: [entry()] };
    await relay.accept(signRevocationList(list, sa.privateKey, stamp(T0)), sa.kid);
    for (let v = 1; v < MAX_CHAIN_PARTS; v++) {
      const d = signRevocationDelta(sa.privateKey, { base: v, version: v + 1, entries: [entry()], validity: stamp(T0 + v) });
      expect(await relay.accept(d, sa.kid)).toMatchObject({ held: v + 1, newer: true });
    }
    expect(relay.chainFor(sa.kid)).toHaveLength(MAX_CHAIN_PARTS);
    const over = signRevocationDelta(sa.privateKey, {
      base: MAX_CHAIN_PARTS,
      version: MAX_CHAIN_PARTS + 1,
      entries: [entry()],
      validity: stamp(T0 + 100),
    });
    expect(await relay.accept(over, sa.kid)).toMatchObject({ held: MAX_CHAIN_PARTS, newer: false });
    expect(relay.chainFor(sa.kid)).toHaveLength(MAX_CHAIN_PARTS);
    expect(relay.versionFor(sa.kid)).toBe(MAX_CHAIN_PARTS);
    // The authority then sends a snapshot: it replaces the chain.
    const snap = signRevocationDelta(sa.privateKey, {
      base: 0,
      version: MAX_CHAIN_PARTS + 1,
      entries: [entry()],
      validity: stamp(T0 + 101),
    });
    expect(await relay.accept(snap, sa.kid)).toMatchObject({ held: MAX_CHAIN_PARTS + 1, newer: true });
    expect(relay.chainFor(sa.kid)).toEqual([snap]);
  });

  it('keeps no delta that would take the chain past its byte cap, with fewer messages than the count cap', async () => {
    const relay = new RevocationRelay(store, () => T0 * 1000);
    const list = { ...emptyRevocationList(sa.privateKey, sa.urn), version: 1, entries: [entry()] };
    await relay.accept(signRevocationList(list, sa.privateKey, stamp(T0)), sa.kid);
    const bytes = (): number => relay.chainFor(sa.kid).reduce((n, jws) => n + jws.length, 0);
    // Deltas of 3,000 entries (one version each, about 250 KB): the byte cap comes well before MAX_CHAIN_PARTS.
    const PER = 3000;
    let v = 1;
    let kept = 1;
    for (;;) {
      const d = signRevocationDelta(sa.privateKey, {
        base: v,
        version: v + PER,
        entries: Array.from({ length: PER }, entry),
        validity: stamp(T0 + kept),
      });
      const before = bytes();
      const r = await relay.accept(d, sa.kid);
      if (!r.newer) {
        // Refused because it would not fit, and nothing of it was kept.
        expect(before + d.length).toBeGreaterThan(MAX_CHAIN_BYTES);
        expect(r.held).toBe(v);
        expect(bytes()).toBe(before);
        break;
      }
      v += PER;
      kept++;
      expect(kept).toBeLessThan(MAX_CHAIN_PARTS);
    }
    expect(relay.chainFor(sa.kid).length).toBeLessThan(MAX_CHAIN_PARTS);
    expect(bytes()).toBeLessThanOrEqual(MAX_CHAIN_BYTES);
  });
});
