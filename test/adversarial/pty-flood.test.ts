// Flooding a terminal whose program is in raw mode and does not read (`ssh -tt node 'stty raw -echo;
// sleep 1000' </dev/zero`) must not stop the node manager: node-pty's own write blocked its whole event loop
// once the kernel's buffer was full. Against a real node manager: while the program is flooded, the event loop
// keeps turning, GetNodeInfo and a second terminal answer within a second, the input waiting stays bounded
// (the caller is told to wait), and once the program reads, or is killed, the terminal ends cleanly. Through
// the terminal code (process driver, and the container driver with runc when root), and through SSH sessions.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ClientChannel } from 'ssh2';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecChunk } from '../../services/node-manager/drivers/driver.js';
import { TerminalControl } from '../../services/node-manager/drivers/terminal-control.js';
import { canContain, cannotContainReason, createSliver, startNodeManager, tempDir, type NmHarness } from '../helpers/node-manager.js';
import { makeClientKey, opensshCheck, runTool, writeClientConfig, type ClientKey } from '../helpers/openssh.js';
import { waitFor } from '../helpers/servers.js';
import { rawKey, rawLogin, within, type RawClient } from './ssh-raw-client.js';

if (!canContain) console.log(`skipping the container flood test: ${cannotContainReason}`);

const USER = 'urn:fedlab:plc.test:user:flooder';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A raw-mode program that reads nothing until it gets SIGUSR1, then reads 2 MB and ends. */
const READ_ON_USR1 =
  'trap "go=1" USR1; stty raw -echo; echo ready; while [ -z "$go" ]; do sleep 0.1; done; head -c 2000000 >/dev/null; echo read-all';

/**
 * Kills this test process when its event loop stops for `ms`: the bug froze the loop that runs the test
 * too, so without this a regression would hang the run instead of failing it.
 */
function stallWatchdog(ms: number): () => void {
  const script = `let t; const arm = () => { clearTimeout(t); t = setTimeout(() => {
    process.stderr.write('pty-flood: the event loop stalled for ${ms} ms; killing the test process\\n');
    try { process.kill(${process.pid}, 'SIGKILL'); } catch {}
    process.exit(1); }, ${ms}); };
    arm(); process.stdin.on('data', arm); process.stdin.on('end', () => process.exit(0));`;
  const dog = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'ignore', 'inherit'] });
  dog.stdin.on('error', () => undefined);
  const beat = setInterval(() => dog.stdin.write('.'), 100);
  return () => {
    clearInterval(beat);
    dog.stdin.end();
  };
}

/** Records the longest gap between turns of the event loop (10 ms ticks) until stopped. */
function loopGaps(): { stop: () => number } {
  let last = Date.now();
  let worst = 0;
  const iv = setInterval(() => {
    const now = Date.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 10);
  return {
    stop: () => {
      clearInterval(iv);
      return Math.max(worst, Date.now() - last);
    },
  };
}

/** ms that `f` took. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = Date.now();
  await f();
  return Date.now() - t0;
}

/** A terminal run through the sliver manager, its output collected. */
async function openTerminal(h: NmHarness, urn: string, script: string) {
  const control = new TerminalControl();
  const chunks = await h.nm.slivers.exec(
    urn,
    { argv: ['sh', '-c', script], env: {}, timeoutMs: 60_000, maxOutputBytes: 1 << 20, tty: { rows: 24, cols: 80, control } },
    new AbortController().signal,
  );
  let out = '';
  const exit = (async () => {
    let last: Extract<ExecChunk, { kind: 'exit' }> | undefined;
    for await (const c of chunks) {
      if (c.kind === 'exit') last = c;
      else out += c.data.toString();
    }
    return last;
  })();
  return { control, exit, output: () => out };
}

/** Whether a terminal's exit says SIGKILL (runc reports it as status 137). */
const killed = (e: ExecChunk | undefined): boolean => e?.kind === 'exit' && (e.signal === 'SIGKILL' || e.code === 137);

/** Writes 32 KiB blocks until the control channel says to wait; returns the bytes written. */
function fillUntilFull(control: TerminalControl): number {
  const block = Buffer.alloc(32 * 1024, 97);
  let n = 0;
  for (let i = 0; i < 1000; i++) {
    n += block.length;
    if (!control.write(block)) return n;
  }
  throw new Error('the terminal never asked its caller to wait');
}

function floodTests(driver: 'process' | 'container', name: string) {
  let h: NmHarness;
  let urn: string;
  let stopDog: () => void;

  beforeAll(async () => {
    stopDog = stallWatchdog(20_000);
    h = await startNodeManager({ driver });
    urn = (await createSliver(h, name, { sliceUrn: `urn:fedlab:plc.test:slice:${name}` })).urn;
  }, 60_000);
  afterAll(async () => {
    await h?.destroy();
    stopDog?.();
  });

  it('a flooded program that does not read leaves the node answering; once it reads, the input goes through', async () => {
    const t = await openTerminal(h, urn, READ_ON_USR1);
    await waitFor(() => t.output().includes('ready'), 10_000, 'the program to be in raw mode');
    const gaps = loopGaps();
    // The kernel takes a few kilobytes, the writer's bound some more: then the caller is told to wait.
    const written = fillUntilFull(t.control);
    expect(written).toBeLessThan(512 * 1024);
    let drained = false;
    t.control.onceDrained(() => (drained = true));
    await sleep(300);
    const info = await timed(() => h.client().getNodeInfo({}, { chain: h.parties.ownerChain, deadlineMs: 5000 }));
    expect(info).toBeLessThan(1000);
    const second = await openTerminal(h, urn, 'echo second');
    const secondMs = await timed(async () => expect(await second.exit).toMatchObject({ code: 0 }));
    expect(second.output()).toMatch(/second/);
    expect(secondMs).toBeLessThan(1000);
    expect(drained).toBe(false);
    expect(gaps.stop()).toBeLessThan(1000);

    // It reads now: what waited goes through, the caller is told to go on, and writes what is left.
    t.control.signal('USR1');
    let sent = written;
    while (sent < 2_000_000) {
      await new Promise<void>((r) => t.control.onceDrained(r));
      if (t.control.closed) break;
      const block = Buffer.alloc(Math.min(32 * 1024, 2_000_000 - sent), 98);
      sent += block.length;
      t.control.write(block);
    }
    expect(drained).toBe(true);
    expect(await t.exit).toMatchObject({ kind: 'exit', code: 0, timedOut: false });
    expect(t.output()).toMatch(/read-all/);
    expect(t.control.closed).toBe(true);
  });

  it('a flooded program that is killed ends its terminal, and a caller waiting to write goes on', async () => {
    const t = await openTerminal(h, urn, 'stty raw -echo; echo ready; exec sleep 1000');
    await waitFor(() => t.output().includes('ready'), 10_000, 'the program to be in raw mode');
    fillUntilFull(t.control);
    const released = new Promise<void>((r) => t.control.onceDrained(r));
    t.control.signal('KILL');
    expect(killed(await t.exit)).toBe(true);
    await released;
    expect(t.control.closed).toBe(true);
    // Dropped, not queued: the terminal is gone.
    expect(t.control.write(Buffer.alloc(1 << 20))).toBe(true);
  });

  it('a caller that goes on writing after it was told to wait is refused, not buffered', async () => {
    const t = await openTerminal(h, urn, 'stty raw -echo; echo ready; exec sleep 1000');
    await waitFor(() => t.output().includes('ready'), 10_000, 'the program to be in raw mode');
    fillUntilFull(t.control);
    const block = Buffer.alloc(64 * 1024);
    expect(() => {
      for (let i = 0; i < 64; i++) t.control.write(block);
    }).toThrow(/typed while the terminal's command was not reading/);
    t.control.signal('KILL');
    expect(killed(await t.exit)).toBe(true);
  });
}

describe('a flooded terminal, process driver', () => floodTests('process', 'flood-proc'));
describe.skipIf(!canContain)('a flooded terminal in a runc sliver', () => floodTests('container', 'flood-runc'));

describe('ssh with a pty, flooding input into a raw-mode program that does not read (process driver)', () => {
  let h: NmHarness;
  let dir: string;
  let cfg: string;
  let login: string;
  let address: string;
  let stopDog: () => void;
  const key = rawKey();
  const open: RawClient[] = [];

  beforeAll(async () => {
    stopDog = stallWatchdog(20_000);
    dir = tempDir('fedlab-pty-flood-');
    const users = [{ urn: USER, sshKeys: [key.publicLine] }];
    let openssh: ClientKey | undefined;
    if (opensshCheck.ok) {
      openssh = makeClientKey(dir, 'flooder');
      users.push({ urn: `${USER}-openssh`, sshKeys: [openssh.publicLine] });
    }
    h = await startNodeManager({ driver: 'process', config: { ssh: { listen: '127.0.0.1:0' } } });
    login = (await createSliver(h, 'sshflood-1', { sliceUrn: 'urn:fedlab:plc.test:slice:sshflood', users })).ssh!.username;
    const node = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!;
    address = node.ssh!.address;
    if (openssh) cfg = writeClientConfig(dir, { address, hostKey: node.ssh!.hostKey, identity: openssh.file });
  }, 60_000);
  afterAll(async () => {
    for (const c of open) c.destroy();
    await h?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    stopDog?.();
  });

  /**
   * `command` on a 24x80 terminal, its input flooded with zeros as fast as the channel's window lets
   * (what `ssh -tt node command </dev/zero` does; OpenSSH itself asks for a 0x0 terminal when its
   * input is not one, which this server refuses).
   */
  const flood = async (command: string) => {
    const c = await rawLogin(address, login, key.privateKey);
    open.push(c);
    const ch = await new Promise<ClientChannel>((res, rej) =>
      c.client.exec(command, { pty: { rows: 24, cols: 80, term: 'xterm' } }, (err, chan) => (err ? rej(err) : res(chan))),
    );
    let out = '';
    ch.on('data', (d: Buffer) => (out += d.toString('latin1')));
    ch.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
    const exit = new Promise<{ code?: number; signal?: string }>((r) =>
      ch.on('exit', (code: number | null, signal?: string) => r(code === null ? { signal: signal ?? '' } : { code })),
    );
    const zeros = Buffer.alloc(32 * 1024);
    let stopped = false;
    const pump = (): void => {
      while (!stopped && ch.writable && ch.write(zeros));
      if (!stopped && ch.writable) ch.once('drain', pump);
    };
    pump();
    return { client: c, exit, output: () => out, stop: () => (stopped = true) };
  };

  it('the node answers while it floods; the session ends cleanly when the program reads, or is killed', async () => {
    const go = join(dir, 'go');
    const pidFile = join(dir, 'sleeper');
    const reader = await flood(
      `stty raw -echo; echo ready; while [ ! -e ${go} ]; do sleep 0.1; done; head -c 2000000 >/dev/null; echo read-all`,
    );
    const sleeper = await flood(`stty raw -echo; echo $$ > ${pidFile}; echo ready; exec sleep 1000`);
    await waitFor(() => reader.output().includes('ready') && sleeper.output().includes('ready'), 15_000, 'both programs in raw mode');
    const before = process.memoryUsage().rss;
    const gaps = loopGaps();
    let peak = before;
    for (let i = 0; i < 10; i++) {
      await sleep(200);
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const info = await timed(() => h.client().getNodeInfo({}, { chain: h.parties.ownerChain, deadlineMs: 5000 }));
    expect(info).toBeLessThan(1000);
    // A second session on a connection of its own: key exchange, login, a command.
    const other = await rawLogin(address, login, key.privateKey);
    open.push(other);
    const secondMs = await timed(async () => {
      const ch = await other.exec('echo second');
      let s = '';
      ch.on('data', (d: Buffer) => (s += d.toString()));
      await new Promise((r) => ch.on('close', r));
      expect(s).toBe('second\n');
    });
    expect(secondMs).toBeLessThan(1000);
    if (opensshCheck.ok) {
      const r = await runTool('ssh', ['-F', cfg, `${login}@node`, 'echo third'], { timeoutMs: 10_000 });
      expect(r.stdout).toBe('third\n');
    }
    expect(gaps.stop()).toBeLessThan(1000);
    // Both floods still connected (their input waits in their windows; neither was dropped as a flooder), and
    // what waits is bounded: unbounded, their zeros would have queued hundreds of megabytes by now.
    expect(reader.client.socket.destroyed).toBe(false);
    expect(sleeper.client.socket.destroyed).toBe(false);
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);

    writeFileSync(go, '');
    process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
    expect(await within(sleeper.exit, 10_000)).toEqual({ signal: 'SIGKILL' });
    await waitFor(() => reader.output().includes('read-all'), 20_000, 'the reader to read its 2 MB');
    reader.stop();
    expect(await within(reader.exit, 10_000)).toEqual({ code: 0 });
  });
});
