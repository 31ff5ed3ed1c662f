/**
 * Revocation that fails closed across a federation (SA, MA and a node manager, real servers): the SA
 * re-publishes its list before next_update with no new entry; the MA's own list reaches its nodes and a
 * Revoke there stops the revoked delegation on the node within seconds; a node cut off from the SA past
 * next_update (grace 0 here) refuses the SA's slice chains with UNAVAILABLE and still serves the MA, and
 * the SA's next publication restores them; revoking the MA → SA chain refuses the SA's calls at the site
 * at once and leaves its live slivers to their expiry, their slice chains refused on the node once the
 * SA can no longer refresh its list there.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delegate, parseSignedRevocationList, type RevocationList } from '../../services/core/credentials/index.js';
import type { CallContext } from '../../services/core/rpc/context.js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { NodeManager } from '../../services/node-manager/node-manager.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, until, type TestNode } from '../helpers/ma-harness.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';

const A = 'plc.test';
const NEXT_UPDATE_S = 10;

async function refused(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded but should have been refused');
}

async function outcome(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return Status.OK;
  } catch (err) {
    return (err as ServiceError).code;
  }
}

function jtiOf(link: string): string {
  return (JSON.parse(Buffer.from(link.split('.')[1] as string, 'base64url').toString()) as { jti: string }).jti;
}

describe('revocation freshness across a federation', () => {
  let fed: Federation;
  let node: TestNode;
  let sliceUrn: string;
  let sliverUrn: string;
  let sliceChain: string[];
  /** Every list the node was handed, with when (ms). */
  const seen: { list: RevocationList; at: number }[] = [];

  beforeAll(async () => {
    fed = await startFederation({
      sites: [
        {
          domain: A,
          style: 'planetlab',
          nodes: 1,
          driver: 'simulated',
          config: { revocation: { next_update_s: NEXT_UPDATE_S, grace_s: 0 } },
          nodeConfig: { revocation: { next_update_s: NEXT_UPDATE_S, grace_s: 0 } },
        },
      ],
      saConfig: { revocation: { next_update_s: NEXT_UPDATE_S, grace_s: 0 } },
    });
    node = (fed.nodes.get(A) ?? [])[0] as TestNode;
    const nm = node.nm as NodeManager;
    const take = nm.updateRevocations.bind(nm);
    nm.updateRevocations = async (ctx: CallContext, lists: readonly string[]) => {
      for (const jws of lists) {
        try {
          seen.push({ list: parseSignedRevocationList(jws), at: Date.now() });
        } catch {
          // The node refuses it; nothing to record.
        }
      }
      return take(ctx, lists);
    };
    const res = await fed.saClient().createSlice({
      users: [],
      requestId: 'fresh-1',
      name: 'fresh',
      description: 'revocation freshness',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest(A, { count: 1 })],
      start: true,
      wait: true,
    });
    expect(res.slice?.state).toBe(SliceState.SLICE_STATE_READY);
    sliceUrn = res.slice?.urn as string;
    sliverUrn = res.slice?.slivers[0]?.urn as string;
    const issued = await fed.saClient().issueSliceCredential({
      requestId: 'fresh-cred',
      sliceUrn,
      holderCertificatePem: fed.home.sp.certPem,
      privileges: [],
      targets: [],
      maxDelegations: 1,
      ttlS: 0,
    });
    sliceChain = issued.chain;
  }, 120_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
  }, 60_000);

  const asProvider = () => fed.nodeClient(node, fed.home.sp);
  const getSliver = () => asProvider().getSliver({ sliverUrn }, { chain: sliceChain });
  const asMa = () => node.client().getNodeInfo({}, { chain: [...node.ownerChain] });

  it("re-publishes the SA's list before its next_update with no new entry, and the MA's own list reaches the node", async () => {
    const saCopies = () => seen.filter((s) => s.list.iss === fed.home.sa.urn);
    await until(() => new Set(saCopies().map((s) => s.list.iat)).size >= 2, 15_000, 'two copies of the SA list');
    for (const { list, at } of saCopies()) {
      expect(list.next_update! - list.iat!).toBe(NEXT_UPDATE_S);
      // Each copy arrived before its own next_update.
      expect(at).toBeLessThan(list.next_update! * 1000);
    }
    const versions = new Set(saCopies().map((s) => s.list.version));
    expect(versions.size).toBe(1);
    await until(() => seen.some((s) => s.list.iss === fed.sites[0]!.parties.maUrn), 10_000, "the MA's own list on the node");
    await getSliver();
  }, 30_000);

  it('a Revoke at the MA stops the delegation it names on the node within seconds', async () => {
    const site = fed.sites[0]!;
    const admin = site.parties.admin;
    const chain = (
      await delegate(node.ownerChain, {
        key: site.parties.ma.privateKey,
        subject: admin.urn,
        subjectKey: admin.jwk as Record<string, unknown>,
        privileges: ['node.read'],
        dlg: 0,
        ttlSeconds: 3600,
      })
    ).chain;
    const asAdmin = fed.nodeClient(node, admin);
    await asAdmin.getNodeInfo({}, { chain: [...chain] });
    const before = Date.now();
    await site.maClient().revoke({ jti: jtiOf(chain[1] as string), keyThumbprint: '', reason: 'operator left' });
    await until(
      async () => (await outcome(asAdmin.getNodeInfo({}, { chain: [...chain] }))) === Status.UNAUTHENTICATED,
      5_000,
      'the revoked delegation refused',
    );
    expect(Date.now() - before).toBeLessThan(5_000);
  }, 20_000);

  it('a node cut off from the SA refuses its slice chains past next_update with UNAVAILABLE, serves the MA, and takes them back', async () => {
    await getSliver();
    await fed.stopSa();
    await until(async () => (await outcome(getSliver())) === Status.UNAVAILABLE, (NEXT_UPDATE_S + 5) * 1000, 'slice chain UNAVAILABLE');
    const err = await refused(getSliver());
    expect(err.details).toMatch(new RegExp(`revocation list of ${fed.home.sa.urn} version \\d+ expired at .+; refusing its chains`));
    await asMa();
    await node.client().getSliver({ sliverUrn }, { chain: [...node.ownerChain] });
    // The SA comes back: its first publication makes the node take its chains again.
    await fed.startSa();
    await until(async () => (await outcome(getSliver())) === Status.OK, 10_000, 'slice chain served again');
  }, 60_000);

  it('revoking the MA → SA chain refuses the SA at the site at once and leaves its live sliver to expiry, unreachable by slice chains', async () => {
    const site = fed.sites[0]!;
    const saChain = readFileSync(join(fed.dir, `${A}.chain`), 'utf8')
      .trim()
      .split('\n');
    await site.maClient().revoke({ jti: jtiOf(saChain[0] as string), keyThumbprint: '', reason: 'delegation withdrawn' });
    // Every call of the SA under it is refused at the site: no new slivers, no renewal.
    const renew = await fed.saClient().renewSlice({ sliceUrn, expiresAt: new Date(Date.now() + 86_400_000), bestEffort: false });
    expect(renew.results.map((r) => r.status?.code)).not.toContain(Status.OK);
    const more = await fed
      .saClient()
      .createSlice({
        users: [],
        requestId: 'fresh-2',
        name: 'fresh2',
        description: '',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: [siteRequest(A, { count: 1 })],
        start: true,
        wait: true,
      })
      .then((r) => r.slice?.state)
      .catch(() => 'refused');
    expect(more).not.toBe(SliceState.SLICE_STATE_READY);
    // The live sliver is left to its expiry (still on the node)...
    expect((await fed.sliversOnNodes()).map(([, , s]) => s)).toContain(sliverUrn);
    // ...but the SA can no longer refresh its list at the site, so the node refuses its slice chains.
    await until(async () => (await outcome(getSliver())) === Status.UNAVAILABLE, (NEXT_UPDATE_S + 5) * 1000, 'slice chain UNAVAILABLE');
    await asMa();
  }, 60_000);
});
