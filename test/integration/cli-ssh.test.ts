// The SSH commands of the CLI against real parts (one site: a real MA and a node manager, process
// driver, no SSH endpoint; a real slice authority; the provider in this process): slice create
// --ssh-key and slice users ls|add|rm reach the slice's users at the SA; member delegate --ssh-key
// and member remove through the provider; and bad input — a private key, a missing file, a slice
// with no SSH login, a public key as --identity, a symbolic link as --known-hosts — is a clear
// message and a non-zero exit with nothing written and nothing created.
import { existsSync, lstatSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { runCli } from '../helpers/cli.js';
import { disposeParties } from '../helpers/ma-harness.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';
import { newSshKeyPair } from '../../services/core/identity/ssh-keys.js';

const A = 'plc.test';
const work = mkdtempSync(join(tmpdir(), 'fedlab-cli-ssh-'));
const keyFiles = (name: string): { pub: string; priv: string; line: string } => {
  const pair = newSshKeyPair({ comment: `${name}@test` });
  const priv = join(work, name);
  writeFileSync(priv, pair.private, { mode: 0o600 });
  writeFileSync(`${priv}.pub`, `${pair.public}\n`);
  return { pub: `${priv}.pub`, priv, line: pair.public };
};

describe('fedlab: SSH commands', () => {
  let fed: SpFederation;
  let sa: string[];
  let sp: string[];
  const mine = keyFiles('mine');
  const alice = keyFiles('alice');

  beforeAll(async () => {
    fed = await startSpFederation({ sites: [{ domain: A, nodes: 1 }] });
    const provider = ['--cert', fed.home.sp.certPath, '--key', fed.home.sp.keyPath, '--ca', fed.caFile];
    sa = ['--sa', fed.saAddress(), '--sa-urn', fed.home.sa.urn, ...provider];
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

  const liveSlices = async (): Promise<string[]> =>
    (await fed.saClient().listSlices({ pageSize: 100, pageToken: '', state: SliceState.SLICE_STATE_UNSPECIFIED })).slices.map((s) => s.urn);

  it('slice create --ssh-key makes the caller a user with that key; slice users add, ls and rm', async () => {
    const made = await runCli(['slice', 'create', 'keyed', '--site', `${A}=1`, '--ssh-key', mine.pub, ...sa], { timeoutMs: 60_000 });
    expect(made.code, made.stderr).toBe(0);
    const urn = `urn:fedlab:${A}:slice:keyed`;
    const users = async () => (await fed.saClient().getSlice({ sliceUrn: urn })).slice?.users;
    expect(await users()).toEqual([{ urn: fed.home.sp.urn, sshKeys: [mine.line] }]);

    const aliceUrn = `urn:fedlab:${A}:user:alice`;
    const add = await runCli(['slice', 'users', 'add', 'keyed', '--user', aliceUrn, '--ssh-key', alice.pub, ...sa], { timeoutMs: 30_000 });
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/USER\s+KEY\s+FINGERPRINT\s+COMMENT/);
    expect(add.stdout).toMatch(new RegExp(`${aliceUrn}\\s+ssh-ed25519 256\\s+SHA256:\\S+\\s+alice@test`));
    // add merges: a second key of mine keeps the first.
    const second = keyFiles('mine2');
    expect((await runCli(['slice', 'users', 'add', urn, '--ssh-key', second.pub, ...sa], { timeoutMs: 30_000 })).code).toBe(0);
    expect((await users())?.find((u) => u.urn === fed.home.sp.urn)?.sshKeys).toEqual([mine.line, second.line]);

    const ls = await runCli(['slice', 'users', 'ls', 'keyed', '--json', ...sa], { timeoutMs: 30_000 });
    expect(ls.code, ls.stderr).toBe(0);
    const listed = JSON.parse(ls.stdout) as { slice: string; users: { urn: string; ssh_keys: { type: string; fingerprint: string }[] }[] };
    expect(listed.slice).toBe(urn);
    expect(listed.users.map((u) => [u.urn, u.ssh_keys.length])).toEqual([
      // Sorted by URN.
      [fed.home.sp.urn, 2],
      [aliceUrn, 1],
    ]);
    expect(listed.users[1]?.ssh_keys[0]?.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);

    const rm = await runCli(['slice', 'users', 'rm', 'keyed', '--user', aliceUrn, ...sa], { timeoutMs: 30_000 });
    expect(rm.code, rm.stderr).toBe(0);
    expect((await users())?.map((u) => u.urn)).toEqual([fed.home.sp.urn]);
    const rmNone = await runCli(['slice', 'users', 'rm', 'keyed', ...sa], { timeoutMs: 30_000 });
    expect(rmNone.code).toBe(2);
  }, 120_000);

  it('bad key files are refused before any call: nothing is created, nothing written', async () => {
    const before = await liveSlices();
    const priv = await runCli(['slice', 'create', 'bad1', '--site', `${A}=1`, '--ssh-key', mine.priv, ...sa]);
    expect(priv.code).toBe(2);
    expect(priv.stderr).toMatch(/--ssh-key .*mine is a private key; give the public key/);
    expect(priv.stderr).not.toMatch(/BEGIN|PRIVATE KEY-----/);
    const missing = await runCli(['slice', 'create', 'bad2', '--site', `${A}=1`, '--ssh-key', join(work, 'nope.pub'), ...sa]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read it \(ENOENT\)/);
    const dsa = join(work, 'dsa.pub');
    writeFileSync(dsa, 'ssh-dss AAAAB3NzaC1kc3MAAACBAP8= old\n');
    const refusedType = await runCli(['slice', 'users', 'add', 'keyed', '--ssh-key', dsa, ...sa]);
    expect(refusedType.code).toBe(2);
    expect(refusedType.stderr).toMatch(/DSA \(ssh-dss\) keys are not accepted/);
    expect(await liveSlices()).toEqual(before);

    const out = join(work, 'never.chain');
    const delegated = await runCli([
      'member',
      'delegate',
      '--urn',
      fed.member.urn,
      '--slice',
      `urn:fedlab:${A}:slice:keyed`,
      '--out',
      out,
      '--ssh-key',
      mine.priv,
      ...sp,
    ]);
    expect(delegated.code).toBe(2);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('sliver ssh-config: a slice with no SSH login, a public key as --identity and a symlink as --known-hosts are refused, nothing written', async () => {
    const kh = join(work, 'known_hosts');
    const none = await runCli(['sliver', 'ssh-config', 'keyed', '--known-hosts', kh, ...sa], { timeoutMs: 30_000 });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /slice urn:fedlab:plc\.test:slice:keyed has no sliver with an SSH login:\n {2}urn:fedlab:plc\.test:sliver:\S+: its manifest has no SSH login/,
    );
    expect(existsSync(kh)).toBe(false);
    const pubAsIdentity = await runCli(['sliver', 'ssh-config', 'keyed', '--identity', mine.pub, ...sa]);
    expect(pubAsIdentity.code).toBe(2);
    expect(pubAsIdentity.stderr).toMatch(/--identity .*mine\.pub is a public key; give the private key/);
    const target = join(work, 'elsewhere');
    const link = join(work, 'kh-link');
    symlinkSync(target, link);
    const viaLink = await runCli(['sliver', 'ssh-config', 'keyed', '--known-hosts', link, '--force', ...sa]);
    expect(viaLink.code).toBe(2);
    expect(viaLink.stderr).toMatch(/symbolic link/);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(target);
    expect(existsSync(target)).toBe(false);
  }, 60_000);

  it('member delegate --ssh-key puts the member on the slice; member remove takes it off and revokes its chain', async () => {
    const dep = await runCli(['deploy', ...sp, '--name', 'keyed-dep', '--site', `${A}=1`, '--', 'sleep', '300'], { timeoutMs: 60_000 });
    expect(dep.code, dep.stderr).toBe(0);
    const slice = `urn:fedlab:${A}:slice:keyed-dep`;
    await fed
      .spClient()
      .addMember({ requestId: 'cli-bob', memberUrn: fed.member.urn, certificatePem: fed.member.certPem, displayName: 'Bob' });
    const chain = join(work, 'bob.chain');
    const bob = keyFiles('bob');
    const del = await runCli(
      ['member', 'delegate', '--urn', fed.member.urn, '--slice', slice, '--out', chain, '--ssh-key', bob.pub, ...sp],
      {
        timeoutMs: 60_000,
      },
    );
    expect(del.code, del.stderr).toBe(0);
    expect(existsSync(chain)).toBe(true);
    expect((await fed.saClient().getSlice({ sliceUrn: slice })).slice?.users).toEqual([{ urn: fed.member.urn, sshKeys: [bob.line] }]);
    const rm = await runCli(['member', 'remove', fed.member.urn, '--json', ...sp], { timeoutMs: 60_000 });
    expect(rm.code, rm.stderr).toBe(0);
    const res = JSON.parse(rm.stdout) as { revoked_jtis: string[]; slice_urns: string[] };
    expect(res.revoked_jtis).toHaveLength(1);
    expect(res.slice_urns).toEqual([slice]);
    expect((await fed.saClient().getSlice({ sliceUrn: slice })).slice?.users).toEqual([]);
    const unknown = await runCli(['member', 'remove', `urn:fedlab:${A}:user:nobody`, ...sp]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/is not a member of this provider/);
    const notUrn = await runCli(['member', 'remove', 'bob', ...sp]);
    expect(notUrn.code).toBe(2);
  }, 120_000);
});
