// The SSH endpoint against a client that speaks the protocol badly (ssh2's Client, reached into; process
// driver, so commands leave traces on the host that the test reads from outside): a client that ignores the
// DISCONNECT of a connection the node ended gets nothing more run and loses its socket; a removed key runs no
// command even before the once-a-second check; a session closed right after its exec leaves no command
// running; a window-change before any pty-req makes no terminal; a client that stops reading while the sliver
// writes fast, or sends past its window, leaves the node manager's memory bounded and its gRPC answering;
// channels per connection and logged-in connections per slice and per node are bounded.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../services/core/clock.js';
import { silentLogger } from '../../services/core/log.js';
import { loadOrCreateHostKey } from '../../services/node-manager/ssh/host-key.js';
import { SshServer } from '../../services/node-manager/ssh/server.js';
import type { SshSettings } from '../../services/node-manager/ssh/settings.js';
import { createSliver, startNodeManager, tempDir, type NmHarness } from '../helpers/node-manager.js';
import { waitFor } from '../helpers/servers.js';
import { alive, rawKey, rawLogin, within, type RawClient } from './ssh-raw-client.js';

const USER = 'urn:fedlab:plc.test:user:mallory';
const sliceOf = (n: string): string => `urn:fedlab:plc.test:slice:${n}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The pid a command wrote to `file` (`echo $$ > file; exec …`), once it did. */
async function pidIn(file: string, ms = 10_000): Promise<number> {
  await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').trim() !== '', ms, `${file} to be written`);
  return Number(readFileSync(file, 'utf8').trim());
}

describe('ssh: a client that speaks the protocol badly (process driver)', () => {
  let h: NmHarness;
  let dir: string;
  let address: string;
  const key = rawKey();
  const open: RawClient[] = [];
  const login = async (name: string): Promise<RawClient> => {
    const c = await rawLogin(address, name, key.privateKey);
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = tempDir('fedlab-ssh-bad-');
    h = await startNodeManager({ driver: 'process', config: { ssh: { listen: '127.0.0.1:0', max_sessions_per_slice: 2 } } });
    for (const n of ['half', 'rm', 'early', 'win', 'flood', 'over']) {
      await createSliver(h, `${n}-1`, { sliceUrn: sliceOf(n), users: [{ urn: USER, sshKeys: [key.publicLine] }] });
    }
    address = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!.ssh!.address;
  }, 60_000);
  afterAll(async () => {
    for (const c of open) c.destroy();
    await h?.destroy();
  });

  it('a client ignoring the DISCONNECT of an ended connection gets nothing run, and its socket is closed', async () => {
    const c = await login('half');
    // From here it sees nothing the server says: not the DISCONNECT, not the FIN. It keeps asking.
    c.deafen();
    const t0 = Date.now();
    await h.client().updateSliverUsers({ sliverUrn: 'urn:fedlab:plc.test:sliver:half-1', users: [] }, { chain: h.parties.ownerChain });
    const markers: string[] = [];
    for (let i = 0; i < 25 && !c.socket.destroyed; i++) {
      const m = join(dir, `half-${i}`);
      markers.push(m);
      void c.exec(`touch ${m}`).catch(() => undefined);
      await sleep(120);
    }
    const closedAt = await within(c.closed, 6000);
    expect(closedAt).not.toBe('timeout');
    // The once-a-second check, then at most the grace before the socket goes.
    expect((closedAt as number) - t0).toBeLessThan(4000);
    await sleep(300);
    expect(markers.filter((m) => existsSync(m))).toEqual([]);
  });

  it('a removed key runs no command, even before the once-a-second check', async () => {
    const c = await login('rm');
    await h.client().updateSliverUsers({ sliverUrn: 'urn:fedlab:plc.test:sliver:rm-1', users: [] }, { chain: h.parties.ownerChain });
    const m = join(dir, 'rm-marker');
    // Refused: the channel open fails and the connection ends (the DISCONNECT may come before the refusal is seen).
    const r = await Promise.race([
      c.exec(`touch ${m}`).then(
        () => 'ran',
        () => 'refused',
      ),
      c.closed.then(() => 'refused'),
    ]);
    expect(r).toBe('refused');
    await sleep(300);
    expect(existsSync(m)).toBe(false);
  });

  it('a session closed right after its exec leaves no command running, and gives its slot back', async () => {
    const c = await login('early');
    const pids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const f = join(dir, `early-${i}`);
      await c.exec(`echo $$ > ${f}; exec sleep 30`, { closeAfterExec: true }).catch(() => undefined);
      // The command may never have started (killed first): then there is nothing to find.
      const pid = await pidIn(f, 2000).catch(() => undefined);
      if (pid) pids.push(pid);
    }
    await waitFor(() => pids.every((p) => !alive(p)), 5000, 'the early-closed commands to be killed');
    // max_sessions_per_slice is 2: both slots are free again.
    const [a, b] = await Promise.all([c.exec('echo one'), c.exec('echo two')]);
    const out = await Promise.all(
      [a, b].map(
        (ch) =>
          new Promise<string>((r) => {
            let s = '';
            ch.on('data', (d: Buffer) => (s += d.toString()));
            ch.on('close', () => r(s));
          }),
      ),
    );
    expect(out.sort()).toEqual(['one\n', 'two\n']);
  });

  it('sessions that never ran a command give their slots back when the connection drops', async () => {
    const c = await login('early');
    // max_sessions_per_slice is 2: both taken by sessions that ask for nothing.
    c.bareSession();
    c.bareSession();
    await sleep(300);
    c.destroy();
    await c.closed;
    const d = await login('early');
    await waitFor(
      async () =>
        Promise.all([d.exec('true'), d.exec('true')]).then(
          () => true,
          () => false,
        ),
      5000,
      'both session slots to come back',
    );
  });

  it('a window-change before any pty-req makes no terminal', async () => {
    const c = await login('win');
    const ch = await c.exec('tty; echo "rc=$?"', { windowChangeFirst: true });
    let out = '';
    ch.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => ch.on('close', r));
    expect(out).toMatch(/not a tty/);
    expect(out).toMatch(/rc=1/);
    expect(out).not.toMatch(/\/dev\/pts/);
  });

  it('a client that stops reading while the sliver writes fast (with a huge window) leaves memory bounded and gRPC answering', async () => {
    const c = await login('flood');
    const f = join(dir, 'flood-pid');
    const ch = await c.exec(`echo $$ > ${f}; exec cat /dev/zero`);
    const pid = await pidIn(f);
    c.stopReading();
    for (let i = 0; i < 8; i++) c.proto.channelWindowAdjust(c.remoteId(ch), 0xffff_ffff - 1);
    const before = process.memoryUsage().rss;
    let peak = before;
    for (let t = 0; t < 20; t++) {
      await sleep(200);
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const t0 = Date.now();
    const info = await h.client().getNodeInfo({}, { chain: h.parties.ownerChain, deadlineMs: 5000 });
    expect(info.node?.urn).toBeTruthy();
    expect(Date.now() - t0).toBeLessThan(5000);
    // Unbounded, cat would have queued gigabytes by now.
    expect(peak - before).toBeLessThan(200 * 1024 * 1024);
    expect(alive(pid)).toBe(true);
    c.destroy();
    await waitFor(() => !alive(pid), 5000, 'cat to be killed with its connection');
  });

  it('a client that sends past its window is disconnected; memory stays bounded and its command is killed', async () => {
    const c = await login('over');
    const f = join(dir, 'over-pid');
    const ch = await c.exec(`echo $$ > ${f}; exec sleep 1000`);
    const pid = await pidIn(f);
    const before = process.memoryUsage().rss;
    // A size that does not divide the 2 MiB window: the last packet overshoots it (ssh2 drops only at exactly 0).
    const chunk = Buffer.alloc(10_000, 7);
    // 40 MB into a command that reads nothing, against a window of 2 MiB.
    for (let i = 0; i < 4096 && !c.socket.destroyed; i++) {
      c.proto.channelData(c.remoteId(ch), chunk);
      if (i % 256 === 255) await sleep(10);
    }
    expect(await within(c.closed, 5000)).not.toBe('timeout');
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024);
    await waitFor(() => !alive(pid), 5000, 'the command of the disconnected client to be killed');
  });
});

describe('ssh: bounds on channels per connection and logged-in connections', () => {
  let h: NmHarness;
  let server: SshServer;
  let address: string;
  const key = rawKey();
  const open: RawClient[] = [];
  const login = async (name: string): Promise<RawClient> => {
    const c = await rawLogin(address, name, key.privateKey);
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    const dir = tempDir('fedlab-ssh-bounds-');
    h = await startNodeManager({ driver: 'process' });
    for (const n of ['ba', 'bb']) {
      await createSliver(h, `${n}-1`, { sliceUrn: sliceOf(n), users: [{ urn: USER, sshKeys: [key.publicLine] }] });
    }
    const settings: SshSettings = {
      listenHost: '127.0.0.1',
      listenPort: 0,
      hostKeyFile: join(dir, 'host_key'),
      maxSessionsPerSlice: 50,
      idleTimeoutMs: 0,
      maxSessionMs: 0,
      maxUnauthenticated: 16,
      handshakeTimeoutMs: 10_000,
      maxForwardsPerSlice: 1,
      maxChannelsPerConnection: 3,
      maxConnectionsPerSlice: 2,
      maxConnections: 3,
    };
    server = new SshServer({
      settings,
      hostKey: loadOrCreateHostKey(settings.hostKeyFile),
      slivers: h.nm.slivers,
      clock: systemClock,
      log: silentLogger(),
    });
    address = await server.listen();
  }, 60_000);
  afterAll(async () => {
    for (const c of open) c.destroy();
    await server?.close();
    await h?.destroy();
  });

  it('refuses a channel beyond the bound of one connection, and takes one again once another closed', async () => {
    const c = await login('ba');
    const chans = await Promise.all([0, 1, 2].map(() => c.exec('sleep 30')));
    await expect(c.exec('echo fourth')).rejects.toThrow();
    chans[0]!.close();
    await waitFor(
      async () =>
        c.exec('echo again').then(
          () => true,
          () => false,
        ),
      5000,
      'a channel slot to come back',
    );
    c.destroy();
  });

  it('refuses a login beyond the bound per slice and beyond the bound of the node', async () => {
    await waitFor(() => server.sessionsOf(sliceOf('ba')) === 0, 5000, 'the last test’s sessions to end');
    const a1 = await login('ba');
    const a2 = await login('ba');
    await expect(login('ba')).rejects.toThrow();
    // The node allows 3 in all: one of bb, and no fourth even for a slice that has only one.
    const b1 = await login('bb');
    await expect(login('bb')).rejects.toThrow();
    // A slot comes back when a connection closes.
    a1.destroy();
    await a1.closed;
    await waitFor(
      async () =>
        login('bb').then(
          () => true,
          () => false,
        ),
      5000,
      'a login slot to come back',
    );
    for (const c of [a2, b1]) c.destroy();
  });
});
