// Revoking one member's credential alone, with real parts (one site: a real MA and a node manager, process
// driver; a real slice authority; the provider in this process). Two members, carol and dave, hold chains
// `SA → SP → member` over the same slice. The slice authority lets a provider revoke a credential it
// delegated under its own slice credential only with the member's whole chain as proof: another provider
// presenting that chain, a chain with a forged link, a chain rooted at a key that is not this slice
// authority's, and a chainless call are PERMISSION_DENIED naming the rule, with nothing put on the list.
// RemoveMember(carol) then revokes exactly carol's credential: carol is refused at the node, dave's chain
// still reads and execs there, and the provider's own credential is not on the list.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delegate, issueRoot } from '../../services/core/credentials/index.js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, type Deployment, type DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { siteRequest } from '../helpers/federation-harness.js';
import type { TestIdentity } from '../helpers/pki.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

const A = 'plc.test';
const MALLORY = `urn:fedlab:${A}:sp:mallory`;

async function collect(stream: AsyncIterable<DeployResponse>): Promise<DeployResponse[]> {
  const out: DeployResponse[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

async function refusal(p: Promise<unknown>): Promise<{ code: number; details: string; rule: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; details: string; metadata?: { get(k: string): unknown[] } };
    return { code: e.code, details: e.details, rule: String(e.metadata?.get('fedlab-rule')[0] ?? '') };
  }
  throw new Error('expected the call to fail');
}

const delegation = (requestId: string, memberUrn: string, sliceUrn: string) => ({
  sshPublicKey: '',
  requestId,
  memberUrn,
  sliceUrn,
  privileges: [],
  targets: [],
  limits: undefined,
  ttlS: 3600,
  maxDelegations: 0,
});

describe("service provider: removing one member revokes that member's credentials only", () => {
  let fed: SpFederation;
  let dep: Deployment;
  let carol: TestIdentity;
  let dave: TestIdentity;
  let mallory: TestIdentity;
  const chains = new Map<string, { jti: string; chain: string[] }>();

  beforeAll(async () => {
    fed = await startSpFederation({
      sites: [{ domain: A, nodes: 1 }],
      spConfig: { calls: { slice_deadline_ms: 4000 } },
      saConfig: {
        providers: [
          { urn: `urn:fedlab:${A}:sp:acme`, quotas: {} },
          { urn: MALLORY, quotas: {} },
        ],
      },
    });
    const events = await collect(
      fed.spClient().deploy({
        requestId: 'rv-1',
        name: 'rv',
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
    carol = await fed.home.pki.issue(`urn:fedlab:${A}:user:carol`);
    dave = await fed.home.pki.issue(`urn:fedlab:${A}:user:dave`);
    mallory = await fed.home.pki.issue(MALLORY);
    const sp = fed.spClient();
    for (const m of [carol, dave]) {
      const name = m.urn.split(':').at(-1) as string;
      await sp.addMember({ requestId: `add-${name}`, memberUrn: m.urn, certificatePem: m.certPem, displayName: name });
      const d = await sp.delegateToMember(delegation(`dlg-${name}`, m.urn, dep.sliceUrn));
      expect(d.chain).toHaveLength(2);
      chains.set(m.urn, { jti: d.jti, chain: d.chain });
    }
  }, 120_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
  }, 60_000);

  const target = (): Deployment['targets'][number] => dep.targets[0] as Deployment['targets'][number];
  const chainOf = (m: TestIdentity): { jti: string; chain: string[] } => chains.get(m.urn) as { jti: string; chain: string[] };
  const getSliver = (m: TestIdentity) =>
    fed.nodeClient(target().nodeEndpoint, target().nodeUrn, m).getSliver({ sliverUrn: target().sliverUrn }, { chain: chainOf(m).chain });
  const exec = async (m: TestIdentity, word: string): Promise<string> => {
    let out = '';
    const nm = fed.nodeClient(target().nodeEndpoint, target().nodeUrn, m);
    for await (const c of nm.exec(
      { sliverUrn: target().sliverUrn, argv: ['echo', word], env: {}, timeoutMs: 5000 },
      { chain: chainOf(m).chain },
    )) {
      if (c.chunk?.$case === 'stdout') out += c.chunk.stdout.toString();
    }
    return out;
  };
  const revokedJtis = async (): Promise<string[]> =>
    (await fed.saClient(fed.home.admin).listRevocations({ pageSize: 0, pageToken: '', sinceVersion: 0 })).entries.map((e) => e.jti);

  it("refuses every revocation of a member's credential that its chain does not prove, and changes nothing", async () => {
    const d = chainOf(dave);
    const revoke = (who: TestIdentity, chain: readonly string[], jti = d.jti) =>
      refusal(fed.saClient(who).revoke({ jti, keyThumbprint: '', reason: 'test' }, { chain }));

    // Another provider with an account, presenting dave's whole chain.
    const foreign = await revoke(mallory, d.chain);
    expect(foreign.code, foreign.details).toBe(status.PERMISSION_DENIED);
    expect(foreign.rule).toBe('member-root');
    // The provider itself, without a chain: as before, only what the SA issued to it.
    const bare = await revoke(fed.home.sp, []);
    expect(bare.code).toBe(status.PERMISSION_DENIED);
    expect(bare.rule).toBe('admin');
    // A forged leaf: dave's link with its signature changed.
    const leaf = d.chain[1] as string;
    const sig = leaf.slice(leaf.lastIndexOf('.') + 1);
    const flipped = `${leaf.slice(0, leaf.lastIndexOf('.') + 1)}${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    const forged = await revoke(fed.home.sp, [d.chain[0] as string, flipped]);
    expect(forged.code, forged.details).toBe(status.PERMISSION_DENIED);
    expect(forged.rule).toBe('signature');
    // A chain rooted at a key that is not this slice authority's, claiming to be it.
    const other = generateKeyPair('p256').privateKey;
    const root = await issueRoot({
      key: other,
      issuer: fed.home.sa.urn,
      subject: fed.home.sp.urn,
      subjectKey: fed.home.sp.jwk,
      targets: [dep.sliceUrn],
      privileges: ['sliver.read'],
      dlg: 1,
    });
    const fake = await delegate(root.chain, { key: fed.home.sp.privateKey, subject: dave.urn, subjectKey: dave.jwk, dlg: 0 });
    const notOurs = await revoke(fed.home.sp, fake.chain, fake.claims.jti);
    expect(notOurs.code, notOurs.details).toBe(status.PERMISSION_DENIED);
    expect(notOurs.rule).toBe('member-root');
    // dave's chain, but asking to revoke carol's credential: the leaf must be the one revoked.
    const wrong = await revoke(fed.home.sp, d.chain, chainOf(carol).jti);
    expect(wrong.rule).toBe('member-leaf');

    // Nothing was put on the list; dave still works.
    expect(await revokedJtis()).toEqual([]);
    expect((await getSliver(dave)).sliver?.urn).toBe(target().sliverUrn);
  }, 60_000);

  it("RemoveMember(carol) revokes carol's credential alone: carol is refused at the node, dave reads and execs", async () => {
    expect((await getSliver(carol)).sliver?.urn).toBe(target().sliverUrn);
    const res = await fed.spClient().removeMember({ memberUrn: carol.urn });
    expect(res.revokedJtis).toEqual([chainOf(carol).jti]);
    // Only carol's credential is on the SA's list, not the provider's above it.
    expect(await revokedJtis()).toEqual([chainOf(carol).jti]);
    await until(
      async () => {
        const r = await getSliver(carol).then(
          () => 0,
          (e: unknown) => (e as { code: number }).code,
        );
        return r === status.UNAUTHENTICATED || r === status.PERMISSION_DENIED;
      },
      20_000,
      "carol's chain refused at the node",
    );
    // The node has the list that refuses carol; dave, under the same provider credential, goes on.
    expect((await getSliver(dave)).sliver?.urn).toBe(target().sliverUrn);
    expect(await exec(dave, 'dave-still-in')).toContain('dave-still-in');
    // The provider's own work goes on with the credential it had.
    const again = await fed.spClient().removeMember({ memberUrn: carol.urn });
    expect(again).toEqual(res);
  }, 60_000);
});
