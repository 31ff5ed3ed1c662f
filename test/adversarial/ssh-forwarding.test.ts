// `direct-tcpip` (ssh -L) into a container sliver, attacked: the reviewer's targets that read as options of
// the relay (`-f` reads or writes a host file as root, `-l…e` runs a program), host names (resolved in the
// host's view), zones and ports out of range are refused at the SSH layer and by the driver itself, and no
// relay starts; forwards are bounded per slice, and a relay is charged to the sliver (it runs in its cgroup).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../services/core/clock.js';
import { silentLogger } from '../../services/core/log.js';
import { loadOrCreateHostKey } from '../../services/node-manager/ssh/host-key.js';
import { SshServer } from '../../services/node-manager/ssh/server.js';
import type { SshSettings } from '../../services/node-manager/ssh/settings.js';
import { canContain, cannotContainReason, createSliver, startNodeManager, tempDir, type NmHarness } from '../helpers/node-manager.js';
import { waitFor } from '../helpers/servers.js';
import { rawKey, rawLogin, type RawClient } from './ssh-raw-client.js';

if (!canContain) console.log(`skipping the ssh forwarding attacks: ${cannotContainReason}`);

const SLIVER = 'urn:fedlab:plc.test:sliver:fw-1';

/** Host pids of `busybox nc` processes in the network namespace of the process `keeper` (relays, however started). */
function relays(keeper: number): number[] {
  const netns = (pid: number | string): string => {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      return '';
    }
  };
  const ours = netns(keeper);
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(join('/proc', d, 'cmdline'), 'utf8').split('\0');
      if (argv[1] === 'nc' && netns(d) === ours) out.push(Number(d));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Opens a direct-tcpip channel; resolves with it or with the refusal. */
function forward(c: RawClient, host: string, port: number): Promise<ClientChannel | Error> {
  return new Promise((resolve) => {
    try {
      c.client.forwardOut('127.0.0.1', 40_000, host, port, (err, ch) => resolve(err ?? ch));
    } catch (err) {
      resolve(err as Error);
    }
  });
}

describe.skipIf(!canContain)('ssh forwarding attacks (container driver)', () => {
  let h: NmHarness;
  let server: SshServer;
  let address: string;
  const key = rawKey();
  const open: RawClient[] = [];
  const keeper = (): number => h.nm.slivers.get(SLIVER)!.runtime!.pid;
  const login = async (): Promise<RawClient> => {
    const c = await rawLogin(address, 'fw', key.privateKey);
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    const dir = tempDir('fedlab-ssh-fw-');
    h = await startNodeManager({ driver: 'container' });
    await createSliver(h, 'fw-1', {
      sliceUrn: 'urn:fedlab:plc.test:slice:fw',
      users: [{ urn: 'urn:fedlab:plc.test:user:mallory', sshKeys: [key.publicLine] }],
      resources: { cpuMillis: 500, memMb: 128, diskMb: 128, pids: 64, bandwidthKbps: 0 },
    });
    const settings: SshSettings = {
      listenHost: '127.0.0.1',
      listenPort: 0,
      hostKeyFile: join(dir, 'host_key'),
      maxSessionsPerSlice: 8,
      idleTimeoutMs: 0,
      maxSessionMs: 0,
      maxUnauthenticated: 16,
      handshakeTimeoutMs: 10_000,
      maxForwardsPerSlice: 2,
      maxChannelsPerConnection: 16,
      maxConnectionsPerSlice: 8,
      maxConnections: 8,
    };
    server = new SshServer({
      settings,
      hostKey: loadOrCreateHostKey(settings.hostKeyFile),
      slivers: h.nm.slivers,
      clock: systemClock,
      log: silentLogger(),
    });
    address = await server.listen();
    // A server on the sliver's own loopback.
    const c = await login();
    const ch = await c.exec(
      'mkdir -p /root/www && echo inside > /root/www/index.html && busybox httpd -p 127.0.0.1:8081 -h /root/www && echo up',
    );
    let out = '';
    ch.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => ch.on('close', r));
    expect(out).toBe('up\n');
  }, 90_000);
  afterAll(async () => {
    for (const c of open) c.destroy();
    await server?.close();
    await h?.destroy();
  });

  it('refuses targets that are options of the relay, names, zones and bad ports; no relay starts', async () => {
    const c = await login();
    const before = relays(keeper());
    const bad: [string, number][] = [
      ['-f', 22],
      ['-le', 22],
      ['-lp', 4444],
      ['-e/bin/sh', 80],
      ['127.0.0.1 -e sh', 80],
      ['localhost', 8081],
      ['example.com', 80],
      ['::1%lo', 8081],
      ['127.0.0.1', 0],
      ['127.0.0.1', 65_536],
    ];
    for (const [host, port] of bad) {
      const r = await forward(c, host, port);
      expect(r, `${host}:${port}`).toBeInstanceOf(Error);
    }
    expect(relays(keeper()).filter((p) => !before.includes(p))).toEqual([]);
    expect(server.forwardsOf('urn:fedlab:plc.test:slice:fw')).toBe(0);
  });

  it('the driver itself refuses them too, without starting anything', async () => {
    for (const [host, port] of [
      ['-f', 22],
      ['-le', 22],
      ['localhost', 8081],
      ['127.0.0.1', 0],
    ] as const) {
      await expect(h.nm.slivers.connect(SLIVER, host, port)).rejects.toThrow(/IP address and a port/);
    }
    expect(relays(keeper())).toEqual([]);
  });

  it('bounds forwards per slice; a relay runs in the sliver’s cgroup; a slot comes back when one closes', async () => {
    const c = await login();
    const first = await forward(c, '127.0.0.1', 8081);
    const second = await forward(c, '::ffff:127.0.0.1', 8081);
    expect(first).not.toBeInstanceOf(Error);
    expect(second).not.toBeInstanceOf(Error);
    expect(await forward(c, '127.0.0.1', 8081)).toBeInstanceOf(Error);
    // It works: an HTTP answer from inside the sliver.
    const ch = first as ClientChannel;
    let answer = '';
    ch.on('data', (d: Buffer) => (answer += d.toString()));
    ch.write('GET / HTTP/1.0\r\n\r\n');
    await waitFor(() => answer.includes('inside'), 10_000, 'the answer through the forward');
    const name = h.nm.slivers.get(SLIVER)!.name;
    const running = relays(keeper());
    expect(running.length).toBeGreaterThanOrEqual(1);
    for (const pid of running) expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(name);
    (second as ClientChannel).close();
    await waitFor(() => server.forwardsOf('urn:fedlab:plc.test:slice:fw') < 2, 5000, 'a forward slot to come back');
    expect(await forward(c, '127.0.0.1', 8081)).not.toBeInstanceOf(Error);
  });
});
