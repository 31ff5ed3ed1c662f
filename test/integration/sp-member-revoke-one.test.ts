// Revoking one member credential through the provider (RevokeMemberCredential) and listing members
// (ListMembers), with real parts: one site (a real MA and a node manager, process driver), a real slice
// authority, the provider in this process. carol holds three chains over one deployment's slice: two
// carrying the same SSH key, one with another key. Revoking the first leaves its key on the slice (the
// second carries it); the node refuses the revoked chain while the others go on. Revoking the second
// takes that key off; again says already_revoked; an unknown member or jti is NOT_FOUND; a reader may
// list but not revoke. Then the same through the CLI: fedlab member ls (table and --json) and revoke.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSshKeyPair } from '../../services/core/identity/ssh-keys.js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, type Deployment, type DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { runCli } from '../helpers/cli.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import type { TestIdentity } from '../helpers/pki.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';

const A = 'plc.test';
const work = mkdtempSync(join(tmpdir(), 'fedlab-sp-revoke-one-'));

async function codeOf(p: Promise<unknown>): Promise<number> {
  return p.then(
    () => status.OK,
    (e: unknown) => (e as { code: number }).code,
  );
}

describe('service provider: one member credential revoked, members listed', () => {
  let fed: SpFederation;
  let dep: Deployment;
  let carol: TestIdentity;
  const keyA = newSshKeyPair({ comment: 'carol-a@test' }).public;
  const keyB = newSshKeyPair({ comment: 'carol-b@test' }).public;
  const chains: { jti: string; chain: string[] }[] = [];
  let sp: string[];

  beforeAll(async () => {
    fed = await startSpFederation({
      sites: [{ domain: A, nodes: 1 }],
      spConfig: { calls: { slice_deadline_ms: 4000 }, registration: { retry_ms: 200, max_retry_ms: 1000 } },
    });
    const events: DeployResponse[] = [];
    for await (const e of fed.spClient().deploy({
      requestId: 'ro-1',
      name: 'ro',
      spec: {
        sliceUrn: '',
        sliceAuthorityUrn: '',
        sliceName: '',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: [siteRequest(A, { count: 1 })],
        expiresAt: undefined,
        steps: [{ name: 'serve', argv: ['sleep', '300'], env: {}, timeoutMs: 0, service: true }],
      },
    }))
      events.push(e);
    dep = events[events.length - 1]?.deployment as Deployment;
    expect(dep.state, dep.error).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    carol = await fed.home.pki.issue(`urn:fedlab:${A}:user:carol`);
    const client = fed.spClient();
    await client.addMember({ requestId: 'add-carol', memberUrn: carol.urn, certificatePem: carol.certPem, displayName: 'Carol' });
    for (const [i, key] of [keyA, keyA, keyB].entries()) {
      const d = await client.delegateToMember({
        requestId: `dlg-carol-${i}`,
        memberUrn: carol.urn,
        sliceUrn: dep.sliceUrn,
        sshPublicKey: key,
        privileges: [],
        targets: [],
        limits: undefined,
        ttlS: 3600,
        maxDelegations: 0,
      });
      chains.push({ jti: d.jti, chain: d.chain });
    }
    sp = [
      '--sp',
      fed.spAddress(),
      '--sp-urn',
      fed.home.sp.urn,
      '--cert',
      fed.spAdmin.certPath,
      '--key',
      fed.spAdmin.keyPath,
      '--ca',
      fed.caFile,
    ];
  }, 120_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  const target = (): Deployment['targets'][number] => dep.targets[0] as Deployment['targets'][number];
  const chain = (i: number): { jti: string; chain: string[] } => chains[i] as { jti: string; chain: string[] };
  const getSliver = (i: number): Promise<number> =>
    codeOf(
      fed
        .nodeClient(target().nodeEndpoint, target().nodeUrn, carol)
        .getSliver({ sliverUrn: target().sliverUrn }, { chain: chain(i).chain }),
    );
  const carolsKeys = async (): Promise<string[]> =>
    ((await fed.saClient().getSlice({ sliceUrn: dep.sliceUrn })).slice?.users ?? []).find((u) => u.urn === carol.urn)?.sshKeys ?? [];

  it('lists members with their keys and credentials, to administrators and readers', async () => {
    for (const who of [fed.spAdmin, fed.member]) {
      const res = await fed.spClient(who).listMembers({ pageSize: 0, pageToken: '', includeRemoved: false });
      const c = res.members.find((m) => m.urn === carol.urn);
      expect(c?.displayName).toBe('Carol');
      expect(c?.sshPublicKeys).toEqual([keyA, keyB]);
      expect(c?.credentials.map((x) => x.jti).sort()).toEqual(chains.map((x) => x.jti).sort());
      expect(c?.credentials.every((x) => x.sliceUrn === dep.sliceUrn && !x.revoked && x.withSshKey)).toBe(true);
    }
    // Paged: one member a page.
    await fed
      .spClient()
      .addMember({ requestId: 'add-bob', memberUrn: fed.member.urn, certificatePem: fed.member.certPem, displayName: 'Bob' });
    const first = await fed.spClient().listMembers({ pageSize: 1, pageToken: '', includeRemoved: false });
    expect(first.members).toHaveLength(1);
    expect(first.nextPageToken).not.toBe('');
    const second = await fed.spClient().listMembers({ pageSize: 1, pageToken: first.nextPageToken, includeRemoved: false });
    expect(second.members.map((m) => m.urn)).not.toContain(first.members[0]?.urn);
  }, 60_000);

  it('a reader may not revoke; an unknown member or jti is NOT_FOUND', async () => {
    const asReader = fed.spClient(fed.member).revokeMemberCredential({ memberUrn: carol.urn, jti: chain(0).jti });
    expect(await codeOf(asReader)).toBe(status.PERMISSION_DENIED);
    expect(await codeOf(fed.spClient().revokeMemberCredential({ memberUrn: `urn:fedlab:${A}:user:nobody`, jti: chain(0).jti }))).toBe(
      status.NOT_FOUND,
    );
    expect(await codeOf(fed.spClient().revokeMemberCredential({ memberUrn: carol.urn, jti: 'no-such-jti' }))).toBe(status.NOT_FOUND);
    expect(await getSliver(0)).toBe(status.OK);
  }, 60_000);

  it('revokes one credential: the node refuses it, the others go on, its key stays while another live credential carries it', async () => {
    const res = await fed.spClient().revokeMemberCredential({ memberUrn: carol.urn, jti: chain(0).jti });
    expect(res).toEqual({ jti: chain(0).jti, alreadyRevoked: false, sliceUrns: [] });
    expect((await carolsKeys()).sort()).toEqual([keyA, keyB].sort());
    const listed = await fed.saClient(fed.home.admin).listRevocations({ pageSize: 0, pageToken: '', sinceVersion: 0 });
    expect(listed.entries.map((e) => e.jti)).toEqual([chain(0).jti]);
    await until(
      async () => {
        const code = await getSliver(0);
        return code === status.UNAUTHENTICATED || code === status.PERMISSION_DENIED;
      },
      20_000,
      'the revoked chain refused at the node',
    );
    expect(await getSliver(1)).toBe(status.OK);
    expect(await getSliver(2)).toBe(status.OK);
    const again = await fed.spClient().revokeMemberCredential({ memberUrn: carol.urn, jti: chain(0).jti });
    expect(again).toEqual({ jti: chain(0).jti, alreadyRevoked: true, sliceUrns: [] });
  }, 60_000);

  it('revoking the last credential that carries a key takes that key off the slice', async () => {
    const res = await fed.spClient().revokeMemberCredential({ memberUrn: carol.urn, jti: chain(1).jti });
    expect(res).toEqual({ jti: chain(1).jti, alreadyRevoked: false, sliceUrns: [dep.sliceUrn] });
    expect(await carolsKeys()).toEqual([keyB]);
    const c = (await fed.spClient().listMembers({ pageSize: 0, pageToken: '', includeRemoved: false })).members.find(
      (m) => m.urn === carol.urn,
    );
    expect(
      c?.credentials
        .filter((x) => x.revoked)
        .map((x) => x.jti)
        .sort(),
    ).toEqual([chain(0).jti, chain(1).jti].sort());
  }, 60_000);

  it('fedlab member ls and member revoke', async () => {
    const ls = await runCli(['member', 'ls', ...sp]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^MEMBER\s+NAME\s+JTI\s+SLICE\s+EXPIRES\s+STATE\s+SSH KEY/);
    expect(ls.stdout).toContain(`${chain(0).jti}`);
    expect(ls.stdout.split('\n').filter((l) => l.includes(carol.urn) && /\brevoked\b/.test(l))).toHaveLength(2);
    const json = await runCli(['member', 'ls', '--json', ...sp]);
    expect(json.code, json.stderr).toBe(0);
    const members = JSON.parse(json.stdout) as { urn: string; credentials: { jti: string; revoked: boolean }[] }[];
    expect(members.find((m) => m.urn === carol.urn)?.credentials.find((c) => c.jti === chain(2).jti)?.revoked).toBe(false);

    // A jti is random base64url and may begin with '-': it goes after `--`, as a user would write it.
    const rv = await runCli(['member', 'revoke', '--json', ...sp, '--', carol.urn, chain(2).jti], { timeoutMs: 60_000 });
    expect(rv.code, rv.stderr).toBe(0);
    expect(JSON.parse(rv.stdout)).toEqual({ member: carol.urn, jti: chain(2).jti, already_revoked: false, slice_urns: [dep.sliceUrn] });
    // No key left: carol is off the slice's users.
    expect(await carolsKeys()).toEqual([]);
    // --jti takes the id as an option's value, which may begin with '-' without `--`.
    const again = await runCli(['member', 'revoke', ...sp, carol.urn, '--jti', chain(2).jti]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/was revoked already/);
    // Without `--`, a '-' word is read as an option: the usage error says what to do, nothing is called.
    const dashed = await runCli(['member', 'revoke', ...sp, carol.urn, '-Xnot-a-jti']);
    expect(dashed.code).toBe(2);
    expect(dashed.stderr).toMatch(/unknown option '-Xnot-a-jti'; .*put the arguments after --/);
    const dashedJson = await runCli(['member', 'revoke', '--json', ...sp, carol.urn, '-Xnot-a-jti']);
    expect(dashedJson.code).toBe(2);
    expect((JSON.parse(dashedJson.stderr) as { code: string; message: string }).message).toMatch(/put the arguments after --/);
    const viaFlag = await runCli(['member', 'revoke', '--json', ...sp, carol.urn, '--jti', '-Xnot-a-jti']);
    expect(viaFlag.code).toBe(1);
    expect((JSON.parse(viaFlag.stderr || viaFlag.stdout) as { code: string; message: string }).message).toContain('-Xnot-a-jti');
    const twice = await runCli(['member', 'revoke', ...sp, carol.urn, chain(2).jti, '--jti', chain(2).jti]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/give the credential id once/);
    const unknown = await runCli(['member', 'revoke', carol.urn, 'nope', '--json', ...sp]);
    expect(unknown.code).toBe(1);
    expect((JSON.parse(unknown.stderr || unknown.stdout) as { code: string }).code).toBe('NOT_FOUND');
    const reader = [...sp.slice(0, 4), '--cert', fed.member.certPath, '--key', fed.member.keyPath, '--ca', fed.caFile];
    const denied = await runCli(['member', 'revoke', ...reader, '--', carol.urn, chain(2).jti]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/may not revoke/);
    expect((await runCli(['member', 'ls', ...reader])).code).toBe(0);
  }, 120_000);

  it('a revocation the slice authority could not take is recorded, survives a provider restart and is finished once it is back', async () => {
    const d = await fed.spClient().delegateToMember({
      requestId: 'dlg-carol-late',
      memberUrn: carol.urn,
      sliceUrn: dep.sliceUrn,
      sshPublicKey: '',
      privileges: [],
      targets: [],
      limits: undefined,
      ttlS: 3600,
      maxDelegations: 0,
    });
    const revoked = async (): Promise<boolean | undefined> =>
      (await fed.spClient().listMembers({ pageSize: 0, pageToken: '', includeRemoved: false })).members
        .find((m) => m.urn === carol.urn)
        ?.credentials.find((c) => c.jti === d.jti)?.revoked;
    await fed.stopSa();
    try {
      expect(await codeOf(fed.spClient().revokeMemberCredential({ memberUrn: carol.urn, jti: d.jti }))).toBe(status.UNAVAILABLE);
      expect(await revoked()).toBe(false);
      // The provider stops with the revocation half done; what it recorded survives.
      await fed.stopSp();
    } finally {
      await fed.startSa();
    }
    await fed.startSp();
    // The restarted provider's retries finish it without another call.
    await until(async () => (await revoked()) === true, 30_000, 'the recorded revocation finished');
    const listed = await fed.saClient(fed.home.admin).listRevocations({ pageSize: 0, pageToken: '', sinceVersion: 0 });
    expect(listed.entries.map((e) => e.jti)).toContain(d.jti);
    const again = await fed.spClient().revokeMemberCredential({ memberUrn: carol.urn, jti: d.jti });
    expect(again.alreadyRevoked).toBe(true);
  }, 90_000);
});
