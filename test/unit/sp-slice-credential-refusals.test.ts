// The provider's slice credentials when nodes refuse them (slice-credentials.ts): the first refusal forgets the
// credential (a fresh one cures a revoked or expired credential), but refusals that come again soon after do not
// make the slice authority issue (and store) a new credential each time: the wire fuzz found a step retried every
// 300 ms on a node that refused every credential of the slice authority (rule trust-anchor) churning one credential
// per attempt. A real LevelDB store and real signed chains; the slice authority is a stand-in that counts what it
// issues.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../services/core/clock.js';
import { issueRoot } from '../../services/core/credentials/index.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import type { Remotes } from '../../services/service-provider/remotes.js';
import { REFUSAL_BACKOFF_MS, SliceCredentials } from '../../services/service-provider/slice-credentials.js';

const SLICE = 'urn:fedlab:plc.test:slice:web';
const MINUTE = 60_000;

describe('SP slice credentials refused by nodes', () => {
  let dir: string;
  let store: Store;
  let clock: ManualClock;
  let issued: number;
  let creds: SliceCredentials;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-sp-refusals-'));
    store = await Store.open(join(dir, 'db'));
    clock = new ManualClock(Date.UTC(2026, 11, 5));
    issued = 0;
    const sa = generateKeyPair('p256');
    const sp = generateKeyPair('p256');
    const remotes = {
      sliceAuthority: () => ({
        issueSliceCredential: async () => {
          issued++;
          const cred = await issueRoot({
            key: sa.privateKey,
            issuer: 'urn:fedlab:plc.test:authority:sa',
            subject: 'urn:fedlab:plc.test:sp:acme',
            subjectKey: sp.publicKey,
            targets: [SLICE],
            privileges: ['sliver.exec'],
            dlg: 1,
            ttlSeconds: 86_400,
            now: new Date(clock.now()),
          });
          return { chain: cred.chain, jti: cred.claims.jti, expiresAt: new Date(cred.claims.exp * 1000) };
        },
      }),
    } as unknown as Remotes;
    creds = new SliceCredentials({ store, clock, log: silentLogger(), remotes, certificatePem: 'unused', ttlS: 0, deadlineMs: 1000 });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A node refuses the credential in use (after the provider used it); returns whether the provider forgot it. */
  const refuse = async (): Promise<boolean> => {
    await creds.chainFor(SLICE);
    return creds.refused(SLICE);
  };

  it('asks for a fresh credential at the first refusal', async () => {
    const first = await creds.credentialFor(SLICE);
    expect(await refuse()).toBe(true);
    const second = await creds.credentialFor(SLICE);
    expect(second.jti).not.toBe(first.jti);
    expect(issued).toBe(2);
  });

  it('does not churn credentials while refusals go on: the pause doubles from a minute to an hour', async () => {
    // One refusal every 5 s (a retried step) for three hours.
    const forgotAt: number[] = [];
    const start = clock.now();
    for (let t = 0; t < 3 * 60 * MINUTE; t += 5000) {
      if (await refuse()) forgotAt.push((clock.now() - start) / MINUTE);
      clock.advance(5000);
    }
    // 2,160 refusals; forgotten at 0, then after 1, 2, 4, 8, 16, 32, 60, 60 ... minutes.
    expect(forgotAt.slice(0, 8)).toEqual([0, 1, 3, 7, 15, 31, 63, 123]);
    expect(forgotAt).toHaveLength(8);
    // Each forget is one credential asked for (the first use made one more).
    await creds.chainFor(SLICE);
    expect(issued).toBe(forgotAt.length + 1);
  });

  it('starts the back-off again after an hour without refusals, and forgets at once when the slice is gone', async () => {
    expect(await refuse()).toBe(true);
    clock.advance(MINUTE);
    expect(await refuse()).toBe(true);
    clock.advance(MINUTE);
    // Within the doubled pause (2 minutes): kept.
    expect(await refuse()).toBe(false);
    clock.advance(REFUSAL_BACKOFF_MS.max + 2 * MINUTE);
    expect(await refuse()).toBe(true);
    // Back to the first pause.
    clock.advance(MINUTE);
    expect(await refuse()).toBe(true);
    // The slice is gone (a deployment deleted): forgotten whatever the back-off, and the back-off with it.
    await creds.chainFor(SLICE);
    const before = issued;
    await creds.forget(SLICE);
    await creds.chainFor(SLICE);
    expect(issued).toBe(before + 1);
    expect(await refuse()).toBe(true);
  });
});
