// A member's SSH key through the service provider, with real parts (one site: a real MA and a node
// manager, process driver; a real slice authority; the provider in this process): DelegateToMember
// with a key reaches the slice's users at the slice authority; a key the SA cannot take yet (it is
// stopped) is recorded and carried there after it is back, also across a restart of the provider;
// bad keys are refused naming the field; RemoveMember revokes the member's credentials (a node
// refuses its chain) and takes its keys off the slice, answers the same again, and NOT_FOUND for a
// member it never had.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, type Deployment, type DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';
import { newSshKeyPair } from '../../services/core/identity/ssh-keys.js';

const A = 'plc.test';
const newKey = (comment: string): { public: string; private: string } => newSshKeyPair({ comment });

async function collect(stream: AsyncIterable<DeployResponse>): Promise<DeployResponse[]> {
  const out: DeployResponse[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, details: e.details };
  }
  throw new Error('expected the call to fail');
}

const delegation = (requestId: string, memberUrn: string, sliceUrn: string, sshPublicKey: string) => ({
  sshPublicKey,
  requestId,
  memberUrn,
  sliceUrn,
  privileges: [],
  targets: [],
  limits: undefined,
  ttlS: 3600,
  maxDelegations: 0,
});

describe('service provider: members and their SSH keys', () => {
  let fed: SpFederation;
  let dep: Deployment;
  const k1 = newKey('bob@laptop');
  const k2 = newKey('bob@desktop');
  const chains: { jti: string; chain: string[] }[] = [];

  beforeAll(async () => {
    fed = await startSpFederation({ sites: [{ domain: A, nodes: 1 }], spConfig: { calls: { slice_deadline_ms: 4000 } } });
    const events = await collect(
      fed.spClient().deploy({
        requestId: 'keys-1',
        name: 'keys',
        spec: {
          sliceUrn: '',
          sliceAuthorityUrn: '',
          sliceName: '',
          mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
          sites: [siteRequest(A, { count: 1 })],
          expiresAt: undefined,
          steps: [{ name: 'serve', argv: ['sleep', '300'], env: {}, timeoutMs: 0, service: true }],
        },
      }),
    );
    dep = events[events.length - 1]?.deployment as Deployment;
    expect(dep.state, dep.error).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    await fed.spClient().addMember({ requestId: 'bob', memberUrn: fed.member.urn, certificatePem: fed.member.certPem, displayName: 'Bob' });
  }, 120_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
  }, 60_000);

  const usersAtSa = async (): Promise<{ urn: string; sshKeys: string[] }[]> =>
    (await fed.saClient().getSlice({ sliceUrn: dep.sliceUrn })).slice?.users ?? [];

  it('refuses a malformed key, a private key and a DSA key, naming ssh_public_key; nothing is delegated', async () => {
    for (const bad of ['ssh-ed25519 AAAA', k1.private, 'ssh-dss AAAAB3NzaC1kc3MAAACBAP', 'not a key']) {
      const r = await rejection(fed.spClient().delegateToMember(delegation(`bad-${bad.length}`, fed.member.urn, dep.sliceUrn, bad)));
      expect(r.code, r.details).toBe(status.INVALID_ARGUMENT);
      expect(r.details).toMatch(/ssh_public_key/);
    }
    expect(await usersAtSa()).toEqual([]);
  });

  it('DelegateToMember with a key answers once the slice authority lists the member with that key', async () => {
    const res = await fed.spClient().delegateToMember(delegation('bob-k1', fed.member.urn, dep.sliceUrn, k1.public));
    expect(res.chain).toHaveLength(2);
    chains.push({ jti: res.jti, chain: res.chain });
    const users = await usersAtSa();
    expect(users).toEqual([{ urn: fed.member.urn, sshKeys: [k1.public] }]);
    // The same request id: the same chain, nothing sent twice.
    const again = await fed.spClient().delegateToMember(delegation('bob-k1', fed.member.urn, dep.sliceUrn, k1.public));
    expect(again.jti).toBe(res.jti);
  }, 30_000);

  it('a key the slice authority cannot take yet is recorded, survives a provider restart, and reaches it once it is back', async () => {
    await fed.stopSa();
    try {
      const r = await rejection(fed.spClient().delegateToMember(delegation('bob-k2', fed.member.urn, dep.sliceUrn, k2.public)));
      expect(r.code, r.details).toBe(status.UNAVAILABLE);
      expect(r.details).toMatch(/same request_id/);
      await fed.stopSp();
      await fed.startSp();
    } finally {
      await fed.startSa();
    }
    // The restarted provider carries the recorded key on by itself.
    await until(async () => (await usersAtSa().catch(() => []))[0]?.sshKeys.length === 2, 20_000, 'both keys at the slice authority');
    expect((await usersAtSa())[0]?.sshKeys.sort()).toEqual([k1.public, k2.public].sort());
    // The retry with the same request id now answers with the chain.
    const res = await fed.spClient().delegateToMember(delegation('bob-k2', fed.member.urn, dep.sliceUrn, k2.public));
    expect(res.chain).toHaveLength(2);
    chains.push({ jti: res.jti, chain: res.chain });
  }, 60_000);

  it('RemoveMember revokes every credential of the member and takes its keys off the slice; again answers the same', async () => {
    const target = dep.targets[0] as Deployment['targets'][number];
    const nm = fed.nodeClient(target.nodeEndpoint, target.nodeUrn, fed.member);
    // The chain works before the removal.
    expect((await nm.getSliver({ sliverUrn: target.sliverUrn }, { chain: chains[0]?.chain ?? [] })).sliver?.urn).toBe(target.sliverUrn);

    const res = await fed.spClient().removeMember({ memberUrn: fed.member.urn });
    expect(res.revokedJtis.sort()).toEqual(chains.map((c) => c.jti).sort());
    expect(res.sliceUrns).toEqual([dep.sliceUrn]);
    expect(await usersAtSa()).toEqual([]);
    // The revocation reaches the node: the member's chains are refused there.
    for (const c of chains) {
      await until(
        async () => {
          try {
            await nm.getSliver({ sliverUrn: target.sliverUrn }, { chain: c.chain });
            return false;
          } catch (err) {
            return [status.UNAUTHENTICATED, status.PERMISSION_DENIED].includes((err as { code: number }).code);
          }
        },
        20_000,
        `chain ${c.jti} refused at the node`,
      );
    }
    const again = await fed.spClient().removeMember({ memberUrn: fed.member.urn });
    expect(again).toEqual(res);
    // A removed member gets nothing more; a member never added is NOT_FOUND.
    const denied = await rejection(fed.spClient().delegateToMember(delegation('bob-after', fed.member.urn, dep.sliceUrn, k1.public)));
    expect(denied.code).toBe(status.NOT_FOUND);
    const unknown = await rejection(fed.spClient().removeMember({ memberUrn: `urn:fedlab:${A}:user:nobody` }));
    expect(unknown.code).toBe(status.NOT_FOUND);
    // Only administrators may remove members.
    const byMember = await rejection(fed.spClient(fed.member).removeMember({ memberUrn: fed.member.urn }));
    expect(byMember.code).toBe(status.PERMISSION_DENIED);
    // The provider's own work goes on with a fresh credential of its own.
    const sp = fed.spClient();
    await until(
      async () => (await sp.getDeployment({ name: 'keys' })).deployment?.state === DeploymentState.DEPLOYMENT_STATE_READY,
      10_000,
      'deployment still READY',
    );
  }, 90_000);
  it('a removal the slice authority cannot take yet is recorded, survives a provider restart, and finishes once it is back', async () => {
    const carol = await fed.home.pki.issue(`urn:fedlab:${A}:user:carol`);
    const sp = fed.spClient();
    await sp.addMember({ requestId: 'carol', memberUrn: carol.urn, certificatePem: carol.certPem, displayName: 'Carol' });
    const k3 = newKey('carol@laptop');
    const d = await sp.delegateToMember(delegation('carol-k3', carol.urn, dep.sliceUrn, k3.public));
    expect((await usersAtSa()).map((u) => u.urn)).toEqual([carol.urn]);
    await fed.stopSa();
    try {
      const r = await rejection(fed.spClient().removeMember({ memberUrn: carol.urn }));
      expect(r.code, r.details).toBe(status.UNAVAILABLE);
      expect(r.details).toMatch(/the removal is recorded/);
      // Removed already for the provider: nothing more is delegated to carol.
      const denied = await rejection(fed.spClient().delegateToMember(delegation('carol-after', carol.urn, dep.sliceUrn, '')));
      expect(denied.code).toBe(status.NOT_FOUND);
      await fed.stopSp();
      await fed.startSp();
    } finally {
      await fed.startSa();
    }
    await until(async () => (await usersAtSa().catch(() => [{ urn: 'x', sshKeys: [] }])).length === 0, 20_000, 'carol off the slice');
    const res = await fed.spClient().removeMember({ memberUrn: carol.urn });
    expect(res.revokedJtis).toEqual([d.jti]);
    expect(res.sliceUrns).toEqual([dep.sliceUrn]);
  }, 90_000);
});
