// RevokeMemberCredential's intent against a fake slice authority (the parts with real servers are in
// test/integration/sp-member-revoke-one.test.ts): a revocation the slice authority refuses for good is
// undone — the credential stays live, no intent is left, the member's keys are synced again (a keys sync
// while it was pending left its key off the slice) — and a key carried only by
// the revoked credential and by an expired one leaves the slice, while the member's other live keys stay
// (also when a later revocation sends the member's keys again).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { keysIntentKey, MemberIntents, revokeIntentKey } from '../../services/service-provider/member-intents.js';
import { Members, type MembersOptions } from '../../services/service-provider/members.js';
import { TABLES, type DelegationRecord, type MemberIntentRecord, type MemberRecord } from '../../services/service-provider/records.js';
import type { Remotes } from '../../services/service-provider/remotes.js';

const MEMBER = 'urn:fedlab:acme.test:user:carol';
const SLICE = 'urn:fedlab:plc.test:slice:web';
const NOW = 1_800_000_000_000;

describe('RevokeMemberCredential (fake slice authority)', () => {
  let dir: string;
  let store: Store;
  let members: Members;
  let intents: MemberIntents;
  let refuse: number | undefined;
  const revoked: string[] = [];
  const updates: { add: { urn: string; sshKeys: string[] }[]; remove: string[] }[] = [];

  const delegation = (jti: string, sshKey: string | undefined, expiresAt = NOW + 3_600_000): DelegationRecord => ({
    memberUrn: MEMBER,
    sliceUrn: SLICE,
    jti,
    parentJti: 'sp-root',
    expiresAt,
    requestKey: `delegate ${jti}`,
    ...(sshKey ? { sshKey, keyState: 'added' as const } : {}),
  });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-sp-revoke-'));
    store = await Store.open(dir);
    refuse = undefined;
    revoked.length = 0;
    updates.length = 0;
    const sa = {
      revoke: (req: { jti: string }) => {
        if (refuse !== undefined) return Promise.reject(Object.assign(new Error('no'), { code: refuse, details: 'refused' }));
        revoked.push(req.jti);
        return Promise.resolve({});
      },
      updateSliceUsers: (req: { add: { urn: string; sshKeys: string[] }[]; remove: string[] }) => {
        updates.push({ add: req.add, remove: req.remove });
        return Promise.resolve({});
      },
    };
    const clock = { now: () => NOW };
    intents = new MemberIntents({
      store,
      clock,
      log: silentLogger(),
      remotes: { sliceAuthority: () => sa } as unknown as Remotes,
      deadlineMs: 1000,
      retryMs: 60_000,
      maxRetryMs: 60_000,
    });
    members = new Members({ store, clock, log: silentLogger(), intents } as unknown as MembersOptions);
    const member: MemberRecord = {
      urn: MEMBER,
      certificatePem: 'pem',
      keyThumbprint: 'kt',
      displayName: 'Carol',
      addedAt: NOW - 1000,
      sshKeys: ['ssh-ed25519 A', 'ssh-ed25519 B'],
    };
    const batch = store.batch().put(store.table<MemberRecord>(TABLES.members), MEMBER, member);
    const table = store.table<DelegationRecord>(TABLES.delegations);
    for (const d of [
      delegation('j1', 'ssh-ed25519 A'),
      delegation('j2', 'ssh-ed25519 A', NOW - 1), // expired
      delegation('j3', 'ssh-ed25519 B'),
    ])
      batch.put(table, `${MEMBER} ${d.jti}`, d);
    await batch.write();
  });

  afterEach(async () => {
    await intents.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const listed = async () =>
    (await members.list({ pageSize: 0, pageToken: '', includeRemoved: false })).members[0]?.credentials.map((c) => [c.jti, c.revoked]);

  const bothKeys = { add: [{ urn: MEMBER, sshKeys: ['ssh-ed25519 A', 'ssh-ed25519 B'] }], remove: [] };

  it('a refusal for good is undone: the credential stays live, no intent is left, the keys are the same', async () => {
    refuse = status.PERMISSION_DENIED;
    await expect(members.revokeCredential(MEMBER, 'j1')).rejects.toMatchObject({ kind: 'permission_denied' });
    expect(await store.table(TABLES.memberIntents).count()).toBe(0);
    expect((await store.table<DelegationRecord>(TABLES.delegations).get(`${MEMBER} j1`))?.revocation).toBeUndefined();
    // The member's keys are synced again, unchanged.
    expect(updates).toEqual([bothKeys]);
    // Asked again once the slice authority takes it: done.
    refuse = undefined;
    const res = await members.revokeCredential(MEMBER, 'j1');
    expect(res.alreadyRevoked).toBe(false);
    expect(revoked).toEqual(['j1']);
  });

  it('an undone revocation puts back the key a keys sync took off the slice while it was pending', async () => {
    refuse = status.UNAVAILABLE;
    await expect(members.revokeCredential(MEMBER, 'j1')).rejects.toMatchObject({ kind: 'unavailable' });
    // A delegation on the same slice meanwhile syncs the member's keys: j1 is pending, so its key A is left out.
    const sync: MemberIntentRecord = { kind: 'keys', memberUrn: MEMBER, sliceUrn: SLICE, createdAt: NOW };
    await store.table<MemberIntentRecord>(TABLES.memberIntents).put(keysIntentKey(MEMBER, SLICE), sync);
    await intents.exclusive(MEMBER, () => intents.runLocked(keysIntentKey(MEMBER, SLICE)));
    expect(updates.at(-1)).toEqual({ add: [{ urn: MEMBER, sshKeys: ['ssh-ed25519 B'] }], remove: [] });
    // The retried revocation is refused for good: undone, and key A is back on the slice.
    refuse = status.PERMISSION_DENIED;
    await expect(intents.exclusive(MEMBER, () => intents.runLocked(revokeIntentKey(MEMBER, 'j1')))).rejects.toMatchObject({
      kind: 'permission_denied',
    });
    expect((await store.table<DelegationRecord>(TABLES.delegations).get(`${MEMBER} j1`))?.revocation).toBeUndefined();
    expect(updates.at(-1)).toEqual(bothKeys);
    expect(await store.table(TABLES.memberIntents).count()).toBe(0);
  });

  it("a key carried only by the revoked and an expired credential leaves the slice; the member's other live keys stay", async () => {
    const res = await members.revokeCredential(MEMBER, 'j1');
    expect(res).toEqual({ jti: 'j1', alreadyRevoked: false, sliceUrns: [SLICE] });
    expect(updates).toEqual([{ add: [{ urn: MEMBER, sshKeys: ['ssh-ed25519 B'] }], remove: [] }]);
    expect(await listed()).toEqual([
      ['j2', false],
      ['j1', true],
      ['j3', false],
    ]);
    // The last live key: the member leaves the slice's users (and the expired one's key does not come back).
    const last = await members.revokeCredential(MEMBER, 'j3');
    expect(last.sliceUrns).toEqual([SLICE]);
    expect(updates[1]).toEqual({ add: [], remove: [MEMBER] });
    expect(await members.revokeCredential(MEMBER, 'j3')).toEqual({ jti: 'j3', alreadyRevoked: true, sliceUrns: [SLICE] });
    await expect(members.revokeCredential(MEMBER, 'nope')).rejects.toMatchObject({ kind: 'not_found' });
    expect(await store.table(TABLES.memberIntents).count()).toBe(0);
  });
});
