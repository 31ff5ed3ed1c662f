/**
 * Revocation that fails closed, on a real node manager (mTLS, simulated driver, a manual clock): a
 * held list past its next_update + grace makes the node refuse its issuer's chains with UNAVAILABLE
 * naming the list, while the owner's chain (the MA) keeps working; a fresher copy restores them; a
 * copy already past next_update is refused as stale at once; an altered iat or next_update fails the
 * signature; lists without them never go stale; the node takes its own MA's list (from the MA only).
 */
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  delegate,
  emptyRevocationList,
  signRevocationList,
  withRevocation,
  type RevocationList,
  type RevocationValidity,
} from '../../services/core/credentials/index.js';
import { ManualClock } from '../../services/core/clock.js';
import { createSliver, parties, sliceChain, SP_URN, startNodeManager, type NmHarness } from '../helpers/node-manager.js';

const GRACE_S = 30;
const SLICE = 'urn:fedlab:plc.test:slice:fresh';

async function refused(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded but should have been refused');
}

function ruleOf(err: ServiceError): string | undefined {
  return err.metadata?.get('fedlab-rule')[0]?.toString();
}

/** Changes one claim of a signed list's payload, keeping the signature. */
function alter(jws: string, edit: (payload: Record<string, unknown>) => void): string {
  const [h, p, s] = jws.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  edit(payload);
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}

describe('revocation list freshness on a node manager', () => {
  let h: NmHarness;
  const clock = new ManualClock(Date.now());
  const nowS = () => Math.floor(clock.now() / 1000);
  const validFor = (s: number, from = nowS()): RevocationValidity => ({ iat: from, nextUpdate: from + s });

  beforeAll(async () => {
    h = await startNodeManager({
      driver: 'simulated',
      clock,
      config: {
        policy: { providers: [SP_URN], slice_authority_domains: ['plc.test'], max_lifetime_s: 14 * 86_400 },
        revocation: { grace_s: GRACE_S },
      },
    });
  });
  afterAll(async () => {
    await h?.destroy();
  });

  const ma = () => h.client();
  const owner = () => ({ chain: [...h.parties.ownerChain] });

  it("refuses a slice authority's chains past next_update + grace, keeps serving the owner, and takes them back with a fresher copy", async () => {
    const p = await parties();
    const sliver = await createSliver(h, 'fresh1', { sliceUrn: SLICE });
    const chain = await sliceChain(SLICE);
    const sp = h.client(p.sp);
    const saList = (validity?: RevocationValidity, list: RevocationList = emptyRevocationList(p.sa.privateKey, p.sa.urn)) =>
      signRevocationList(list, p.sa.privateKey, validity);

    expect(await ma().updateRevocations({ signedLists: [saList(validFor(60))] }, owner())).toEqual({
      installed: 1,
      current: 0,
      skipped: 0,
    });
    await sp.getSliver({ sliverUrn: sliver.urn }, { chain });

    // Past next_update but within the grace: still served.
    clock.advance(80_000);
    await sp.getSliver({ sliverUrn: sliver.urn }, { chain });

    // Past next_update + grace with no fresher copy: UNAVAILABLE naming the list.
    clock.advance(20_000);
    const stale = await refused(sp.getSliver({ sliverUrn: sliver.urn }, { chain }));
    expect(stale.code).toBe(Status.UNAVAILABLE);
    expect(stale.details).toMatch(
      new RegExp(`revocation list of ${p.sa.urn} version 0 expired at .+; refusing its chains until a fresher list arrives`),
    );
    expect(ruleOf(stale)).toBe('revocation-list-stale');
    const exec = await refused(sp.getSliverOutput({ sliverUrn: sliver.urn, lines: 0 }, { chain }));
    expect(exec.code).toBe(Status.UNAVAILABLE);

    // The owner's chain (the MA) is not signed by the slice authority: node and sliver calls go on.
    await ma().getNodeInfo({}, owner());
    expect((await ma().getSliver({ sliverUrn: sliver.urn }, owner())).sliver?.urn).toBe(sliver.urn);

    // A copy already past its next_update is refused as stale at once (skipped), and changes nothing.
    const late = saList({ iat: nowS() - 200, nextUpdate: nowS() - 100 });
    expect(await ma().updateRevocations({ signedLists: [late] }, owner())).toEqual({ installed: 0, current: 0, skipped: 1 });
    expect((await refused(sp.getSliver({ sliverUrn: sliver.urn }, { chain }))).code).toBe(Status.UNAVAILABLE);

    // An altered iat or next_update fails the signature: INVALID_ARGUMENT, nothing installed.
    const fresh = saList(validFor(60));
    for (const bad of [
      alter(fresh, (x) => (x.next_update = (x.next_update as number) + 86_400)),
      alter(fresh, (x) => (x.iat = (x.iat as number) + 1)),
    ]) {
      const err = await refused(ma().updateRevocations({ signedLists: [bad] }, owner()));
      expect(err.code).toBe(Status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/does not verify/);
    }
    expect((await refused(sp.getSliver({ sliverUrn: sliver.urn }, { chain }))).code).toBe(Status.UNAVAILABLE);

    // A fresher copy of the same version restores the slice authority's chains at once.
    expect(await ma().updateRevocations({ signedLists: [fresh] }, owner())).toEqual({ installed: 1, current: 0, skipped: 0 });
    await sp.getSliver({ sliverUrn: sliver.urn }, { chain });
    // The same copy again is current; an older copy of it changes nothing.
    expect(await ma().updateRevocations({ signedLists: [fresh, saList(validFor(60, nowS() - 5))] }, owner())).toEqual({
      installed: 0,
      current: 2,
      skipped: 0,
    });

    // A list without iat / next_update (an older issuer) is taken when newer and never goes stale.
    const legacy = withRevocation(emptyRevocationList(p.sa.privateKey, p.sa.urn), {
      jti: 'AAAAAAAAAAAAAAAAAAAAAA',
      reason: 'test',
      time: nowS(),
    });
    expect(await ma().updateRevocations({ signedLists: [saList(undefined, legacy)] }, owner())).toEqual({
      installed: 1,
      current: 0,
      skipped: 0,
    });
    clock.advance(10 * 86_400_000);
    await sp.getSliver({ sliverUrn: sliver.urn }, { chain });
  });

  it("takes its own MA's list from the MA only: the MA's revocations stop its delegations, and its stale list refuses them but not the MA", async () => {
    const p = await parties();
    // The MA delegates node.read to an operator (here the provider's identity) under the owner's chain.
    const opChain = (
      await delegate(h.parties.ownerChain, {
        key: p.ma.privateKey,
        subject: p.sp.urn,
        subjectKey: p.sp.jwk as Record<string, unknown>,
        privileges: ['node.read'],
        dlg: 0,
        ttlSeconds: 60 * 86_400,
        now: new Date(clock.now()),
      })
    ).chain;
    const op = h.client(p.sp);
    await op.getNodeInfo({}, { chain: [...opChain] });
    const jti = (JSON.parse(Buffer.from((opChain[1] as string).split('.')[1] as string, 'base64url').toString()) as { jti: string }).jti;
    const maList = withRevocation(emptyRevocationList(p.ma.privateKey, p.ma.urn), { jti, reason: 'operator left', time: nowS() });
    const signed = signRevocationList(maList, p.ma.privateKey, validFor(60));

    // Handed over by someone other than the MA (even with an owner-rooted chain): skipped.
    expect(await op.updateRevocations({ signedLists: [signed] }, { chain: [...opChain] })).toEqual({
      installed: 0,
      current: 0,
      skipped: 1,
    });
    await op.getNodeInfo({}, { chain: [...opChain] });

    // From the MA: installed, and the revoked delegation is refused.
    expect(await ma().updateRevocations({ signedLists: [signed] }, owner())).toEqual({ installed: 1, current: 0, skipped: 0 });
    const revoked = await refused(op.getNodeInfo({}, { chain: [...opChain] }));
    expect(revoked.code).toBe(Status.UNAUTHENTICATED);
    expect(ruleOf(revoked)).toBe('revoked');

    // The MA's list goes stale: chains with a link the MA signed are UNAVAILABLE; the MA's own calls go on.
    const other = (
      await delegate(h.parties.ownerChain, {
        key: p.ma.privateKey,
        subject: p.sp.urn,
        subjectKey: p.sp.jwk as Record<string, unknown>,
        privileges: ['node.read'],
        dlg: 0,
        ttlSeconds: 60 * 86_400,
        now: new Date(clock.now()),
      })
    ).chain;
    await op.getNodeInfo({}, { chain: [...other] });
    clock.advance((60 + GRACE_S + 1) * 1000);
    const stale = await refused(op.getNodeInfo({}, { chain: [...other] }));
    expect(stale.code).toBe(Status.UNAVAILABLE);
    expect(stale.details).toContain(`revocation list of ${p.ma.urn} version 1 expired at`);
    await ma().getNodeInfo({}, owner());
    // The MA re-publishes: its delegations work again (the revoked one stays revoked).
    const again = signRevocationList(maList, p.ma.privateKey, validFor(60));
    expect(await ma().updateRevocations({ signedLists: [again] }, owner())).toEqual({ installed: 1, current: 0, skipped: 0 });
    await op.getNodeInfo({}, { chain: [...other] });
    expect(ruleOf(await refused(op.getNodeInfo({}, { chain: [...opChain] })))).toBe('revoked');
  });
});
