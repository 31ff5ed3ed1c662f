// The host's link hub lock (host-lock.ts) and what holds it: a kernel flock shared across processes, let go when its
// holder is killed with SIGKILL, with a deadline on taking it; a link wiring and a hub sweep each wait for it (so no
// process's sweep can delete a hub between another's make and its port), and a teardown removes only the host-wide
// hubs its own node managers' ports were on. The hub tests need root and `ip`; skipped with the reason otherwise.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostHubsOf, removeHostHubs } from '../../cli/up/host-hubs.js';
import { DeadlineExceededError } from '../../services/core/errors.js';
import { childrenOf } from '../../services/node-manager/drivers/procfs.js';
import { HostLock } from '../../services/node-manager/network/host-lock.js';
import { parseCidr } from '../../services/node-manager/network/ipv4.js';
import { HOST_SCOPE, linkAlias, linkBridgeName } from '../../services/node-manager/network/link-names.js';
import { TcCommands } from '../../services/node-manager/network/link-shaping.js';
import { LinkWirer } from '../../services/node-manager/network/links.js';
import { NetCommands } from '../../services/node-manager/network/net-command.js';
import { netnsName } from '../../services/node-manager/network/net-names.js';
import type { NetworkPlan } from '../../services/node-manager/network/network-plan.js';

const dir = mkdtempSync(join(tmpdir(), 'fedlab-hub-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Processes whose command line names `path` (flock children left holding it, and a holder naming it). */
function holdersOf(path: string): { pid: number; argv0: string; cmd: string }[] {
  const out: { pid: number; argv0: string; cmd: string }[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const cmd = argv.join(' ');
      if (cmd.includes(path)) out.push({ pid: Number(pid), argv0: argv[0] ?? '', cmd });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

const flocks = (path: string) => holdersOf(path).filter((h) => h.argv0.endsWith('flock'));

const settled = async (p: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
  ]);

describe('the host lock', () => {
  it('runs its holders one at a time, also within one process', async () => {
    const lock = new HostLock(join(dir, 'order.lock'));
    const events: string[] = [];
    const hold = (name: string) =>
      lock.run(async () => {
        events.push(`${name} in`);
        await new Promise((r) => setTimeout(r, 150));
        events.push(`${name} out`);
      });
    await Promise.all([hold('a'), hold('b'), hold('c')]);
    // Whatever the order, nobody came in while another was in.
    for (let i = 0; i < events.length; i += 2) expect(events[i + 1]).toBe(events[i]?.replace(' in', ' out'));
    expect(flocks(join(dir, 'order.lock'))).toEqual([]);
  });

  it('makes another process wait, with a deadline, and is let go when its holder is killed with SIGKILL', async () => {
    const path = join(dir, 'kill.lock');
    const module = resolve('services/node-manager/network/host-lock.ts');
    const script = `import { HostLock } from ${JSON.stringify(module)};
      setInterval(() => undefined, 60_000);
      await new HostLock(${JSON.stringify(path)}).run(async () => { console.log('holding'); await new Promise(() => undefined); });`;
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((ok, fail) => {
        let out = '';
        holder.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('holding')) ok();
        });
        holder.once('exit', (code) => fail(new Error(`the holder exited (${String(code)}) before holding the lock`)));
      });
      // Held elsewhere: taking it fails at its deadline, having run nothing, and leaves no flock behind.
      let ran = false;
      const started = Date.now();
      const err = await new HostLock(path, 1_000)
        .run(async () => {
          ran = true;
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeadlineExceededError);
      expect((err as Error).message).toMatch(/was not free within 1000 ms/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(ran).toBe(false);
      // The holder's flock, and no other left by the attempt.
      expect(flocks(path)).toHaveLength(1);

      // The holder dies without letting go: the kernel does it for it.
      const waiting = new HostLock(path, 10_000).run(async () => 'got it');
      await new Promise((r) => setTimeout(r, 300));
      expect(await settled(waiting, 0)).toBe(false);
      holder.kill('SIGKILL');
      expect(await waiting).toBe('got it');
    } finally {
      holder.kill('SIGKILL');
    }
    const end = Date.now() + 5_000;
    while (flocks(path).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(flocks(path)).toEqual([]);
  });

  it('fails an operation whose lock was lost while it ran (its holder killed from outside), and the lock is free after', async () => {
    const path = join(dir, 'lost.lock');
    const lock = new HostLock(path);
    const err = await lock
      .run(async () => {
        const [flock] = flocks(path);
        // What holds the lock with flock: its child. Killed, flock exits too and the kernel lets the lock go.
        for (const child of await childrenOf(flock!.pid)) process.kill(child.pid, 'SIGKILL');
        const end = Date.now() + 5_000;
        while (flocks(path).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        return 'done';
      })
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/lost while held/);
    expect(await new HostLock(path, 2_000).run(async () => 'again')).toBe('again');
  });
});

const root = process.getuid?.() === 0;
let ipOk = false;
try {
  execFileSync('ip', ['-V'], { stdio: 'ignore' });
  ipOk = true;
} catch {
  ipOk = false;
}
const skipReason = !root ? 'needs root' : !ipOk ? 'needs iproute2 (ip)' : '';
if (skipReason) console.log(`link-hub-lock: the hub tests are skipped — ${skipReason}`);

const VNI = 7_700_201;
const OTHER_VNI = 7_700_202;
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
const exists = (dev: string): boolean => {
  try {
    ip('link', 'show', 'dev', dev);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(skipReason !== '')('link hubs under the lock', () => {
  const instance = 'nmhlk';
  const name = 'sl1';
  const urn = `urn:fedlab:${instance}.test:sliver:${name}`;
  const netns = netnsName(instance, name);
  const lock = new HostLock(join(dir, 'hubs.lock'));
  const plan: NetworkPlan = {
    subnet: parseCidr('10.89.0.0/24'),
    gateway: '10.89.0.1',
    bridge: 'flbrhl',
    uplink: 'lo',
    nodeAddress: '192.0.2.10',
    firstPort: 20000,
    lastPort: 20999,
    portsPerSliver: 10,
    capacity: 100,
    underlayAddress: '10.254.79.1',
    hostUnderlays: ['10.254.79.1', '10.254.79.2'],
  };
  const make = (records: ConstructorParameters<typeof LinkWirer>[3]) =>
    new LinkWirer(instance, 'site-hlk', plan, records, false, new TcCommands(), new NetCommands(), lock);
  const interfaces = make({ get: () => undefined, list: () => [] }).check([
    {
      link: 'hl0',
      name: 'eth1',
      address: '10.202.0.1/24',
      bandwidthKbps: 0,
      delayMs: 0,
      lossPercent: 0,
      wiring: { mac: '02:ab:00:00:00:01', vni: VNI, remoteUnderlays: ['10.254.79.2'], applied: [] },
    },
  ]);
  const record = { name, urn, interfaces };
  const wirer = make({ get: (u) => (u === urn ? record : undefined), list: () => [record] });
  const hub = linkBridgeName(HOST_SCOPE, VNI);
  const otherHub = linkBridgeName(HOST_SCOPE, OTHER_VNI);

  afterAll(async () => {
    await wirer.unwire({ name, netns, run: new NetCommands() }).catch(() => undefined);
    // Also on failure; what the test removed itself is already gone.
    for (const args of [...[hub, otherHub].map((dev) => ['link', 'del', dev]), ['netns', 'del', netns]]) {
      try {
        execFileSync('ip', args, { stdio: 'ignore' });
      } catch {
        // Not there.
      }
    }
  });

  it('waits for the lock to make and join a hub, and a sweep waits for it to remove one; a teardown removes only its own', async () => {
    ip('netns', 'add', netns);
    const ctx = {
      sliver: { name, urn, sliceUrn: 'urn:fedlab:hl.test:slice:s' },
      netns,
      lease: {},
      plan: {},
      run: new NetCommands(),
    } as unknown as Parameters<LinkWirer['wire']>[0];

    let release!: () => void;
    const held = lock.run(() => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 100));
    const wiring = wirer.wire(ctx);
    // While another holds the lock, no hub is made and no port put on one.
    expect(await settled(wiring, 500)).toBe(false);
    expect(exists(hub)).toBe(false);
    release();
    await held;
    await wiring;
    expect(exists(hub)).toBe(true);
    expect(ip('-n', netns, 'link', 'show', 'eth1')).toContain('02:ab:00:00:00:01');

    // The port's instance is ours: the teardown's snapshot finds the hub it is on, and nothing of another instance's.
    expect(await hostHubsOf([instance])).toEqual(new Set([VNI]));
    expect(await hostHubsOf(['nmhlk-other'])).toEqual(new Set());

    // An idle hub (another federation's, left behind): a sweep waits for the lock before removing it.
    ip('link', 'add', otherHub, 'type', 'bridge');
    ip('link', 'set', otherHub, 'alias', linkAlias(HOST_SCOPE, { kind: 'bridge', vni: OTHER_VNI }));
    const held2 = lock.run(() => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 100));
    const sweeping = wirer.sweep();
    expect(await settled(sweeping, 500)).toBe(false);
    expect(exists(otherHub)).toBe(true);
    release();
    await held2;
    await sweeping;
    expect(exists(otherHub)).toBe(false);
    // Ours has a port: it stays.
    expect(exists(hub)).toBe(true);

    // A teardown that took our port away removes our hub and names nothing else.
    ip('netns', 'del', netns);
    for (let i = 0; i < 50 && ip('-j', 'link', 'show', 'master', hub).trim() !== '[]'; i++) await new Promise((r) => setTimeout(r, 20));
    ip('link', 'add', otherHub, 'type', 'bridge');
    ip('link', 'set', otherHub, 'alias', linkAlias(HOST_SCOPE, { kind: 'bridge', vni: OTHER_VNI }));
    // One that cannot take the lock in time removes nothing and says so in its report.
    const held3 = lock.run(() => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 100));
    const busy = await removeHostHubs(new Set([VNI]), new HostLock(lock.path, 1000));
    expect(busy).toHaveLength(1);
    expect(busy[0]).toMatch(/^host link hubs: could not sweep \(the link hub lock \S+ was not free within 1000 ms\)$/);
    expect(exists(hub)).toBe(true);
    release();
    await held3;
    expect(await removeHostHubs(new Set([VNI]))).toEqual([`host link hub ${hub}`]);
    expect(exists(hub)).toBe(false);
  });
});
