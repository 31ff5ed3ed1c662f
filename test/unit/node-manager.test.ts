// Node manager units: cgroup layout detection, /proc parsing, capacity arithmetic, owner policy, the
// bounded exec stream, config, and the sliver manager over a real LevelDB with a scripted driver
// (admission under 50 concurrent creates, idempotency, per-slice caps, exclusivity, the reaper,
// reconciliation after a crash).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlreadyExistsError, PermissionDeniedError, ResourceExhaustedError } from '../../services/core/errors.js';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { describeShortfalls, shortfalls } from '../../services/node-manager/capacity.js';
import { nmConfigSchema } from '../../services/node-manager/config.js';
import { detectCgroupLayout } from '../../services/node-manager/drivers/cgroups.js';
import type { DriverSliver, RuntimeRef } from '../../services/node-manager/drivers/driver.js';
import { streamProcess } from '../../services/node-manager/drivers/exec-stream.js';
import { parseEnviron, parseStat } from '../../services/node-manager/drivers/procfs.js';
import { SimulatedDriver } from '../../services/node-manager/drivers/simulated.js';
import { TerminalControl, type TerminalInput } from '../../services/node-manager/drivers/terminal-control.js';
import { KeyedMutex, Mutex } from '../../services/core/mutex.js';
import { assertSafeName } from '../../services/node-manager/names.js';
import { OwnerPolicy } from '../../services/node-manager/policy.js';
import { ZERO_COMMITTED, type Committed } from '../../services/node-manager/records.js';
import { SliverManager, type CreateSpec } from '../../services/node-manager/sliver-manager.js';

describe('cgroup layout detection', () => {
  const v1Mounts = [
    '30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '31 25 0:27 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
    '32 25 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '33 25 0:29 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
    '34 25 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  ].join('\n');
  const v1Procs = ['8:pids:/', '4:memory:/process_api/abc', '2:cpuacct:/', '1:cpu:/', '0::/'].join('\n');

  it('finds v1 controllers, each under our own cgroup, when the unified hierarchy offers none', () => {
    const layout = detectCgroupLayout(v1Mounts, v1Procs, () => '');
    expect(layout).toEqual({
      version: 1,
      own: {
        cpu: '/sys/fs/cgroup/cpu',
        cpuacct: '/sys/fs/cgroup/cpuacct',
        memory: '/sys/fs/cgroup/memory/process_api/abc',
        pids: '/sys/fs/cgroup/pids',
      },
      // Every hierarchy we are in, where runc makes a sliver's cgroup too (the unified one included).
      hierarchies: [
        '/sys/fs/cgroup/pids',
        '/sys/fs/cgroup/memory/process_api/abc',
        '/sys/fs/cgroup/cpuacct',
        '/sys/fs/cgroup/cpu',
        '/sys/fs/cgroup/unified',
      ],
    });
  });

  it('prefers v2 when it offers cpu, memory and pids', () => {
    const layout = detectCgroupLayout(
      '40 1 0:35 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate',
      '0::/system.slice/fedlab.service',
      () => 'cpuset cpu io memory pids',
    );
    expect(layout).toEqual({ version: 2, own: '/sys/fs/cgroup/system.slice/fedlab.service' });
  });

  it('co-mounted cpu,cpuacct and a mount root that is not / (cgroup namespaces, bind mounts)', () => {
    const mounts = [
      '1 1 0:1 /docker/x /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
      '2 1 0:2 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
      '3 1 0:3 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids',
    ].join('\n');
    const procs = ['3:pids:/p', '2:memory:/docker/x/m', '1:cpu,cpuacct:/docker/x'].join('\n');
    const layout = detectCgroupLayout(mounts, procs, () => undefined);
    expect(layout).toEqual({
      version: 1,
      own: {
        cpu: '/sys/fs/cgroup/cpu,cpuacct',
        cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
        memory: '/sys/fs/cgroup/memory/m',
        pids: '/sys/fs/cgroup/pids/p',
      },
      hierarchies: ['/sys/fs/cgroup/pids/p', '/sys/fs/cgroup/memory/m', '/sys/fs/cgroup/cpu,cpuacct'],
    });
  });

  it('explains what is missing', () => {
    const layout = detectCgroupLayout('30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory', '4:memory:/', () => undefined);
    expect(layout).toEqual({ reason: 'no cgroup v2 hierarchy and cgroup v1 lacks cpu, cpuacct, pids' });
  });
});

describe('/proc parsing and names', () => {
  it('reads stat even when the command name holds spaces and parentheses', () => {
    const text = '4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615';
    expect(parseStat(text)).toMatchObject({ pid: 4242, comm: 'my (odd) prog', state: 'S', ppid: 1, pgrp: 4242, startTicks: 987654 });
  });

  it('reads environment blocks', () => {
    const env = parseEnviron(Buffer.from('A=1\0FEDLAB_SLIVER=s1\0EMPTY=\0'));
    expect(env.get('FEDLAB_SLIVER')).toBe('s1');
    expect(env.get('EMPTY')).toBe('');
  });

  it('accepts URN name parts only', () => {
    expect(() => assertSafeName('web-1.a_b')).not.toThrow();
    for (const bad of ['../x', 'a/b', 'a;b', '$(id)', 'a b', '', '.hidden', 'A', 'x'.repeat(64), 'a\nb']) {
      expect(() => assertSafeName(bad), bad).toThrow(/not allowed/);
    }
  });
});

describe('capacity arithmetic', () => {
  const r = { cpuMillis: 500, memMb: 512, diskMb: 100, pids: 64, bandwidthKbps: 0 };
  it('lists every amount that does not fit, with what is left', () => {
    const used: Committed = { cpuMillis: 3600, memMb: 3800, diskMb: 0, pids: 0, slivers: 9 };
    const s = shortfalls({ cpuMillis: 4000, memMb: 4096, diskMb: 1000, pids: 1000, slivers: 10 }, used, r);
    expect(s.map((x) => x.resource)).toEqual(['cpu_millis', 'mem_mb']);
    expect(describeShortfalls(s)).toBe('cpu_millis: asked 500, 400 of 4000 left; mem_mb: asked 512, 296 of 4096 left');
  });
  it('an absent limit is no limit; the sliver count counts', () => {
    expect(shortfalls({ slivers: 1 }, { ...ZERO_COMMITTED, slivers: 1 }, r).map((x) => x.resource)).toEqual(['slivers']);
    expect(shortfalls({}, { cpuMillis: 1e9, memMb: 1e9, diskMb: 1e9, pids: 1e9, slivers: 1e9 }, r)).toEqual([]);
  });
});

describe('owner policy', () => {
  const policy = new OwnerPolicy({
    slice_authority_domains: ['plc.test'],
    providers: ['urn:fedlab:acme.test:sp:*'],
    max_lifetime_s: 3600,
    per_slice: { slivers: 3, mem_mb: 1024 },
  });
  it('refuses other slice authority domains and providers, naming the rule', () => {
    expect(() => policy.checkParties('urn:fedlab:plc.test:authority:sa', 'urn:fedlab:acme.test:sp:a')).not.toThrow();
    expect(() => policy.checkParties('urn:fedlab:plc.prince:authority:sa', 'urn:fedlab:acme.test:sp:a')).toThrow(/slice_authority_domains/);
    expect(() => policy.checkParties('urn:fedlab:plc.test:authority:sa', 'urn:fedlab:acme.testx:sp:a')).toThrow(PermissionDeniedError);
  });
  it('per-slice caps: the stricter of config and the chain', () => {
    expect(policy.perSlice({ slivers: 5, mem_mb: 512, cpu_millis: 100 })).toEqual({ slivers: 3, memMb: 512, cpuMillis: 100 });
  });
  it('latest expiry: the tightest of policy, chain expiry and ttl_s, with its rule', () => {
    expect(policy.latestExpiry(0, {}, 10_000_000)).toEqual({ at: 3_600_000, rule: 'owner policy max_lifetime_s (3600 s)' });
    expect(policy.latestExpiry(0, { ttl_s: 60 }, 10_000_000).rule).toMatch(/ttl_s \(60 s\)/);
    expect(policy.latestExpiry(0, {}, 1000).rule).toMatch(/chain expires/);
  });
});

describe('mutexes', () => {
  it('run in arrival order, and one failure does not block the next', async () => {
    const m = new Mutex();
    const order: number[] = [];
    const slow = (n: number, ms: number) => () => new Promise<number>((r) => setTimeout(() => (order.push(n), r(n)), ms));
    const a = m.run(slow(1, 20));
    const b = m.run(async () => {
      throw new Error('x');
    });
    const c = m.run(slow(3, 1));
    await expect(b).rejects.toThrow('x');
    expect(await Promise.all([a, c])).toEqual([1, 3]);
    expect(order).toEqual([1, 3]);
    const k = new KeyedMutex();
    await Promise.all([k.run('a', slow(4, 5)), k.run('b', slow(5, 1))]);
    expect(order.slice(2)).toEqual([5, 4]);
    await new Promise((r) => setTimeout(r, 0));
    expect(k.size).toBe(0);
  });
});

describe('exec stream', () => {
  const base = { env: { PATH: process.env.PATH }, timeoutMs: 5000, maxOutputBytes: 1 << 20, signal: new AbortController().signal };
  async function run(cmd: string, args: string[], o: Partial<typeof base> & { stdin?: Buffer } = {}) {
    let out = '';
    let err = '';
    let exit: unknown;
    for await (const c of streamProcess(cmd, args, { ...base, ...o })) {
      if (c.kind === 'stdout') out += c.data.toString();
      else if (c.kind === 'stderr') err += c.data.toString();
      else exit = c;
    }
    return { out, err, exit: exit as { code?: number; signal?: string; timedOut: boolean } };
  }
  it('streams stdout and stderr, passes stdin, and ends with the exit code', async () => {
    const r = await run('sh', ['-c', 'cat; echo oops >&2; exit 7'], { stdin: Buffer.from('hello\n') });
    expect(r).toMatchObject({ out: 'hello\n', err: 'oops\n', exit: { code: 7, timedOut: false } });
  });
  it('kills on timeout and says so', async () => {
    const r = await run('sleep', ['10'], { timeoutMs: 100 });
    expect(r.exit).toMatchObject({ signal: 'SIGKILL', timedOut: true });
  });
  it('fails with RESOURCE_EXHAUSTED when the output passes the cap', async () => {
    await expect(run('sh', ['-c', 'yes'], { maxOutputBytes: 100_000 })).rejects.toThrow(ResourceExhaustedError);
  });
  it('a missing program exits 127', async () => {
    const r = await run('no-such-program-fedlab', []);
    expect(r.exit).toMatchObject({ code: 127 });
    expect(r.err).toMatch(/command not found/);
  });
  it('does not wait for background children that keep the pipes open', async () => {
    const started = Date.now();
    const r = await run('sh', ['-c', 'sleep 5 & echo done']);
    expect(r.out).toBe('done\n');
    expect(Date.now() - started).toBeLessThan(4000);
  });
});

describe('terminal control channel', () => {
  it('keeps what comes before the driver attaches, then forwards in order, and drops what comes after the end', () => {
    const c = new TerminalControl();
    c.write('ls\r');
    c.resize(30, 100);
    const got: TerminalInput[] = [];
    const detach = c.attach((i) => got.push(i));
    c.signal('INT');
    expect(got).toEqual([
      { kind: 'data', data: Buffer.from('ls\r') },
      { kind: 'resize', rows: 30, cols: 100 },
      { kind: 'signal', signal: 'SIGINT' },
    ]);
    expect(() => c.attach(() => undefined)).toThrow(/serves one command/);
    detach();
    c.write('late');
    expect(got).toHaveLength(3);
    expect(c.closed).toBe(true);
  });

  it('refuses bad sizes and signals before anything is sent', () => {
    const c = new TerminalControl();
    for (const [r, k] of [
      [0, 80],
      [24, 5000],
      [1.5, 80],
    ] as const)
      expect(() => c.resize(r, k)).toThrow(/must be a whole number from 1 to 4096/);
    expect(() => c.signal('SIGSYS')).toThrow(/cannot be sent/);
    expect(() => c.write(Buffer.alloc(2 * 1024 * 1024))).toThrow(/typed before the terminal's command started/);
  });
});

describe('config', () => {
  const base = {
    role: 'nm',
    urn: 'urn:fedlab:plc.test:node:n1',
    listen: { port: 0 },
    tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' },
    trust_bundle: 'b.json',
    data_dir: 'd',
    owner: { certificate: 'owner.pem' },
  };
  it('fills defaults: auto driver, planetlab, 8-week maximum lifetime', () => {
    const c = nmConfigSchema.parse(base);
    expect(c.driver).toBe('auto');
    expect(c.style).toBe('planetlab');
    expect(c.policy.max_lifetime_s).toBe(8 * 7 * 86_400);
    expect(c.exec.max_output_bytes).toBe(16 * 1024 * 1024);
  });
  it('refuses unknown keys, a non-node URN, and absurd capacity', () => {
    expect(nmConfigSchema.safeParse({ ...base, nope: 1 }).success).toBe(false);
    expect(nmConfigSchema.safeParse({ ...base, urn: 'urn:fedlab:plc.test:authority:ma' }).success).toBe(false);
    expect(nmConfigSchema.safeParse({ ...base, capacity: { cpu_millis: -1 } }).success).toBe(false);
    expect(nmConfigSchema.safeParse({ ...base, driver: 'docker' }).success).toBe(false);
  });
});

/** The simulated driver with scripted liveness, start failures and leftovers, to drive the manager's logic. */
class ScriptedDriver extends SimulatedDriver {
  alive = new Set<string>();
  failStart = new Set<string>();
  leftovers = new Set<string>();
  destroyed: string[] = [];
  starts = 0;
  override async start(s: DriverSliver): Promise<RuntimeRef> {
    if (this.failStart.has(s.name)) throw new Error('no keeper for you');
    this.starts++;
    this.alive.add(s.name);
    return { pid: 1000 + this.starts, startTicks: 1 };
  }
  override async isRunning(s: DriverSliver): Promise<boolean> {
    return this.alive.has(s.name);
  }
  override async stop(s: DriverSliver): Promise<void> {
    this.alive.delete(s.name);
  }
  override async destroy(name: string): Promise<void> {
    this.alive.delete(name);
    this.leftovers.delete(name);
    this.destroyed.push(name);
  }
  override async listArtifacts(): Promise<string[]> {
    return [...new Set([...this.alive, ...this.leftovers])];
  }
}

describe('sliver manager over LevelDB', () => {
  let dir: string;
  let store: Store;
  let now: number;
  let driver: ScriptedDriver;
  const clock = { now: () => now };
  const capacity = { cpuMillis: 2000, memMb: 2048, diskMb: 10_000, pids: 10_000, slivers: 100 };
  const manager = (s = store, d = driver) =>
    new SliverManager({
      store: s,
      driver: d,
      clock,
      log: silentLogger(),
      capacity,
      exclusiveNode: false,
      idRanges: { base: 300_000, count: 64 },
    });
  const spec = (name: string, o: Partial<CreateSpec> = {}): CreateSpec => ({
    requestId: `r-${name}`,
    fingerprint: `f-${name}`,
    caller: 'urn:fedlab:plc.test:authority:ma',
    urn: `urn:fedlab:plc.test:sliver:${name}`,
    name,
    sliceUrn: 'urn:fedlab:plc.test:slice:s1',
    sliceAuthorityUrn: 'urn:fedlab:plc.test:authority:sa',
    sliceAuthorityJwk: { kty: 'OKP', crv: 'Ed25519', x: 'abc' },
    providerUrn: 'urn:fedlab:plc.test:sp:acme',
    clientId: '',
    resources: { cpuMillis: 100, memMb: 100, diskMb: 10, pids: 10, bandwidthKbps: 0 },
    exclusive: false,
    interfaces: [],
    allocation: 'provisioned',
    start: true,
    expiresAt: now + 60_000,
    sliceLimits: {},
    ...o,
  });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-nm-unit-'));
    store = await Store.open(dir);
    now = 1_000_000;
    driver = new ScriptedDriver();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('50 concurrent creates never over-commit: exactly what fits is admitted, the rest hear what is left', async () => {
    const m = manager();
    await m.load();
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => m.create(spec(`c${i}`, { sliceUrn: `urn:fedlab:plc.test:slice:s${i}` }))),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    // 2000 cpu_millis / 100 each: 20 fit.
    expect(ok).toHaveLength(20);
    expect(refused).toHaveLength(30);
    for (const r of refused) {
      expect(r.reason).toBeInstanceOf(ResourceExhaustedError);
      expect((r.reason as Error).message).toMatch(/cpu_millis: asked 100, 0 of 2000 left/);
    }
    expect(m.committed).toEqual({ cpuMillis: 2000, memMb: 2000, diskMb: 200, pids: 200, slivers: 20 });
    expect(await store.table('meta').get('committed')).toEqual(m.committed);
    expect(await store.table('slivers').count()).toBe(20);
    expect(m.list().every((r) => r.operational === 'ready')).toBe(true);
  });

  it('is idempotent on the request id and on the sliver URN; a reused id with other arguments is ALREADY_EXISTS', async () => {
    const m = manager();
    await m.load();
    const a = await m.create(spec('a'));
    const again = await m.create(spec('a'));
    expect(again.urn).toBe(a.urn);
    expect(driver.starts).toBe(1);
    expect(m.count).toBe(1);
    await expect(m.create(spec('a', { fingerprint: 'other' }))).rejects.toThrow(AlreadyExistsError);
    await expect(m.create(spec('a', { requestId: 'r-new', fingerprint: 'other' }))).rejects.toThrow(/already exists with other parameters/);
    // Same arguments under a new request id: the existing sliver.
    expect((await m.create(spec('a', { requestId: 'r-new2' }))).urn).toBe(a.urn);
  });

  it('allocates, then promotes to provisioned with a new request id', async () => {
    const m = manager();
    await m.load();
    const held = await m.create(spec('p', { allocation: 'allocated', start: false }));
    expect(held).toMatchObject({ allocation: 'allocated', operational: 'pending' });
    expect(driver.starts).toBe(0);
    const prov = await m.create(spec('p', { requestId: 'r-p2', fingerprint: 'f-p2', allocation: 'provisioned', start: true }));
    expect(prov).toMatchObject({ allocation: 'provisioned', operational: 'ready', requestId: 'r-p2' });
    expect(m.committed.slivers).toBe(1);
    // The provision's request id is the sliver's now (a retry is the same sliver), also after a restart;
    // the allocation's was handed over with it.
    const retried = spec('p', { requestId: 'r-p2', fingerprint: 'f-p2', allocation: 'provisioned', start: true });
    expect((await m.create(retried)).urn).toBe(prov.urn);
    await expect(m.create(spec('p', { allocation: 'allocated', start: false }))).rejects.toThrow(AlreadyExistsError);
    const after = manager();
    await after.load();
    expect((await after.create(retried)).urn).toBe(prov.urn);
    expect(after.count).toBe(1);
    // Deleted, the request that made it does not make it again (the delete's tombstone), and nothing is made.
    await after.delete(prov.urn);
    await expect(after.create(retried)).rejects.toThrow(/superseded by a delete/);
    expect(after.count).toBe(0);
  });

  it('per-slice caps are PERMISSION_DENIED naming the rule; exclusive slices keep others out', async () => {
    const m = manager();
    await m.load();
    await m.create(spec('x1', { sliceLimits: { slivers: 1 } }));
    await expect(m.create(spec('x2', { sliceLimits: { slivers: 1 } }))).rejects.toThrow(
      /owner policy per_slice: .*slivers: asked 1, 0 of 1 left/,
    );
    await expect(m.create(spec('e2', { sliceUrn: 'urn:fedlab:plc.test:slice:s3', exclusive: true }))).rejects.toThrow(
      /cannot be given exclusively/,
    );
    await m.delete(spec('x1').urn);
    await m.create(spec('e3', { sliceUrn: 'urn:fedlab:plc.test:slice:s3', exclusive: true }));
    await expect(m.create(spec('e4'))).rejects.toThrow(/held exclusively by slice urn:fedlab:plc.test:slice:s3/);
  });

  it('a slice keeps one authority', async () => {
    const m = manager();
    await m.load();
    await m.create(spec('k1'));
    await expect(m.create(spec('k2', { sliceAuthorityJwk: { kty: 'OKP', crv: 'Ed25519', x: 'other' } }))).rejects.toThrow(
      /a slice has one authority/,
    );
  });

  it('a create that cannot start leaves nothing: no record, capacity back', async () => {
    const m = manager();
    await m.load();
    driver.failStart.add('bad');
    await expect(m.create(spec('bad'))).rejects.toThrow(/no keeper/);
    expect(m.get(spec('bad').urn)).toBeUndefined();
    expect(m.committed).toEqual(ZERO_COMMITTED);
    expect(driver.destroyed).toContain('bad');
    expect(await store.table('requests').count()).toBe(0);
  });

  it('the reaper removes expired slivers (also allocations whose hold ended) and frees their capacity', async () => {
    const m = manager();
    await m.load();
    await m.create(spec('old', { expiresAt: now + 1000 }));
    await m.create(spec('hold', { allocation: 'allocated', start: false, expiresAt: now + 500 }));
    await m.create(spec('young', { expiresAt: now + 100_000 }));
    expect(await m.reapExpired()).toBe(0);
    now += 2000;
    expect(await m.reapExpired()).toBe(2);
    expect(m.list().map((r) => r.name)).toEqual(['young']);
    expect(m.committed.slivers).toBe(1);
    expect(driver.destroyed).toEqual(expect.arrayContaining(['old', 'hold']));
  });

  it('notices a READY sliver whose keeper died: restarts it, or fails it with the reason', async () => {
    const m = manager();
    await m.load();
    await m.create(spec('l1'));
    await m.create(spec('l2'));
    expect(await m.checkLiveness()).toEqual([]);
    driver.alive.delete('l1');
    driver.alive.delete('l2');
    driver.failStart.add('l2');
    expect(await m.checkLiveness()).toEqual([spec('l1').urn]);
    expect(m.get(spec('l1').urn)).toMatchObject({ operational: 'ready' });
    expect(m.get(spec('l2').urn)).toMatchObject({
      operational: 'failed',
      error: expect.stringMatching(/stopped running unexpectedly and restarting it failed: no keeper/),
    });
  });

  it('reconciles after a crash: adopts live slivers, restarts dead ones or fails them with the reason, finishes deletes, removes orphans', async () => {
    const m = manager();
    await m.load();
    for (const n of ['live', 'dead', 'broken', 'stopped', 'gone']) await m.create(spec(n));
    await m.control(spec('stopped').urn, 'stop');
    // What a kill -9 leaves: a delete half-done, keepers that died, and a runtime nobody has a record of.
    const slivers = store.table<Record<string, unknown>>('slivers');
    const gone = (await slivers.get(spec('gone').urn)) as Record<string, unknown>;
    await slivers.put(spec('gone').urn, { ...gone, deleting: true });
    await store.table('meta').put('committed', { cpuMillis: 1, memMb: 1, diskMb: 1, pids: 1, slivers: 1 });
    driver.alive.delete('dead');
    driver.alive.delete('broken');
    driver.failStart.add('broken');
    driver.leftovers.add('orphan');
    driver.alive.add('stopped');

    const after = manager();
    await after.load();
    const report = await after.reconcile();
    expect(report.adopted).toEqual([spec('live').urn]);
    expect(report.restarted).toEqual([spec('dead').urn]);
    expect(report.failed).toEqual([spec('broken').urn]);
    expect(report.reaped).toEqual([spec('gone').urn]);
    expect(report.orphans).toEqual(['orphan']);
    expect(after.get(spec('broken').urn)).toMatchObject({
      operational: 'failed',
      error: expect.stringMatching(/restarting it failed: no keeper/),
    });
    expect(after.get(spec('stopped').urn)).toMatchObject({ operational: 'stopped' });
    expect(driver.alive.has('stopped')).toBe(false);
    expect(after.committed).toEqual({ cpuMillis: 400, memMb: 400, diskMb: 40, pids: 40, slivers: 4 });
    expect(await store.table('meta').get('committed')).toEqual(after.committed);
  });
});
