// The node manager's SSH endpoint with the process driver (no root needed), OpenSSH's client where it
// matters: an exec login; the host key made once (0600) and kept across a restart; login names (slice
// name, then -2); oversized and malformed keys in CreateSliver and UpdateSliverUsers are INVALID_ARGUMENT
// naming the field and change nothing; at most N sessions per slice; 200 unauthenticated connections leave
// a gRPC call answering (those beyond the bound are closed at once); a client that never completes the
// handshake is dropped after the timeout.
import { statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSliver, startNodeManager, tempDir, type NmHarness } from '../helpers/node-manager.js';
import { makeClientKey, opensshCheck, runTool, writeClientConfig, type ClientKey } from '../helpers/openssh.js';
import { waitFor } from '../helpers/servers.js';

if (!opensshCheck.ok) console.log(`skipping the OpenSSH parts: ${opensshCheck.reason}`);

const USER = 'urn:fedlab:plc.test:user:dora';
const sliceOf = (n: string): string => `urn:fedlab:plc.test:slice:${n}`;

/** Opens a TCP connection; resolves once connected, with a promise of when it closed. */
function rawConnection(address: string): Promise<{ sock: Socket; closed: Promise<number> }> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const sock = connect(Number(address.slice(at + 1)), address.slice(0, at));
    const closed = new Promise<number>((r) => sock.on('close', () => r(Date.now())));
    sock.on('error', () => undefined);
    // Read what the server sends (its version line): a paused socket never sees the server's close.
    sock.resume();
    sock.once('connect', () => resolve({ sock, closed }));
    sock.once('error', reject);
  });
}

describe('the SSH endpoint (process driver)', () => {
  let h: NmHarness;
  let dir: string;
  let key: ClientKey;
  let cfg: string;
  let address: string;

  beforeAll(async () => {
    dir = tempDir('fedlab-ssh-');
    key = makeClientKey(dir, 'dora');
    h = await startNodeManager({
      driver: 'process',
      config: {
        ssh: { listen: '127.0.0.1:0', max_sessions_per_slice: 8, handshake_timeout_ms: 600, max_unauthenticated: 64 },
        // The owner's policy lowers the session bound to 2.
        policy: { ssh_sessions_per_slice: 2 },
      },
    });
    await createSliver(h, 'pa-1', { sliceUrn: sliceOf('pa'), users: [{ urn: USER, sshKeys: [key.publicLine] }] });
    const node = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!;
    address = node.ssh!.address;
    cfg = writeClientConfig(dir, { address, hostKey: node.ssh!.hostKey, identity: key.file });
  }, 60_000);
  afterAll(async () => {
    await h?.destroy();
  });

  it.skipIf(!opensshCheck.ok)('runs a command in the sliver over ssh', async () => {
    const r = await runTool('ssh', ['-F', cfg, 'pa@node', 'echo "$FEDLAB_SLIVER_URN"; cat']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('urn:fedlab:plc.test:sliver:pa-1\n');
    const piped = await runTool('ssh', ['-F', cfg, 'pa@node', 'wc -c'], { input: Buffer.alloc(100_000, 1) });
    expect(piped.stdout.trim()).toBe('100000');
  });

  it('makes the host key once, 0600, and keeps it across a restart', async () => {
    const file = join(h.dataDir, 'ssh_host_ed25519_key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const before = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!.ssh!;
    const again = await startNodeManager({
      driver: 'process',
      dataDir: join(tempDir(), 'data'),
      config: { ssh: { listen: '127.0.0.1:0', host_key_file: file } },
    });
    try {
      const after = (await again.client().getNodeInfo({}, { chain: again.parties.ownerChain })).node!.ssh!;
      expect(after.hostKey).toBe(before.hostKey);
      expect(after.hostKeyFingerprint).toBe(before.hostKeyFingerprint);
    } finally {
      await again.destroy();
    }
  });

  it('names logins after the slice, with -2 for a second sliver, and frees a name with its sliver', async () => {
    const a = await createSliver(h, 'dup-1', { sliceUrn: sliceOf('dup') });
    const b = await createSliver(h, 'dup-2', { sliceUrn: sliceOf('dup') });
    expect([a.ssh?.username, b.ssh?.username]).toEqual(['dup', 'dup-2']);
    await h.client().deleteSliver({ sliverUrn: a.urn }, { chain: h.parties.ownerChain });
    const c = await createSliver(h, 'dup-3', { sliceUrn: sliceOf('dup') });
    expect(c.ssh?.username).toBe('dup');
    for (const s of [b, c]) await h.client().deleteSliver({ sliverUrn: s.urn }, { chain: h.parties.ownerChain });
  });

  it('refuses oversized and malformed keys with INVALID_ARGUMENT naming the field, changing nothing', async () => {
    const count = async () =>
      (await h.client().listSlivers({ pageSize: 0, pageToken: '', sliceUrn: '' }, { chain: h.parties.ownerChain })).slivers.length;
    const before = await count();
    const bad: [string, string][] = [
      ['ssh-dss AAAAB3NzaC1kc3MAAACBAP', 'users[0].ssh_keys[0]'],
      ['ssh-ed25519 not-base64!!', 'users[0].ssh_keys[0]'],
      [`ssh-ed25519 ${'A'.repeat(9000)}`, 'users[0].ssh_keys[0]'],
      [`${key.publicLine}\nssh-ed25519 AAAA`, 'users[0].ssh_keys[0]'],
    ];
    for (const [line, field] of bad) {
      const err = (await createSliver(h, 'bad-1', { sliceUrn: sliceOf('bad'), users: [{ urn: USER, sshKeys: [line] }] }).catch(
        (e: unknown) => e,
      )) as ServiceError;
      expect(err.code, line.slice(0, 40)).toBe(Status.INVALID_ARGUMENT);
      expect(err.details).toContain(field);
    }
    const many = Array.from({ length: 65 }, (_, i) => ({ urn: `urn:fedlab:plc.test:user:u${i}`, sshKeys: [] }));
    const err = (await createSliver(h, 'bad-2', { sliceUrn: sliceOf('bad'), users: many }).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(Status.INVALID_ARGUMENT);
    expect(err.details).toContain('users');
    expect(await count()).toBe(before);
    const upd = (await h
      .client()
      .updateSliverUsers(
        { sliverUrn: 'urn:fedlab:plc.test:sliver:pa-1', users: [{ urn: USER, sshKeys: ['ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC'] }] },
        { chain: h.parties.ownerChain },
      )
      .catch((e: unknown) => e)) as ServiceError;
    expect(upd.code).toBe(Status.INVALID_ARGUMENT);
    expect(upd.details).toContain('users[0].ssh_keys[0]');
    // The sliver's users are what they were: the key still logs in.
    const still = (await h.client().getSliver({ sliverUrn: 'urn:fedlab:plc.test:sliver:pa-1' }, { chain: h.parties.ownerChain })).sliver!;
    expect(still.ssh?.username).toBe('pa');
    if (opensshCheck.ok) expect((await runTool('ssh', ['-F', cfg, 'pa@node', 'echo in'])).stdout).toBe('in\n');
  });

  it('UpdateSliverUsers is idempotent and NOT_FOUND for an unknown sliver (owner chain)', async () => {
    const users = [{ urn: USER, sshKeys: [key.publicLine] }];
    const one = await h
      .client()
      .updateSliverUsers({ sliverUrn: 'urn:fedlab:plc.test:sliver:pa-1', users }, { chain: h.parties.ownerChain });
    const two = await h
      .client()
      .updateSliverUsers({ sliverUrn: 'urn:fedlab:plc.test:sliver:pa-1', users }, { chain: h.parties.ownerChain });
    expect(two.sliver?.ssh).toEqual(one.sliver?.ssh);
    const err = (await h
      .client()
      .updateSliverUsers({ sliverUrn: 'urn:fedlab:plc.test:sliver:nope', users }, { chain: h.parties.ownerChain })
      .catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(Status.NOT_FOUND);
  });

  it.skipIf(!opensshCheck.ok)('allows at most the session bound (the owner policy lowers it) of one slice at once', async () => {
    const open = [0, 1].map(() => spawn('ssh', ['-F', cfg, 'pa@node', 'echo open; sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] }));
    try {
      let opened = 0;
      for (const c of open) c.stdout.on('data', () => opened++);
      await waitFor(() => opened >= 2, 15_000, 'two sessions to open');
      const third = await runTool('ssh', ['-o', 'LogLevel=INFO', '-F', cfg, 'pa@node', 'echo third']);
      expect(third.stdout).toBe('');
      expect(third.code).toBe(255);
      expect(third.stderr).toMatch(/open failed|administratively prohibited/);
    } finally {
      for (const c of open) c.kill('SIGKILL');
    }
    // The slots come back once those sessions ended.
    await waitFor(async () => (await runTool('ssh', ['-F', cfg, 'pa@node', 'echo again'])).stdout === 'again\n', 10_000, 'a session again');
  });

  it('stays responsive under 200 unauthenticated connections; those beyond the bound are closed at once', async () => {
    const conns = await Promise.all(Array.from({ length: 200 }, () => rawConnection(address)));
    try {
      const t0 = Date.now();
      const info = await h.client().getNodeInfo({}, { chain: h.parties.ownerChain, deadlineMs: 5000 });
      expect(info.node?.urn).toBeTruthy();
      expect(Date.now() - t0).toBeLessThan(5000);
      // 64 are held (until the handshake timeout); the other 136 were closed as they came.
      const closedSoon = await Promise.all(
        conns.map((c) => Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))])),
      );
      expect(closedSoon.filter(Boolean).length).toBeGreaterThanOrEqual(136);
    } finally {
      for (const c of conns) c.sock.destroy();
      // Past the handshake timeout every held one is gone on the server too: the next test starts clean.
      await new Promise((r) => setTimeout(r, 1000));
    }
  });

  it('drops a client that never completes the handshake after the timeout', async () => {
    const silent = await rawConnection(address);
    const identOnly = await rawConnection(address);
    identOnly.sock.write('SSH-2.0-Stalls_1.0\r\n');
    const t0 = Date.now();
    const [a, b] = await Promise.all([silent.closed, identOnly.closed]);
    for (const at of [a, b]) {
      expect(at - t0).toBeGreaterThanOrEqual(400);
      expect(at - t0).toBeLessThan(3000);
    }
  });
});

describe.skipIf(!opensshCheck.ok)('SSH limits and cut-offs (process driver)', () => {
  let h: NmHarness;
  let cfg: string;
  let publicLine: string;

  /** Runs a command over ssh; resolves with how long the connection lasted (ms). */
  const lasted = async (command: string): Promise<number> =>
    (await runTool('ssh', ['-F', cfg, 'lim@node', command], { timeoutMs: 30_000 })).ms;

  beforeAll(async () => {
    const dir = tempDir('fedlab-ssh-');
    const key = makeClientKey(dir, 'lim');
    publicLine = key.publicLine;
    h = await startNodeManager({ driver: 'process', config: { ssh: { listen: '127.0.0.1:0', idle_timeout_s: 1, max_session_s: 4 } } });
    await createSliver(h, 'lim-1', { sliceUrn: sliceOf('lim'), users: [{ urn: USER, sshKeys: [key.publicLine] }] });
    const node = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!;
    cfg = writeClientConfig(dir, { address: node.ssh!.address, hostKey: node.ssh!.hostKey, identity: key.file });
  }, 60_000);
  afterAll(async () => {
    await h?.destroy();
  });

  it('ends an idle connection after idle_timeout_s, and a busy one after max_session_s', async () => {
    const idle = await lasted('sleep 20');
    expect(idle).toBeGreaterThanOrEqual(900);
    expect(idle).toBeLessThan(4000);
    const busy = await lasted('while :; do echo tick; sleep 0.2; done');
    expect(busy).toBeGreaterThanOrEqual(3500);
    expect(busy).toBeLessThan(8000);
  });

  it('ends a session when its sliver expires', async () => {
    await createSliver(h, 'lim-2', {
      sliceUrn: sliceOf('lim'),
      users: [{ urn: USER, sshKeys: [publicLine] }],
      expiresAt: new Date(Date.now() + 2500),
    });
    const r = await runTool('ssh', ['-F', cfg, 'lim-2@node', 'while :; do echo tick; sleep 0.2; done'], { timeoutMs: 30_000 });
    expect(r.stdout).toMatch(/tick/);
    expect(r.ms).toBeLessThan(6000);
    expect((await runTool('ssh', ['-F', cfg, 'lim-2@node', 'true'])).code).toBe(255);
  });

  it('refuses remote forwarding', async () => {
    const r = await runTool('ssh', ['-F', cfg, '-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:0:127.0.0.1:22', 'lim@node', 'echo in']);
    expect(r.code).toBe(255);
    expect(r.stdout).toBe('');
  });
});
