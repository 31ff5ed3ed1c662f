/**
 * A 100,000-entry revocation history still reaches every node within seconds (issue 15, Done when), with
 * real servers: a slice authority, a site's MA and a node manager. The SA's store is given a history of
 * 100,000 entries made directly in it while the SA is down — 90,010 of credentials that have expired and
 * 9,990 live ones, just under the default cap of 10,000 live entries — and the SA is started on it. Its
 * list reaches the node as a snapshot of the live entries in parts, every message well under the 1 MiB
 * receive limit; then a provider revokes a live member chain (SA → SP → member) through the API and the
 * node refuses that chain within seconds. The figures are printed; the only timed assertion is a generous
 * bound.
 */
import { createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delegate, RevocationStore } from '../../services/core/credentials/index.js';
import { parseSignedRevocationUpdate, updateSummary } from '../../services/core/credentials/revocation-delta.js';
import type { RevocationEntry } from '../../services/core/credentials/revocation.js';
import type { CallContext } from '../../services/core/rpc/context.js';
import { Store } from '../../services/core/store/store.js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { NodeManager } from '../../services/node-manager/node-manager.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, until, type TestNode } from '../helpers/ma-harness.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';

const A = 'plc.test';
const HISTORY = 100_000;
const LIVE = 9_990;

async function outcome(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return Status.OK;
  } catch (err) {
    return (err as ServiceError).code;
  }
}

/** A fresh credential id (22 base64url characters, the last one of the 4 allowed). */
function jti(i: number): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(i, 0);
  return `${b.toString('base64url').slice(0, 21)}A`;
}

describe('a 100,000-entry revocation history', () => {
  let fed: Federation;
  let node: TestNode;
  let sliverUrn: string;
  let memberChain: string[];
  /** The highest version of the SA's list the node was handed, and the largest message (bytes). */
  let seenVersion = 0;
  let largest = 0;
  let messages = 0;
  let seenAt = 0;

  beforeAll(async () => {
    fed = await startFederation({
      sites: [{ domain: A, style: 'planetlab', nodes: 1, driver: 'simulated' }],
      saConfig: { intent_retry_interval_ms: 1000 },
    });
    node = (fed.nodes.get(A) ?? [])[0] as TestNode;
    const nm = node.nm as NodeManager;
    const take = nm.updateRevocations.bind(nm);
    nm.updateRevocations = async (ctx: CallContext, lists: readonly string[]) => {
      const res = await take(ctx, lists);
      for (const jws of lists) {
        largest = Math.max(largest, jws.length);
        messages++;
        const u = updateSummary(parseSignedRevocationUpdate(jws));
        if (u.issuer === fed.home.sa.urn && u.version > seenVersion) {
          seenVersion = u.version;
          seenAt = Date.now();
        }
      }
      return res;
    };
    const res = await fed.saClient().createSlice({
      users: [],
      requestId: 'scale-1',
      name: 'scale',
      description: 'revocation at scale',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest(A, { count: 1 })],
      start: true,
      wait: true,
    });
    expect(res.slice?.state).toBe(SliceState.SLICE_STATE_READY);
    const sliceUrn = res.slice?.urn as string;
    sliverUrn = res.slice?.slivers[0]?.urn as string;
    const issued = await fed.saClient().issueSliceCredential({
      requestId: 'scale-cred',
      sliceUrn,
      holderCertificatePem: fed.home.sp.certPem,
      privileges: [],
      targets: [],
      maxDelegations: 1,
      ttlS: 0,
    });
    const member = fed.home.admin;
    memberChain = [
      ...(
        await delegate(issued.chain, {
          key: fed.home.sp.privateKey,
          subject: member.urn,
          subjectKey: member.jwk as Record<string, unknown>,
          privileges: ['sliver.read'],
          dlg: 0,
          ttlSeconds: 3600,
        })
      ).chain,
    ];

    // The history, written straight into the SA's store while it is down.
    await fed.stopSa();
    const store = await Store.open(join(fed.dir, 'sa-data'));
    const rs = await RevocationStore.open(store, { cache: null });
    const nowS = Math.floor(Date.now() / 1000);
    const entries: RevocationEntry[] = Array.from({ length: HISTORY }, (_, i) => ({
      jti: jti(i),
      reason: i < HISTORY - LIVE ? 'expired long ago' : 'live',
      time: nowS - 86_400,
      exp: i < HISTORY - LIVE ? nowS - 3_600 * (1 + (i % 24)) : nowS + 86_400,
    }));
    const seeded = Date.now();
    await rs.revokeMany(createPrivateKey(fed.home.sa.keyPem), entries, fed.home.sa.urn);
    await store.close();
    console.log(`seeded ${HISTORY} revocation entries (${LIVE} live) in ${Date.now() - seeded} ms`);
    await fed.startSa();
  }, 300_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
  }, 60_000);

  const asMember = () => fed.nodeClient(node, fed.home.admin).getSliver({ sliverUrn }, { chain: memberChain });

  it('reaches the node as bounded messages, and a new revocation of a live member chain is refused there within seconds', async () => {
    const started = Date.now();
    await until(() => seenVersion >= HISTORY, 60_000, 'the seeded list on the node');
    console.log(
      `history of ${HISTORY} entries on the node ${Date.now() - started} ms after the SA started: ${messages} messages, the largest ${largest} bytes`,
    );
    expect(largest).toBeLessThan(512 * 1024);
    expect(await outcome(asMember())).toBe(Status.OK);

    const before = Date.now();
    const revoked = await fed.saClient().revoke(
      {
        jti: JSON.parse(Buffer.from(memberChain[1]!.split('.')[1]!, 'base64url').toString()).jti as string,
        keyThumbprint: '',
        reason: 'member left',
      },
      { chain: memberChain },
    );
    expect(revoked.version).toBe(HISTORY + 1);
    const answered = Date.now() - before;
    await until(async () => (await outcome(asMember())) === Status.UNAUTHENTICATED, 20_000, 'the member chain refused on the node');
    const reached = Date.now() - before;
    console.log(
      `a revocation of a live member chain reached the node in ${reached} ms (Revoke answered in ${answered} ms, the node took the delta at ${seenAt - before} ms; list of ${HISTORY + 1} versions, ${LIVE + 1} live)`,
    );
    expect(reached).toBeLessThan(20_000);
  }, 120_000);
});
