// Issue 15's cross-provider takeover through a reused slice name, as a test. Provider acme creates slice
// `shared`, takes a slice credential and deletes the slice; provider beta creates `shared` again (same
// URN). Before slice incarnations, acme's old chain then ran Exec in beta's sliver, listed it and stopped
// it. Now every slice is a new incarnation (a random id minted by the slice authority), its credentials
// carry it (claim inc) and its slivers record it, and a node refuses any chain of another incarnation with
// PERMISSION_DENIED naming the ended one. Also: a member's chain under the provider's (the same refusal),
// the service provider's own member when a later deployment reuses the slice name, the site refusing an
// Allocate of another incarnation over a slice it still holds, and slivers made before incarnations
// (reached by chains without one, as before, and by no chain with one).
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delegate, issueRoot, parseCredential } from '../../services/core/credentials/index.js';
import { AllocationState, SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliverAction } from '../../services/generated/fedlab/v1/node_manager.js';
import { DeploymentState, type DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceState, type Slice } from '../../services/generated/fedlab/v1/slice_authority.js';
import { startAttackFederation, type AttackFederation, type Principal } from '../helpers/attack-federation.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, type TestNode } from '../helpers/ma-harness.js';
import { collectExec } from '../helpers/node-manager.js';

let fed: AttackFederation;
let n1: TestNode;
let n2: TestNode;

beforeAll(async () => {
  fed = await startAttackFederation({ driver: 'process', dirPrefix: 'fedlab-reuse-' });
  [n1, n2] = fed.nodes as [TestNode, TestNode];
}, 180_000);

afterAll(async () => {
  await fed?.destroy();
  await disposeParties();
});

/** The code, message and rule trailer of a refused call. */
async function refusal(p: Promise<unknown>): Promise<{ code: number; details: string; rule: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; details: string; metadata?: { get(k: string): unknown[] } };
    return { code: e.code, details: e.details, rule: String(e.metadata?.get('fedlab-rule')[0] ?? '') };
  }
  throw new Error('expected the call to be refused');
}

async function createShared(who: Principal, requestId: string, node: TestNode): Promise<Slice> {
  const res = await fed.saClient(who).createSlice({
    users: [],
    requestId,
    name: 'shared',
    description: 'slice reuse',
    mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
    sites: [siteRequest('a.test', { nodeUrns: [node.urn] })],
    start: true,
    wait: true,
  });
  const slice = res.slice as Slice;
  expect(slice.state, JSON.stringify(slice.sites.map((s) => s.status))).toBe(SliceState.SLICE_STATE_READY);
  return slice;
}

async function sliceCredential(who: Principal, sliceUrn: string, requestId: string) {
  return fed.saClient(who).issueSliceCredential({
    requestId,
    sliceUrn,
    holderCertificatePem: who.certPem,
    privileges: [],
    targets: [],
    limits: undefined,
    ttlS: 0,
    maxDelegations: 1,
  });
}

function exec(node: TestNode, who: Principal, sliverUrn: string, chain: readonly string[], line = 'echo in') {
  return collectExec(
    fed.nodeClient(node, who).exec({ sliverUrn, argv: ['sh', '-c', line], env: {}, timeoutMs: 5000 }, { chain: [...chain] }),
  );
}

describe('a reused slice name is a new incarnation that no older chain reaches', () => {
  let acmeChain: readonly string[];
  let bobChain: readonly string[];
  let first: Slice;
  let second: Slice;
  let betaSliver: string;

  it('acme creates shared, holds a credential bound to its incarnation, and deletes the slice', async () => {
    first = await createShared(fed.who.acme, 'reuse-acme', n1);
    expect(first.incarnation).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const cred = await sliceCredential(fed.who.acme, first.urn, 'reuse-acme-cred');
    acmeChain = cred.chain;
    expect(parseCredential(acmeChain[0] as string, 0).claims.inc).toBe(first.incarnation);
    const bob = fed.who.bob.identity as NonNullable<Principal['identity']>;
    bobChain = (
      await delegate(acmeChain, {
        key: (fed.who.acme.identity as NonNullable<Principal['identity']>).privateKey,
        subject: bob.urn,
        subjectKey: bob.jwk as Record<string, unknown>,
        dlg: 0,
      })
    ).chain;
    // The chain works on acme's own sliver while the slice lives, and the node records the incarnation.
    const own = first.slivers[0]?.urn as string;
    expect((await exec(n1, fed.who.acme, own, acmeChain)).exit?.status).toEqual({ $case: 'code', code: 0 });
    const onNode = (await fed.nodeClient(n1, fed.who.acme).getSliver({ sliverUrn: own }, { chain: [...acmeChain] })).sliver;
    expect(onNode?.sliceIncarnation).toBe(first.incarnation);
    const del = await fed.saClient(fed.who.acme).deleteSlice({ sliceUrn: first.urn });
    expect(del.slice?.state).toBe(SliceState.SLICE_STATE_DELETED);
  }, 60_000);

  it('beta creates shared again: the same URN, READY, under a new incarnation', async () => {
    second = await createShared(fed.who.beta, 'reuse-beta', n1);
    expect(second.urn).toBe(first.urn);
    expect(second.incarnation).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(second.incarnation).not.toBe(first.incarnation);
    betaSliver = second.slivers[0]?.urn as string;
    expect(betaSliver).toBeTruthy();
    // The slice authority answers acme NOT_FOUND for beta's slice (it is not acme's).
    expect((await refusal(fed.saClient(fed.who.acme).getSlice({ sliceUrn: second.urn }))).code).toBe(status.NOT_FOUND);
  }, 60_000);

  it("acme's old chain is refused for Exec on beta's sliver with PERMISSION_DENIED naming the ended incarnation", async () => {
    const r = await refusal(exec(n1, fed.who.acme, betaSliver, acmeChain, 'echo pwned'));
    expect(r.code).toBe(status.PERMISSION_DENIED);
    expect(r.rule).toBe('grant-incarnation');
    expect(r.details).toContain(`incarnation ${first.incarnation}`);
    expect(r.details).toContain('has ended');
    expect(r.details).not.toContain(second.incarnation as string);
  });

  it("acme's old chain is refused for ListSlivers of the slice, GetSliver and ControlSliver STOP; beta's sliver runs on", async () => {
    const nm = fed.nodeClient(n1, fed.who.acme);
    const chain = { chain: [...acmeChain] };
    const list = await refusal(nm.listSlivers({ pageSize: 0, pageToken: '', sliceUrn: second.urn }, chain));
    expect([list.code, list.rule]).toEqual([status.PERMISSION_DENIED, 'grant-incarnation']);
    const get = await refusal(nm.getSliver({ sliverUrn: betaSliver }, chain));
    expect([get.code, get.rule]).toEqual([status.PERMISSION_DENIED, 'grant-incarnation']);
    const stop = await refusal(nm.controlSliver({ sliverUrn: betaSliver, action: SliverAction.SLIVER_ACTION_STOP }, chain));
    expect([stop.code, stop.rule]).toEqual([status.PERMISSION_DENIED, 'grant-incarnation']);
    const renew = await refusal(nm.renewSliver({ sliverUrn: betaSliver, expiresAt: new Date(Date.now() + 60_000) }, chain));
    expect([renew.code, renew.rule]).toEqual([status.PERMISSION_DENIED, 'grant-incarnation']);

    const betaCred = await sliceCredential(fed.who.beta, second.urn, 'reuse-beta-cred');
    const seen = (await fed.nodeClient(n1, fed.who.beta).getSliver({ sliverUrn: betaSliver }, { chain: [...betaCred.chain] })).sliver;
    expect(seen?.operationalState).toBe(first.slivers[0]?.operationalState);
    const ran = await exec(n1, fed.who.beta, betaSliver, betaCred.chain, 'echo beta');
    expect([ran.stdout, ran.exit?.status]).toEqual(['beta\n', { $case: 'code', code: 0 }]);
  }, 30_000);

  it("a member's chain under acme's old credential is refused the same way", async () => {
    const r = await refusal(exec(n1, fed.who.bob, betaSliver, bobChain, 'echo pwned'));
    expect([r.code, r.rule]).toEqual([status.PERMISSION_DENIED, 'grant-incarnation']);
    expect(r.details).toContain(`incarnation ${first.incarnation}`);
  });

  it('no later link can rebind an old chain to the new incarnation (rule inc)', async () => {
    const acme = fed.who.acme.identity as NonNullable<Principal['identity']>;
    await expect(
      delegate(acmeChain, {
        key: acme.privateKey,
        subject: acme.urn,
        subjectKey: acme.jwk as Record<string, unknown>,
        dlg: 0,
        incarnation: second.incarnation as string,
      }),
    ).rejects.toMatchObject({ rule: 'inc' });
  });

  it('a request id reused for the later slice gets ALREADY_EXISTS, never the old chain', async () => {
    await fed.saClient(fed.who.beta).deleteSlice({ sliceUrn: second.urn });
    const again = await createShared(fed.who.beta, 'reuse-beta-2', n1);
    const r = await refusal(sliceCredential(fed.who.beta, again.urn, 'reuse-beta-cred'));
    expect(r.code).toBe(status.ALREADY_EXISTS);
    await fed.saClient(fed.who.beta).deleteSlice({ sliceUrn: again.urn });
  }, 60_000);
});

describe('the site and the node keep one incarnation per slice', () => {
  it('an Allocate of another incarnation over a slice the site still holds is FAILED_PRECONDITION', async () => {
    const slice = await createShared(fed.who.acme, 'reuse-acme-site', n2);
    const chain = await fed.site.saChain({ requestId: 'reuse-ma-sa' });
    const r = await refusal(
      fed.aggClient(fed.who.saIdentity).allocate(
        {
          users: [],
          requestId: 'reuse-other-life',
          sliceUrn: slice.urn,
          providerUrn: fed.who.acme.urn,
          request: siteRequest('a.test', { nodeUrns: [n2.urn] }).request,
          sliceIncarnation: 'AnotherLifeOfTheSlice0',
        },
        { chain },
      ),
    );
    expect([r.code, r.rule]).toEqual([status.FAILED_PRECONDITION, 'slice-incarnation']);
    expect(r.details).toContain(`incarnation ${slice.incarnation}`);
    await fed.saClient(fed.who.acme).deleteSlice({ sliceUrn: slice.urn });
  }, 60_000);
});

describe('slivers made before incarnations', () => {
  const legacySlice = 'urn:fedlab:a.test:slice:legacy';
  let sliverUrn: string;

  beforeAll(async () => {
    // As an MA that passes no incarnation would: CreateSliver with the owner's chain and no slice_incarnation.
    const made = await fed.nodeClient(n2, fed.who.ma).createSliver(
      {
        users: [],
        requestId: 'legacy-1',
        sliverUrn: 'urn:fedlab:a.test:sliver:legacy-1',
        sliceUrn: legacySlice,
        sliceAuthorityUrn: fed.home.sa.urn,
        sliceAuthorityJwk: JSON.stringify(fed.home.sa.jwk),
        providerUrn: fed.who.acme.urn,
        resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
        exclusive: false,
        interfaces: [],
        allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
        clientId: 'legacy',
        start: true,
      },
      { chain: [...n2.ownerChain] },
    );
    sliverUrn = made.sliver?.urn as string;
    expect(made.sliver?.sliceIncarnation).toBeUndefined();
  }, 30_000);

  afterAll(async () => {
    await fed.nodeClient(n2, fed.who.ma).deleteSliver({ sliverUrn }, { chain: [...n2.ownerChain] });
  });

  async function saRoot(incarnation?: string): Promise<readonly string[]> {
    const sa = fed.home.sa;
    const acme = fed.who.acme.identity as NonNullable<Principal['identity']>;
    return (
      await issueRoot({
        key: sa.privateKey,
        issuer: sa.urn,
        subject: acme.urn,
        subjectKey: acme.jwk as Record<string, unknown>,
        targets: [legacySlice],
        privileges: ['sliver.exec', 'sliver.read'],
        ttlSeconds: 600,
        ...(incarnation ? { incarnation } : {}),
      })
    ).chain;
  }

  it('a chain without an incarnation still reaches them, as before', async () => {
    const ran = await exec(n2, fed.who.acme, sliverUrn, await saRoot(), 'echo legacy');
    expect([ran.stdout, ran.exit?.status]).toEqual(['legacy\n', { $case: 'code', code: 0 }]);
  });

  it('the node keeps one incarnation per slice: a sliver of another one is FAILED_PRECONDITION', async () => {
    const r = await refusal(
      fed.nodeClient(n2, fed.who.ma).createSliver(
        {
          users: [],
          requestId: 'legacy-2',
          sliverUrn: 'urn:fedlab:a.test:sliver:legacy-2',
          sliceUrn: legacySlice,
          sliceAuthorityUrn: fed.home.sa.urn,
          sliceAuthorityJwk: JSON.stringify(fed.home.sa.jwk),
          providerUrn: fed.who.acme.urn,
          resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
          exclusive: false,
          interfaces: [],
          allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
          clientId: 'legacy-2',
          start: false,
          sliceIncarnation: 'SomeLaterLifeOfLegacy0',
        },
        { chain: [...n2.ownerChain] },
      ),
    );
    expect([r.code, r.rule]).toEqual([status.FAILED_PRECONDITION, 'slice_incarnation']);
  });

  it('a chain bound to an incarnation does not (PERMISSION_DENIED)', async () => {
    const r = await refusal(exec(n2, fed.who.acme, sliverUrn, await saRoot('SomeLaterLifeOfLegacy0')));
    expect([r.code, r.rule]).toEqual([status.PERMISSION_DENIED, 'grant-incarnation']);
  });
});

describe('a member of the service provider, when a later deployment reuses the slice name', () => {
  const deploy = async (requestId: string, name: string): Promise<DeployResponse[]> => {
    const events: DeployResponse[] = [];
    const stream = fed.spClient(fed.who.operator).deploy({
      requestId,
      name,
      spec: {
        sliceUrn: '',
        sliceAuthorityUrn: '',
        sliceName: 'tenant',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: [siteRequest('a.test', { nodeUrns: [n2.urn] })],
        expiresAt: undefined,
        steps: [{ name: 'setup', argv: ['sh', '-c', 'echo set up'], env: {}, timeoutMs: 0, service: false }],
      },
    });
    for await (const e of stream) events.push(e);
    return events;
  };

  it("the member's chain from the first deployment is refused on the second one's sliver", async () => {
    const sp = fed.spClient(fed.who.operator);
    const carol = fed.who.carol;
    const one = (await deploy('tenant-1', 'tenant-one')).at(-1)?.deployment;
    expect(one?.state, one?.error).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    await sp.addMember({ requestId: 'carol-1', memberUrn: carol.urn, certificatePem: carol.certPem, displayName: 'Carol' });
    const member = await sp.delegateToMember({
      sshPublicKey: '',
      requestId: 'carol-tenant-1',
      memberUrn: carol.urn,
      sliceUrn: one?.sliceUrn as string,
      privileges: [],
      targets: [],
      limits: undefined,
      ttlS: 3600,
      maxDelegations: 0,
    });
    const firstSliver = one?.targets[0]?.sliverUrn as string;
    expect((await exec(n2, carol, firstSliver, member.chain)).exit?.status).toEqual({ $case: 'code', code: 0 });

    await sp.deleteDeployment({ name: 'tenant-one', keepSlice: false });
    const two = (await deploy('tenant-2', 'tenant-two')).at(-1)?.deployment;
    expect(two?.state, two?.error).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    expect(two?.sliceUrn).toBe(one?.sliceUrn);
    const secondSliver = two?.targets[0]?.sliverUrn as string;
    const r = await refusal(exec(n2, carol, secondSliver, member.chain, 'echo pwned'));
    expect([r.code, r.rule]).toEqual([status.PERMISSION_DENIED, 'grant-incarnation']);
    await sp.deleteDeployment({ name: 'tenant-two', keepSlice: false });
  }, 120_000);
});
