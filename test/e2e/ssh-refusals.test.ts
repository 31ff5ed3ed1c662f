// What the node's SSH endpoint refuses and cuts off (issue 14), with Debian's OpenSSH client against a real
// node manager with the container driver: a key not of the slice, a key of another slice, a wrong login
// name, a removed user's key (UpdateSliverUsers), a stopped and a deleted sliver are refused; open sessions
// end within seconds of the key's removal, the stop and the delete; a host key other than the published
// one is caught by the client; and every login is logged as one JSON line.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../services/core/log.js';
import { SliverAction } from '../../services/generated/fedlab/v1/node_manager.js';
import { canContain, cannotContainReason, createSliver, startNodeManager, tempDir, type NmHarness } from '../helpers/node-manager.js';
import { makeClientKey, opensshCheck, runTool, writeClientConfig, type ClientKey } from '../helpers/openssh.js';
import { waitFor } from '../helpers/servers.js';

const skip = !canContain || !opensshCheck.ok;
if (skip) console.log(`skipping the OpenSSH refusal tests: ${canContain ? opensshCheck.reason : cannotContainReason}`);

const USER_A = 'urn:fedlab:plc.test:user:ann';
const USER_B = 'urn:fedlab:plc.test:user:ben';
const urnOf = (name: string): string => `urn:fedlab:plc.test:sliver:${name}`;

describe.skipIf(skip)('ssh refusals and cut-offs with OpenSSH', () => {
  let h: NmHarness;
  let dir: string;
  const keys: Record<string, ClientKey> = {};
  const cfg: Record<string, string> = {};
  let endpoint: { address: string; hostKey: string };
  const lines: Record<string, unknown>[] = [];

  const ssh = (who: string, target: string, command: string) => runTool('ssh', ['-F', cfg[who]!, target, command], { timeoutMs: 20_000 });
  /** An open session (`sleep`ing in the sliver) and when it ended. */
  const openSession = (who: string, target: string) => {
    const child = spawn('ssh', ['-F', cfg[who]!, target, 'echo open; sleep 600'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const ended = new Promise<number>((resolve) => child.on('close', () => resolve(Date.now())));
    return { opened: () => waitFor(() => out.includes('open'), 15_000, 'the session to open'), ended, kill: () => child.kill('SIGKILL') };
  };

  beforeAll(async () => {
    dir = tempDir('fedlab-ssh-');
    for (const n of ['ann', 'ben', 'eve', 'ann2']) keys[n] = makeClientKey(dir, n);
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    h = await startNodeManager({
      driver: 'container',
      config: { ssh: { listen: '127.0.0.1:0' } },
      log: createLogger({ level: 'info', destination: sink }),
    });
    await createSliver(h, 'ra-1', {
      sliceUrn: 'urn:fedlab:plc.test:slice:ra',
      users: [
        { urn: USER_A, sshKeys: [keys.ann!.publicLine, keys.ann2!.publicLine] },
        { urn: USER_B, sshKeys: [keys.ben!.publicLine] },
      ],
    });
    await createSliver(h, 'rb-1', {
      sliceUrn: 'urn:fedlab:plc.test:slice:rb',
      users: [{ urn: 'urn:fedlab:plc.test:user:eve', sshKeys: [keys.eve!.publicLine] }],
    });
    const node = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!;
    endpoint = node.ssh!;
    // One config per key (its own directory): the Host alias is the same, the identity differs.
    for (const n of Object.keys(keys)) {
      const own = join(dir, `cfg-${n}`);
      mkdirSync(own);
      cfg[n] = writeClientConfig(own, { address: endpoint.address, hostKey: endpoint.hostKey, identity: keys[n]!.file });
    }
  }, 90_000);
  afterAll(async () => {
    await h?.destroy();
  });

  it('lets the slice users in, and logs each login as one JSON line', async () => {
    expect((await ssh('ann', 'ra@node', 'echo in')).stdout).toBe('in\n');
    expect((await ssh('eve', 'rb@node', 'echo in')).stdout).toBe('in\n');
    await waitFor(() => lines.some((l) => l.event === 'ssh.login' && l.user === USER_A), 5000, 'the login line');
    const line = lines.find((l) => l.event === 'ssh.login' && l.user === USER_A)!;
    expect(line).toMatchObject({ slice: 'urn:fedlab:plc.test:slice:ra', sliver: urnOf('ra-1'), login: 'ra' });
    expect(line.keyFingerprint).toMatch(/^SHA256:/);
    expect(line.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(Date.parse(line.end as string)).toBeGreaterThanOrEqual(Date.parse(line.start as string));
    expect(line.bytesOut).toBeGreaterThan(0);
  });

  it('refuses a key of no slice, a key of another slice and a wrong login name', async () => {
    const stranger = makeClientKey(dir, 'stranger');
    mkdirSync(join(dir, 'cfg-stranger'));
    const strangerCfg = writeClientConfig(join(dir, 'cfg-stranger'), {
      alias: 'node',
      address: endpoint.address,
      hostKey: endpoint.hostKey,
      identity: stranger.file,
    });
    const r1 = await runTool('ssh', ['-F', strangerCfg, 'ra@node', 'echo in']);
    expect(r1.code).toBe(255);
    expect(r1.stderr).toMatch(/Permission denied \(publickey\)/);
    const r2 = await ssh('eve', 'ra@node', 'echo in');
    expect(r2.code).toBe(255);
    expect(r2.stderr).toMatch(/Permission denied/);
    const r3 = await ssh('ann', 'nobody@node', 'echo in');
    expect(r3.code).toBe(255);
    const r4 = await ssh('ann', 'rb@node', 'echo in');
    expect(r4.code).toBe(255);
  });

  it('catches a host key other than the published one', async () => {
    const other = makeClientKey(dir, 'not-the-host');
    mkdirSync(join(dir, 'cfg-wrong'));
    const wrong = writeClientConfig(join(dir, 'cfg-wrong'), {
      alias: 'node',
      address: endpoint.address,
      hostKey: other.publicLine,
      identity: keys.ann!.file,
    });
    const r = await runTool('ssh', ['-F', wrong, 'ra@node', 'echo in']);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('refuses a removed user and ends the removed user’s open session within seconds', async () => {
    const open = openSession('ben', 'ra@node');
    const openKept = openSession('ann', 'ra@node');
    try {
      await open.opened();
      await openKept.opened();
      const t0 = Date.now();
      await h
        .client()
        .updateSliverUsers(
          { sliverUrn: urnOf('ra-1'), users: [{ urn: USER_A, sshKeys: [keys.ann!.publicLine] }] },
          { chain: h.parties.ownerChain },
        );
      expect((await open.ended) - t0).toBeLessThan(5000);
      expect((await ssh('ben', 'ra@node', 'echo in')).code).toBe(255);
      // ann's second key was removed too; her first still works, and her open session goes on.
      expect((await ssh('ann2', 'ra@node', 'echo in')).code).toBe(255);
      expect((await ssh('ann', 'ra@node', 'echo in')).stdout).toBe('in\n');
      const still = await Promise.race([openKept.ended.then(() => 'ended'), new Promise((r) => setTimeout(() => r('open'), 1500))]);
      expect(still).toBe('open');
    } finally {
      open.kill();
      openKept.kill();
    }
  });

  it('refuses a stopped sliver and ends its sessions within seconds; a start lets the users in again', async () => {
    const open = openSession('eve', 'rb@node');
    try {
      await open.opened();
      const t0 = Date.now();
      await h
        .client()
        .controlSliver({ sliverUrn: urnOf('rb-1'), action: SliverAction.SLIVER_ACTION_STOP }, { chain: h.parties.ownerChain });
      expect((await open.ended) - t0).toBeLessThan(5000);
      expect((await ssh('eve', 'rb@node', 'echo in')).code).toBe(255);
      await h
        .client()
        .controlSliver({ sliverUrn: urnOf('rb-1'), action: SliverAction.SLIVER_ACTION_START }, { chain: h.parties.ownerChain });
      expect((await ssh('eve', 'rb@node', 'echo in')).stdout).toBe('in\n');
    } finally {
      open.kill();
    }
  });

  it('ends an open session within seconds of the delete, and refuses logins after it', async () => {
    const open = openSession('ann', 'ra@node');
    try {
      await open.opened();
      const t0 = Date.now();
      await h.client().deleteSliver({ sliverUrn: urnOf('ra-1') }, { chain: h.parties.ownerChain });
      expect((await open.ended) - t0).toBeLessThan(5000);
      const r = await ssh('ann', 'ra@node', 'echo in');
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/Permission denied/);
    } finally {
      open.kill();
    }
  });
});
