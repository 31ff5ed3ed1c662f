// Logging in to a sliver with Debian's OpenSSH client (issue 14), against a real node manager with the
// container driver: `ssh slice@node 'id; cat /etc/os-release'` runs inside the sliver (its files land in the
// sliver's root file system, not the host's), and a shell runs under a PTY (prompt, resize, exit status).
// The client pins the host key the node publishes in GetNodeInfo; nothing is trusted on first use.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canContain, cannotContainReason, createSliver, startNodeManager, tempDir, type NmHarness } from '../helpers/node-manager.js';
import { makeClientKey, opensshCheck, runTool, sshOnTerminal, writeClientConfig, type ClientKey } from '../helpers/openssh.js';

const skip = !canContain || !opensshCheck.ok;
if (skip) console.log(`skipping the OpenSSH login tests: ${canContain ? opensshCheck.reason : cannotContainReason}`);

const SLICE = 'urn:fedlab:plc.test:slice:sshlab';
const USER = 'urn:fedlab:plc.test:user:bob';

describe.skipIf(skip)('ssh into a container sliver with OpenSSH', () => {
  let h: NmHarness;
  let dir: string;
  let key: ClientKey;
  let cfg: string;
  let login: string;
  let sliverName: string;

  beforeAll(async () => {
    dir = tempDir('fedlab-ssh-');
    key = makeClientKey(dir, 'bob');
    h = await startNodeManager({ driver: 'container', config: { ssh: { listen: '127.0.0.1:0' } } });
    const sliver = await createSliver(h, 'sshlab-1', { sliceUrn: SLICE, users: [{ urn: USER, sshKeys: [key.publicLine] }] });
    sliverName = 'sshlab-1';
    login = sliver.ssh?.username ?? '';
    const node = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!;
    const endpoint = node.ssh!;
    cfg = writeClientConfig(dir, { address: endpoint.address, hostKey: endpoint.hostKey, identity: key.file });
  }, 60_000);
  afterAll(async () => {
    await h?.destroy();
  });

  it('publishes the endpoint and the login name', async () => {
    const node = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!;
    expect(node.ssh?.hostKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
    expect(node.ssh?.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(login).toBe('sshlab');
    const got = (await h.client().getSliver({ sliverUrn: `urn:fedlab:plc.test:sliver:${sliverName}` }, { chain: h.parties.ownerChain }))
      .sliver!;
    expect(got.ssh).toEqual({ username: 'sshlab', endpoint: node.ssh });
  });

  it('runs a command inside the sliver, as its user, with files in its own root', async () => {
    const r = await runTool('ssh', ['-F', cfg, `${login}@node`, 'id; cat /etc/os-release; echo from-ssh > /root/made-by-ssh; echo $HOME']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^uid=0\(root\) gid=0\(root\)/);
    expect(r.stdout).toMatch(/^ID=/m);
    expect(r.stdout).toMatch(/\/root\n$/);
    expect(existsSync('/root/made-by-ssh')).toBe(false);
    // The sliver's /root is its own writable directory under its bundle.
    const inside = join(h.dataDir, 'slivers', sliverName, 'data', 'root', 'made-by-ssh');
    expect(readFileSync(inside, 'utf8')).toBe('from-ssh\n');
    // The exit status of the command comes back.
    expect((await runTool('ssh', ['-F', cfg, `${login}@node`, 'exit 7'])).code).toBe(7);
  });

  it('runs a shell under a PTY: prompt, window size, a resize, Ctrl-C, exit status', async () => {
    const t = await sshOnTerminal(['-tt', '-F', cfg, `${login}@node`], 24, 80);
    try {
      t.write("PS1='ssh-prompt> '\r");
      await t.until(/ssh-prompt> /);
      let mark = t.output().length;
      t.write('stty size; tty\r');
      await t.until(/24 80\r\n\/dev\/pts\/\d+\r\n/, mark);
      mark = t.output().length;
      t.resize(40, 132);
      // The new size travels on its own (ssh's window-change, then runc's SIGWINCH): ask until the shell sees it.
      for (let tries = 0; ; tries++) {
        mark = t.output().length;
        t.write('stty size\r');
        await t.until(/\r\nssh-prompt> $/, mark);
        if (/^40 132\r$/m.test(t.output().slice(mark))) break;
        if (tries === 50) throw new Error(`stty size never printed 40 132: ${JSON.stringify(t.output().slice(mark))}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      mark = t.output().length;
      t.write('sleep 100; echo after-sleep\r');
      await new Promise((r) => setTimeout(r, 500));
      t.write('\x03');
      await t.until(/ssh-prompt> /, mark);
      expect(t.output().slice(mark)).not.toMatch(/(^|\n)after-sleep\r\n/);
      t.write('exit 3\r');
      expect(await t.exit).toBe(3);
    } finally {
      t.kill();
    }
  });

  it('gives `ssh -tt` from a pipe a 24x80 terminal (OpenSSH asks with 0x0 sizes, which RFC 4254 says to ignore)', async () => {
    const r = await runTool('ssh', ['-tt', '-F', cfg, `${login}@node`, 'stty size; tty'], { input: '' });
    expect(r.stderr).not.toMatch(/PTY allocation request failed/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/24 80\r*\n\/dev\/pts\/\d+\r*\n/);
  });
});
