// The sliver as a boundary, tried as an attacker would (root only: runc, user namespaces, cgroups). From inside a
// container sliver, as its root, every attempt below fails, and the host is checked from outside to be unchanged:
// the PATH and LD_PRELOAD Exec tricks that gave root on the host before the runc driver (regressions of the
// reproduction), writing outside its own files, mount/umount/pivot_root, mknod of a block device, kernel modules,
// the kernel keyring, bpf, perf events, the clock, new namespaces, ptrace/kill//proc/<pid>/root of other slivers'
// and the host's processes, the node manager's key and data directory, its own cgroup limits, rlimits, a fork bomb,
// a memory hog, and the node manager's gRPC port or another sliver's loopback.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { arch } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cgroups } from '../../services/node-manager/drivers/cgroups.js';
import { instanceId } from '../../services/node-manager/index.js';
import { DEFAULT_CAPABILITIES } from '../../services/node-manager/runtime/oci-spec.js';
import {
  canContain,
  cannotContainReason,
  collectExec,
  containerCheck,
  createSliver,
  mountsUnder,
  runcList,
  startNodeManager,
  type NmHarness,
} from '../helpers/node-manager.js';

if (!canContain) console.log(`skipping the sliver escape suite: ${cannotContainReason}`);

/** x86_64 system call numbers the suite calls directly through perl's syscall(). */
const SYS = {
  ptrace: 101,
  pivot_root: 155,
  mount: 165,
  init_module: 175,
  clock_settime: 227,
  add_key: 248,
  keyctl: 250,
  unshare: 272,
  perf_event_open: 298,
  finit_module: 313,
  bpf: 321,
} as const;
const EPERM = 1;
const ESRCH = 3;

/** Capability numbers (linux/capability.h) of the default set. */
const CAP_BITS: Record<string, number> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_RAW: 13,
  CAP_SYS_CHROOT: 18,
  CAP_MKNOD: 27,
  CAP_AUDIT_WRITE: 29,
  CAP_SETFCAP: 31,
};

const hostMounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).length;

describe.skipIf(!canContain)('a sliver cannot get out', () => {
  let h: NmHarness;
  let a: string;
  let b: string;
  const tag = `fedlab-escape-${process.pid}`;
  const run = async (urn: string, script: string, env: Record<string, string> = {}, argv?: string[]) =>
    collectExec(
      h.client().exec({ sliverUrn: urn, argv: argv ?? ['sh', '-c', script], env, timeoutMs: 20_000 }, { chain: h.parties.ownerChain }),
    );
  /** errno of a raw system call made by perl inside the sliver (0: it succeeded). */
  const errnoOf = async (urn: string, call: keyof typeof SYS, args = '0, 0, 0, 0, 0', strings = '') => {
    // perl hands strings to syscall() by pointer and wants them in variables ($s1, $s2, ...).
    const out = await run(urn, `perl -e '${strings} $r = syscall(${SYS[call]}, ${args}); print $r < 0 ? ($! + 0) : "ok"'`);
    expect(out.stdout, `${call}: ${out.stderr}`).toMatch(/^(\d+|ok)$/);
    return out.stdout === 'ok' ? 0 : Number(out.stdout);
  };
  const keeperPid = (urn: string) => h.nm.slivers.get(urn)?.runtime?.pid as number;

  beforeAll(async () => {
    h = await startNodeManager({
      driver: 'container',
      config: { capacity: { cpu_millis: 4000, mem_mb: 4096, disk_mb: 8192, pids: 4096, slivers: 100 } },
    });
    a = (await createSliver(h, 'esc-a', { sliceUrn: 'urn:fedlab:plc.test:slice:esc-a' })).urn;
    b = (await createSliver(h, 'esc-b', { sliceUrn: 'urn:fedlab:plc.test:slice:esc-b' })).urn;
  });
  afterAll(async () => {
    await h?.destroy();
  });

  it('the reproduction: Exec with PATH at a sliver-written nsenter runs it inside the sliver, never on the host', async () => {
    const fake = `#!/bin/sh\necho owned > /${tag}; /usr/bin/id -u > /root/who; /usr/bin/readlink /proc/self/ns/pid >> /root/who\n`;
    await run(a, `printf '%s' "$1" > /root/nsenter && chmod +x /root/nsenter`, {}, [
      'sh',
      '-c',
      `printf '%s' "$1" > /root/nsenter && chmod +x /root/nsenter`,
      'x',
      fake,
    ]);
    const out = await run(a, '', { PATH: '/root' }, ['nsenter', '-t', '1', '-m', '-p', '--', 'id']);
    expect(out.exit?.status).toBeDefined();
    // It ran (inside): as the sliver's root, in the sliver's PID namespace, unable to write /.
    const who = (await run(a, 'cat /root/who')).stdout.split('\n');
    expect(who[0]).toBe('0');
    expect(who[1]).toMatch(/^pid:\[\d+\]$/);
    expect(who[1]).not.toBe(`pid:[${statSync('/proc/self/ns/pid').ino}]`);
    expect(existsSync(`/${tag}`)).toBe(false);
    // The real nsenter inside cannot join anything either (setns is refused).
    const real = await run(a, 'nsenter -t 1 -m -p -- id 2>&1; echo "exit $?"');
    expect(real.stdout).toMatch(/exit [1-9]/);
  });

  it("the reproduction: LD_PRELOAD and PATH reach only the sliver's process, never runc or anything else on the host", async () => {
    const env = { LD_PRELOAD: '/root/evil.so', LD_LIBRARY_PATH: '/root', PATH: '/root' };
    const pending = run(a, '', env, ['/bin/sleep', '2']);
    let runcEnv: string | undefined;
    let sliverEnv: string | undefined;
    for (let i = 0; i < 100 && (!runcEnv || !sliverEnv); i++) {
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        let cmd: string;
        try {
          cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          continue;
        }
        const environ = () => readFileSync(`/proc/${pid}/environ`, 'utf8');
        try {
          if (cmd.includes(join(h.dataDir, 'runc')) && cmd.includes('\0exec\0')) runcEnv = environ();
          else if (cmd === '/bin/sleep\x002\0') sliverEnv = environ();
        } catch {
          // Gone meanwhile.
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await pending;
    expect(runcEnv).toBeDefined();
    expect(runcEnv).not.toMatch(/LD_PRELOAD|LD_LIBRARY_PATH|\/root/);
    expect(runcEnv?.split('\0').filter(Boolean).sort()).toEqual(['LANG=C', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(sliverEnv).toMatch(/LD_PRELOAD=\/root\/evil\.so/);
  });

  it("cannot write outside its own files: host system directories, its read-only root, another sliver's files", async () => {
    await run(b, 'echo b-secret > /root/b.txt');
    const out = await run(
      a,
      `for f in /usr/bin/${tag} /etc/${tag} /${tag} /.fedlab/init; do echo x > $f && echo "wrote $f"; done; cat /root/b.txt; echo done`,
    );
    expect(out.stdout).toBe('done\n');
    for (const f of [`/usr/bin/${tag}`, `/etc/${tag}`, `/${tag}`]) expect(existsSync(f)).toBe(false);
    expect(readFileSync(join(h.dataDir, 'slivers', 'esc-b', 'data', 'root', 'b.txt'), 'utf8')).toBe('b-secret\n');
  });

  it('cannot mount, unmount or pivot_root, and the host mount table stays as it was', async () => {
    const before = hostMounts();
    const out = await run(
      a,
      'mount -t tmpfs none /root 2>&1; echo "m $?"; mkdir -p /root/u; mount --bind /usr /root/u 2>&1; echo "b $?"; umount /usr 2>&1; echo "u $?"; mkdir -p /root/old; pivot_root /root /root/old 2>&1; echo "p $?"',
    );
    expect(out.stdout).toMatch(/^m [1-9]/m);
    expect(out.stdout).toMatch(/^b [1-9]/m);
    expect(out.stdout).toMatch(/^u [1-9]/m);
    expect(out.stdout).toMatch(/^p [1-9]/m);
    if (arch() === 'x64') {
      expect(await errnoOf(a, 'mount', '$s1, $s2, $s3, 0, 0', '$s1 = "none"; $s2 = "/root"; $s3 = "tmpfs";')).toBe(EPERM);
      expect(await errnoOf(a, 'pivot_root', '$s1, $s2', '$s1 = "/root"; $s2 = "/root/old";')).toBe(EPERM);
    }
    expect(hostMounts()).toBe(before);
    expect(mountsUnder(h.dataDir)).toEqual([]);
  });

  it('cannot make a block device, load a kernel module, use the keyring, bpf, perf events, the clock or new namespaces', async () => {
    const mk = await run(a, 'mknod /root/sda b 8 0 2>&1; echo "exit $?"; mknod /root/mem c 1 1 && head -c 1 /root/mem; echo " mem $?"');
    expect(mk.stdout).toMatch(/exit [1-9]/);
    expect(mk.stdout).toMatch(/mem [1-9]/);
    expect(existsSync(join(h.dataDir, 'slivers', 'esc-a', 'data', 'root', 'sda'))).toBe(false);
    const modulesNow = () => (existsSync('/proc/modules') ? readFileSync('/proc/modules', 'utf8') : '');
    const modules = modulesNow();
    const clock = Date.now();
    if (arch() === 'x64') {
      for (const call of ['init_module', 'finit_module', 'keyctl', 'add_key', 'bpf', 'perf_event_open', 'clock_settime'] as const) {
        expect(await errnoOf(a, call), call).toBe(EPERM);
      }
      expect(await errnoOf(a, 'unshare', String(0x10000000))).toBe(EPERM);
    }
    const ns = await run(a, 'unshare -U -r id 2>&1; echo "exit $?"');
    expect(ns.stdout).toMatch(/exit [1-9]/);
    expect(modulesNow()).toBe(modules);
    expect(Math.abs(Date.now() - clock)).toBeLessThan(60_000);
    // The profile is in force, with the default capabilities only, and no_new_privs.
    const status = (await run(a, 'cat /proc/self/status')).stdout;
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    const mask = DEFAULT_CAPABILITIES.reduce((m, c) => m | (1n << BigInt(CAP_BITS[c] as number)), 0n);
    expect(BigInt(`0x${/^CapBnd:\s+([0-9a-f]+)$/m.exec(status)?.[1]}`)).toBe(mask);
  });

  it("cannot reach another sliver's or the host's processes: kill, ptrace, /proc/<pid>/root", async () => {
    const bKeeper = keeperPid(b);
    const targets = [bKeeper, process.pid, 1];
    const out = await run(
      a,
      targets.map((p) => `kill -9 ${p} 2>/dev/null; echo "k$?"; ls /proc/${p}/root/ 2>/dev/null | head -1; echo "r$?"`).join('; '),
    );
    // pid 1 inside is a's own keeper: kill -9 of PID 1 from inside its own namespace is ignored by the kernel.
    expect(existsSync(`/proc/${bKeeper}`)).toBe(true);
    expect(existsSync(`/proc/${process.pid}`)).toBe(true);
    expect(out.stdout).not.toMatch(/\bhome\b|\bboot\b/);
    if (arch() === 'x64') {
      expect(await errnoOf(a, 'ptrace', `16, ${bKeeper}, 0, 0`)).toBe(ESRCH);
      expect(await errnoOf(a, 'ptrace', `16, ${process.pid}, 0, 0`)).toBe(ESRCH);
    }
    // B still runs: its keeper is the same process.
    expect(h.nm.slivers.get(b)?.runtime?.pid).toBe(bKeeper);
    expect((await run(b, 'echo alive')).stdout).toBe('alive\n');
  });

  it("cannot read the node manager's key, config or data directory", async () => {
    const key = h.config.tls.key;
    const out = await run(a, `cat ${key} 2>&1; ls ${h.dataDir} 2>&1; cat ${h.configFile} 2>&1; echo end`);
    expect(out.stdout).not.toMatch(/PRIVATE KEY|slivers|"role"/);
    expect(out.stdout).toMatch(/No such file/);
  });

  it('cannot write its own cgroup limits, raise a hard rlimit, or write kernel settings; masked files read as nothing', async () => {
    const name = 'esc-a';
    const out = await run(
      a,
      'for f in $(find /sys/fs/cgroup -name memory.limit_in_bytes -o -name pids.max -o -name cpu.cfs_quota_us -o -name memory.max 2>/dev/null); do echo -1 > $f 2>/dev/null && echo "wrote $f"; done; ' +
        'ulimit -Hn 100000 2>/dev/null; echo "hard $(ulimit -Hn)"; echo 1 > /proc/sys/kernel/sysrq 2>/dev/null; echo "sysrq $?"; ' +
        'echo "kcore $(head -c 16 /proc/kcore 2>/dev/null | wc -c) firmware $(ls /sys/firmware 2>/dev/null | wc -l)"',
    );
    expect(out.stdout).not.toMatch(/wrote/);
    expect(out.stdout).toMatch(/hard 4096/);
    expect(out.stdout).toMatch(/sysrq [1-9]/);
    expect(out.stdout).toMatch(/kcore 0 firmware 0/);
    if (!containerCheck.ok) return;
    const cg = new Cgroups(containerCheck.layout, instanceId(h.dataDir));
    for (const d of cg.dirs(name)) {
      const f = join(d, 'memory.limit_in_bytes');
      if (existsSync(f)) expect(Number(readFileSync(f, 'utf8'))).toBe(64 * 1024 * 1024);
      const p = join(d, 'pids.max');
      if (existsSync(p)) expect(readFileSync(p, 'utf8').trim()).toBe('64');
    }
  });

  it('a fork bomb is bounded by the pids limit and the node keeps answering; a memory hog dies alone', async () => {
    const bomb = (
      await createSliver(h, 'esc-bomb', {
        sliceUrn: 'urn:fedlab:plc.test:slice:bomb',
        resources: { cpuMillis: 200, memMb: 64, diskMb: 64, pids: 32, bandwidthKbps: 0 },
      })
    ).urn;
    const out = collectExec(
      h
        .client()
        .exec(
          { sliverUrn: bomb, argv: ['sh', '-c', 'b() { b | b & }; b; sleep 3'], env: {}, timeoutMs: 4_000 },
          { chain: h.parties.ownerChain },
        ),
    );
    await new Promise((r) => setTimeout(r, 1500));
    const t = Date.now();
    const info = await h.client().getNodeInfo({}, { chain: h.parties.ownerChain });
    expect(Date.now() - t).toBeLessThan(3000);
    expect(info.node?.sliverCount).toBeGreaterThanOrEqual(3);
    if (containerCheck.ok) {
      const stats = await new Cgroups(containerCheck.layout, instanceId(h.dataDir)).stats('esc-bomb');
      expect(stats.pids).toBeLessThanOrEqual(32);
    }
    await out;
    await h.client().deleteSliver({ sliverUrn: bomb }, { chain: h.parties.ownerChain });
    // The hog is killed at its memory limit; on a busy machine reclaim before the kill can take a while, so
    // its call gets more time than the others (what is tested is that it dies alone, not how fast).
    const hog = await collectExec(
      h
        .client()
        .exec(
          { sliverUrn: a, argv: ['sh', '-c', 'head -c 300000000 /dev/zero | tail; echo "tail exit $?"'], env: {}, timeoutMs: 90_000 },
          { chain: h.parties.ownerChain, deadlineMs: 100_000 },
        ),
    );
    expect(hog.stdout).toMatch(/tail exit 137/);
    expect((await run(b, 'echo still')).stdout).toBe('still\n');
  }, 150_000);

  it("cannot reach the node manager's gRPC port or another sliver's loopback", async () => {
    const port = h.service.port;
    const listen = collectExec(
      h
        .client()
        .exec(
          { sliverUrn: b, argv: ['busybox', 'nc', '-l', '-p', '7777', '-w', '3'], env: {}, timeoutMs: 3_000 },
          { chain: h.parties.ownerChain },
        ),
    );
    await new Promise((r) => setTimeout(r, 300));
    const out = await run(
      a,
      `bash -c 'echo hi > /dev/tcp/127.0.0.1/${port}' 2>&1; echo "nm $?"; bash -c 'echo hi > /dev/tcp/127.0.0.1/7777' 2>&1; echo "b $?"; ls /sys/class/net`,
    );
    expect(out.stdout).toMatch(/nm [1-9]/);
    expect(out.stdout).toMatch(/b [1-9]/);
    expect(out.stdout).toMatch(/^lo$/m);
    expect(out.stdout).not.toMatch(/eth|ens|veth/);
    await listen;
    expect(
      runcList(h.dataDir)
        .map((c) => c.id)
        .sort(),
    ).toEqual(['esc-a', 'esc-b']);
  });
});
