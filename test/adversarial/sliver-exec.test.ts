// Exec as an attacker would use it (root only: runc, user namespaces, cgroups), each checked from the host: a
// command killed for its timeout, a cancel or too much output leaves nothing of its session running in the sliver
// (runc starts it in a session of its own, out of reach of a kill of runc); TIOCSTI with the upper 32 bits of the
// request set is refused like plain TIOCSTI; and an oci: sliver whose /root (Exec's working directory) is a link to
// /proc/self/fd/<n> does not reach the host's files through a descriptor leaked by runc (CVE-2024-21626).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cgroups } from '../../services/node-manager/drivers/cgroups.js';
import { instanceId } from '../../services/node-manager/index.js';
import {
  buildBusyboxImage,
  canContain,
  cannotContainReason,
  collectExec,
  containerCheck,
  createSliver,
  startNodeManager,
  tempDir,
  type NmHarness,
  umociThere,
} from '../helpers/node-manager.js';
import { waitFor } from '../helpers/servers.js';

if (!canContain) console.log(`skipping the sliver exec suite: ${cannotContainReason}`);
else if (!umociThere) console.log('skipping the CVE-2024-21626 case of the sliver exec suite: umoci is missing (apt-get install umoci)');

/**
 * A static x86_64 program of 136 bytes that makes one 32-bit system call (int 0x80: getuid, 24 on i386) and exits
 * with its result: 0 as root when 32-bit calls run, 255 (-EPERM) or a kill by SIGSYS when they are refused.
 */
function i386GetuidProgram(): Buffer {
  const code = [0xb8, 24, 0, 0, 0, 0xcd, 0x80, 0x89, 0xc7, 0xb8, 60, 0, 0, 0, 0x0f, 0x05];
  const b = Buffer.alloc(64 + 56 + code.length);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // x86_64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(0x400078n, 24); // entry: right after the headers
  b.writeBigUInt64LE(64n, 32); // program headers
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(1, 56);
  b.writeUInt32LE(1, 64); // PT_LOAD, read and execute, the whole file at 0x400000
  b.writeUInt32LE(5, 68);
  b.writeBigUInt64LE(0x400000n, 80);
  b.writeBigUInt64LE(0x400000n, 88);
  b.writeBigUInt64LE(BigInt(b.length), 96);
  b.writeBigUInt64LE(BigInt(b.length), 104);
  b.writeBigUInt64LE(0x1000n, 112);
  b.set(code, 120);
  return b;
}

/** Command lines of the processes in a sliver's cgroups, read on the host. */
async function sliverCommands(cgroups: Cgroups, name: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await cgroups.pids(name)) {
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

describe.skipIf(!canContain)('Exec cannot be turned against the host or outlive its kill', () => {
  let h: NmHarness;
  let cgroups: Cgroups;
  let root: string;
  let urn: string;
  const chain = () => ({ chain: h.parties.ownerChain });
  const exec = (u: string, argv: string[], timeoutMs = 20_000, signal?: AbortSignal) =>
    collectExec(h.client().exec({ sliverUrn: u, argv, env: {}, timeoutMs }, { ...chain(), ...(signal ? { signal } : {}) }));
  const left = async (pattern: RegExp) => (await sliverCommands(cgroups, 'ex-kill')).filter((c) => pattern.test(c));

  beforeAll(async () => {
    root = tempDir('fedlab-nm-exec-');
    const imagesDir = join(root, 'images');
    if (umociThere) buildBusyboxImage(imagesDir, 'bb');
    h = await startNodeManager({
      driver: 'container',
      config: { images_dir: imagesDir, policy: { images: ['host', 'oci:bb'] }, exec: { max_output_bytes: 65_536 } },
    });
    if (!containerCheck.ok) throw new Error('unreachable');
    cgroups = new Cgroups(containerCheck.layout, instanceId(h.dataDir));
    urn = (await createSliver(h, 'ex-kill', { sliceUrn: 'urn:fedlab:plc.test:slice:ex-kill' })).urn;
  });
  afterAll(async () => {
    await h?.destroy();
    rmSync(root, { recursive: true, force: true });
  });

  it('a timed-out `sleep 1000` (and what it started in its session) is gone from the sliver when the call ends', async () => {
    const out = await exec(urn, ['sh', '-c', 'sleep 1001 & exec sleep 1000'], 1000);
    expect(out.exit?.timedOut).toBe(true);
    expect(await left(/^sleep 100[01]$/)).toEqual([]);
    // The keeper is untouched, and the sliver still runs commands.
    expect((await exec(urn, ['sh', '-c', 'echo alive'])).stdout).toBe('alive\n');
  });

  it('a cancelled Exec and one killed for too much output leave no process behind', async () => {
    const abort = new AbortController();
    const pending = exec(urn, ['sh', '-c', 'sleep 1002 & sleep 1003'], 60_000, abort.signal).catch((e: ServiceError) => e);
    await waitFor(async () => (await left(/^sleep 1003$/)).length === 1, 10_000, 'the command to start');
    abort.abort();
    expect(((await pending) as ServiceError).code).toBe(Status.CANCELLED);
    await waitFor(async () => (await left(/^sleep 100[23]$/)).length === 0, 5_000, 'the cancelled command to be killed');

    const big = await exec(urn, ['sh', '-c', 'sleep 1004 & head -c 300000 /dev/zero; sleep 1005'], 20_000).catch((e: ServiceError) => e);
    expect((big as ServiceError).code).toBe(Status.RESOURCE_EXHAUSTED);
    await waitFor(async () => (await left(/^sleep 100[45]$/)).length === 0, 5_000, 'the command that wrote too much to be killed');
  });

  it('ioctl TIOCSTI with the upper 32 bits of the request set (0x100005412) is refused like TIOCSTI; other terminal requests work', async () => {
    // A session leader opens a new pseudo-terminal as its controlling terminal, then pushes a character into it.
    const perl = [
      // Closing the terminal's master at exit hangs it up: print at once, and ignore the SIGHUP that follows.
      'use POSIX; use Fcntl; $| = 1; $SIG{HUP} = "IGNORE";',
      'POSIX::setsid();',
      'sysopen(my $m, "/dev/ptmx", O_RDWR|O_NOCTTY) or die "ptmx $!";',
      'my $z = pack("i", 0); ioctl($m, 0x40045431, $z) or die "unlock $!";',
      'my $n = pack("I", 0); ioctl($m, 0x80045430, $n) or die "ptn $!";',
      'sysopen(my $s, "/dev/pts/" . unpack("I", $n), O_RDWR) or die "pts $!";',
      'my @r; for my $req (0x100005412, 0x5412) { my $c = "x"; my $r = syscall(16, fileno($s), $req, $c); push @r, $r < 0 ? $! + 0 : "ok"; }',
      'my $ws = "\\0" x 8; push @r, syscall(16, fileno($s), 0x5413, $ws) < 0 ? $! + 0 : "ok";',
      'print join(" ", @r), "\\n";',
    ].join(' ');
    const out = await exec(urn, ['perl', '-e', perl]);
    expect(out.stderr).toBe('');
    // EPERM (1) from the seccomp profile for both TIOCSTI forms; TIOCGWINSZ passes.
    expect(out.stdout).toBe('1 1 ok\n');
  });

  it('makes no 32-bit x86 system call (whose socketcall would pass around the AF_VSOCK rule)', async () => {
    const prog = i386GetuidProgram();
    const file = join(root, 'i386-getuid');
    writeFileSync(file, prog, { mode: 0o755 });
    const onHost = spawnSync(file);
    if (arch() !== 'x64' || onHost.status !== 0) {
      console.log(`skipping the 32-bit call check: this host does not run 32-bit x86 calls itself (${arch()}, status ${onHost.status})`);
      return;
    }
    const out = await collectExec(
      h.client().exec(
        {
          sliverUrn: urn,
          argv: ['sh', '-c', 'cat > /tmp/i386 && chmod +x /tmp/i386 && /tmp/i386; echo "exit $?"'],
          env: {},
          stdin: prog,
          timeoutMs: 10_000,
        },
        chain(),
      ),
    );
    expect(out.stdout).toMatch(/^exit (159|255)$/m);
  });

  it.skipIf(!umociThere)(
    'an oci: sliver whose /root links to /proc/self/fd/<n> does not reach the host through a leaked descriptor (CVE-2024-21626)',
    async () => {
      const s = await createSliver(h, 'ex-cve', {
        sliceUrn: 'urn:fedlab:plc.test:slice:ex-cve',
        resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0, image: 'oci:bb' },
      });
      const marker = `fedlab-cve-${process.pid}`;
      const up = '../'.repeat(10);
      for (let fd = 3; fd <= 12; fd++) {
        // The link is made by a command that starts in / (the internal API's cwd); the attack is a plain Exec, which starts in /root.
        const setup = await h.nm.slivers.exec(
          s.urn,
          {
            argv: ['sh', '-c', `rm -rf /root; busybox ln -s /proc/self/fd/${fd} /root`],
            env: {},
            cwd: '/',
            timeoutMs: 10_000,
            maxOutputBytes: 1 << 16,
          },
          new AbortController().signal,
        );
        let linked = '';
        for await (const c of setup) if (c.kind === 'exit') linked = JSON.stringify(c);
        expect(linked).toMatch(/"code":0/);
        const out = await exec(s.urn, ['sh', '-c', `echo pwned > ${up}tmp/${marker}; ls ${up} | head -50`], 10_000).catch(
          (e: ServiceError) => ({ stdout: '', stderr: e.message }),
        );
        expect(existsSync(`/tmp/${marker}`), `fd ${fd}`).toBe(false);
        // Nothing of the host's root (its data directory, the node manager's temporary files) shows.
        expect(out.stdout, `fd ${fd}`).not.toMatch(/fedlab-nm-exec-|\bboot\b|\bhome\b/);
      }
    },
  );
});
