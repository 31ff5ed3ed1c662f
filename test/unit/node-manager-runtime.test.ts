// The container runtime's pure parts: the seccomp profile (the data file loads, is consistent and refuses what
// the issue lists), the OCI spec of a sliver (namespaces, id mapping, capabilities, devices, limits, masked
// paths), id range allocation, image names and runc's version line.
import { describe, expect, it } from 'vitest';
import { ResourceExhaustedError } from '../../services/core/errors.js';
import { checkSliverIds, hostIdClashes } from '../../services/node-manager/runtime/host-ids.js';
import { allocateRange, IDS_PER_SLIVER, rangeOf, rangesOverlap } from '../../services/node-manager/runtime/id-ranges.js';
import { imageName, parseImageName } from '../../services/node-manager/runtime/images.js';
import { ALLOWED_DEVICES, DEFAULT_CAPABILITIES, ociProcess, sliverSpec } from '../../services/node-manager/runtime/oci-spec.js';
import { judgeRuncVersion, parseRuncVersion } from '../../services/node-manager/runtime/runc.js';
import { loadSeccompProfile, toOciSeccomp } from '../../services/node-manager/runtime/seccomp.js';

describe('the seccomp profile', () => {
  const profile = loadSeccompProfile();
  const oci = toOciSeccomp(profile, 'x86_64');
  const allowed = new Set(oci.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));

  it('loads from its data file and refuses by default', () => {
    expect(oci.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(oci.defaultErrnoRet).toBe(1);
    expect(oci.architectures).toContain('SCMP_ARCH_X86_64');
    expect(allowed.size).toBeGreaterThan(250);
    for (const c of ['read', 'write', 'openat', 'execve', 'mmap', 'futex', 'epoll_wait', 'socket'].filter((c) => c !== 'socket'))
      expect(allowed.has(c), c).toBe(true);
  });

  it('refuses mounts, the keyring, bpf, perf, modules, clocks, namespaces and file handles', () => {
    for (const c of [
      'mount',
      'umount2',
      'pivot_root',
      'keyctl',
      'add_key',
      'request_key',
      'bpf',
      'perf_event_open',
      'init_module',
      'finit_module',
      'delete_module',
      'kexec_load',
      'clock_settime',
      'settimeofday',
      'adjtimex',
      'unshare',
      'setns',
      'open_by_handle_at',
      'userfaultfd',
      'io_uring_setup',
      'reboot',
      'swapon',
    ]) {
      expect(allowed.has(c), c).toBe(false);
      expect(profile.deny[c], c).toBeTruthy();
    }
  });

  it('allows clone only without namespace flags, socket without AF_VSOCK, and answers clone3 with ENOSYS', () => {
    const clone = oci.syscalls.find((r) => r.names.includes('clone'));
    expect(clone?.args).toEqual([{ index: 0, value: 0x7e020080, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
    expect(oci.syscalls.find((r) => r.names.includes('socket'))?.args?.[0]).toMatchObject({ op: 'SCMP_CMP_NE', value: 40 });
    expect(oci.syscalls.find((r) => r.names.includes('clone3'))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });

  it('refuses TIOCSTI whatever the upper 32 bits of the request hold, and every 32-bit ABI and socketcall', () => {
    const rules = oci.syscalls.filter((r) => r.names.includes('ioctl'));
    expect(rules).toHaveLength(32);
    // As the kernel's filter does: a call passes when any rule's masked compare holds.
    const passes = (request: bigint) =>
      rules.some(
        (r) =>
          r.args?.length === 1 &&
          r.args[0]?.op === 'SCMP_CMP_MASKED_EQ' &&
          (request & BigInt(r.args[0].value)) === BigInt(r.args[0].valueTwo),
      );
    for (const tiocsti of [0x5412n, 0x1_0000_5412n, 0xffff_ffff_0000_5412n]) expect(passes(tiocsti), tiocsti.toString(16)).toBe(false);
    for (const other of [0x5413n, 0x5410n, 0x1_0000_5413n, 0x8004_5430n, 0n, 0xffff_ffffn])
      expect(passes(other), other.toString(16)).toBe(true);
    expect(oci.architectures).toEqual(['SCMP_ARCH_X86_64']);
    expect(allowed.has('socketcall')).toBe(false);
    expect(profile.deny.socketcall).toMatch(/AF_VSOCK/);
  });
});

describe('the OCI spec of a sliver', () => {
  const resources = { cpuMillis: 250, memMb: 64, diskMb: 10, pids: 32, bandwidthKbps: 0 };
  const spec = sliverSpec({
    hostname: 's1',
    ids: { slot: 2, hostId: 200_000 + 2 * IDS_PER_SLIVER, size: IDS_PER_SLIVER },
    resources,
    cgroupsPath: 'fedlab/nm-x/s1',
    rootfs: '/data/slivers/s1/rootfs',
    rootReadonly: true,
    mounts: [],
    init: { args: ['/.fedlab/init'], env: [], cwd: '/' },
    seccomp: toOciSeccomp(loadSeccompProfile(), 'x86_64'),
    rlimits: { nofileSoft: 1024, nofileHard: 4096 },
    blkioWeight: true,
    cgroupVersion: 1,
  }) as { linux: Record<string, unknown>; process: Record<string, unknown> };

  it("has every namespace and maps the sliver's ids onto its own range", () => {
    expect((spec.linux.namespaces as { type: string }[]).map((n) => n.type).sort()).toEqual([
      'cgroup',
      'ipc',
      'mount',
      'network',
      'pid',
      'user',
      'uts',
    ]);
    expect(spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 331_072, size: 65_536 }]);
    expect(spec.linux.gidMappings).toEqual(spec.linux.uidMappings);
  });

  it('limits CPU, memory without swap, pids, block IO and devices', () => {
    const r = spec.linux.resources as Record<string, Record<string, unknown> & { length?: number }>;
    expect(r.cpu).toEqual({ quota: 25_000, period: 100_000, shares: 256 });
    expect(r.memory).toEqual({ limit: 64 * 1024 * 1024, swap: 64 * 1024 * 1024, swappiness: 0 });
    expect(r.pids).toEqual({ limit: 32 });
    expect(r.blockIO).toEqual({ weight: 125 });
    const devices = r.devices as unknown as { allow: boolean; major?: number; minor?: number }[];
    expect(devices[0]).toEqual({ allow: false, access: 'rwm' });
    expect(devices.slice(1).map((d) => `${d.major}:${d.minor}`)).toEqual(ALLOWED_DEVICES.map((d) => `${d.major}:${d.minor}`));
  });

  it("runs processes with no_new_privs, the default capabilities only and the owner's rlimits; masks kernel files", () => {
    const p = ociProcess({ args: ['id'], env: ['A=1'], cwd: '/root' }, { nofileSoft: 10, nofileHard: 20 }) as {
      capabilities: Record<string, string[]>;
      noNewPrivileges: boolean;
      rlimits: unknown[];
      user: unknown;
    };
    expect(p.noNewPrivileges).toBe(true);
    expect(p.user).toEqual({ uid: 0, gid: 0, additionalGids: [] });
    expect(p.capabilities.bounding).toEqual([...DEFAULT_CAPABILITIES]);
    expect(p.capabilities).not.toHaveProperty('ambient');
    expect(p.capabilities.bounding).not.toContain('CAP_SYS_ADMIN');
    expect(p.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 }]);
    expect(spec.linux.maskedPaths).toEqual(expect.arrayContaining(['/proc/kcore', '/sys/firmware', '/proc/keys']));
    expect(spec.linux.readonlyPaths).toEqual(expect.arrayContaining(['/proc/sys', '/proc/sysrq-trigger']));
  });
});

describe('id ranges, image names, runc versions', () => {
  it('gives the lowest free range and says when none is left', () => {
    const s = { base: 100_000, count: 4 };
    expect(allocateRange([rangeOf(0, s), rangeOf(2, s)], { base: 100_000, count: 4 })).toEqual({ slot: 1, hostId: 165_536, size: 65_536 });
    expect(() => allocateRange([rangeOf(0, s), rangeOf(1, s)], { base: 100_000, count: 2 })).toThrow(ResourceExhaustedError);
    expect(() => allocateRange([rangeOf(0, s), rangeOf(1, s)], { base: 100_000, count: 2 })).toThrow(/all 2 ranges/);
  });

  it('frees a slot by host-range overlap: ranges made under another uid_base are avoided', () => {
    const old = rangeOf(0, { base: 300_000, count: 8 });
    // Under a base half a range lower, slots 0 and 1 both overlap the old range.
    expect(allocateRange([old], { base: 300_000 - 32_768, count: 8 })).toMatchObject({ slot: 2, hostId: 300_000 - 32_768 + 2 * 65_536 });
    expect(rangesOverlap(old, { hostId: 365_536, size: 1 })).toBe(false);
    expect(rangesOverlap(old, { hostId: 365_535, size: 1 })).toBe(true);
  });

  it("refuses id ranges on host accounts, groups, other users' subuid ranges or below 100000, and finds slivers sharing ids", () => {
    const files = {
      passwd: 'root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\nbig:x:250000:250000::/home/big:/bin/sh\n',
      group: 'root:x:0:\nbiggrp:x:260000:\n',
      subuid: 'root:200000:65536\nalice:100000:65536\nbob:265536:65536\n',
      subgid: 'alice:100000:65536\n',
    };
    expect(hostIdClashes(400_000, 65_536, files)).toEqual([]);
    // root's own subuid range is ours to use.
    expect(hostIdClashes(200_000, 32_768, { subuid: files.subuid })).toEqual([]);
    const clash = hostIdClashes(200_000, 4 * 65_536, files).join('; ');
    expect(clash).toMatch(/big \(250000\)/);
    expect(clash).toMatch(/biggrp \(260000\)/);
    expect(clash).toMatch(/\/etc\/subuid gives part of it to other users: bob 265536-331071/);
    expect(hostIdClashes(50_000, 65_536, {}).join()).toMatch(/below 100000/);
    const settings = { base: 400_000, count: 4 };
    const a = { name: 'a', ids: rangeOf(0, settings), createdAt: 1 };
    const b = { name: 'b', ids: rangeOf(0, { base: 400_000 + 1000, count: 4 }), createdAt: 2 };
    const c = checkSliverIds({ settings, records: [b, a], files, allowHostIds: false });
    expect(c.errors).toEqual([]);
    expect(c.moved).toEqual([expect.stringMatching(/^b \(401000-466535/)]);
    expect(c.shared).toEqual([{ name: 'b', reason: expect.stringMatching(/overlap those of sliver a .*delete it/) }]);
    const low = checkSliverIds({ settings: { base: 200_000, count: 4 }, records: [], files, allowHostIds: false });
    expect(low.errors.join()).toMatch(/container\.uid_base 200000 .*bob .*allow_host_ids/);
    expect(checkSliverIds({ settings: { base: 200_000, count: 4 }, records: [], files, allowHostIds: true }).errors).toEqual([]);
  });

  it('parses image names', () => {
    expect(parseImageName('')).toEqual({ kind: 'host' });
    expect(imageName(parseImageName('oci:debian-12'))).toBe('oci:debian-12');
    for (const bad of ['oci:', 'oci:../x', 'docker://x', 'oci:A', 'oci:a/b', 'host '])
      expect(() => parseImageName(bad), bad).toThrow(/not an image name/);
  });

  it("reads runc's version line", () => {
    expect(parseRuncVersion('runc version 1.1.5+ds1\ncommit: x\nspec: 1.0.2-dev')).toEqual([1, 1, 5]);
    expect(parseRuncVersion('crun version 1.8')).toBeUndefined();
  });

  it('runs only a runc without CVE-2024-21626: 1.1.12 or newer, or a distribution build known or logged to carry the fix', () => {
    const text = (version: string, commit: string) => `runc version ${version}\ncommit: ${commit}\nspec: 1.0.2-dev\n`;
    expect(judgeRuncVersion(text('1.1.12', 'v1.1.12-0-g51d5e946'), '/r')).toEqual({ ok: true, version: '1.1.12' });
    expect(judgeRuncVersion(text('1.2.0', 'v1.2.0-0-g0b9fa21b'), '/r')).toMatchObject({ ok: true });
    // Debian 12's security update carries the fix; the build before it does not.
    expect(judgeRuncVersion(text('1.1.5+ds1', '1.1.5+ds1-1+deb12u1'), '/r')).toMatchObject({
      ok: true,
      version: expect.stringMatching(/deb12u1, CVE-2024-21626 fixed/),
    });
    expect(judgeRuncVersion(text('1.1.5+ds1', '1.1.5+ds1-1+deb12u2'), '/r')).toMatchObject({ ok: true });
    for (const [v, c] of [
      ['1.1.5+ds1', '1.1.5+ds1-1'],
      ['1.1.11', 'v1.1.11-0-g4bccb38c'],
      ['1.1.0', 'v1.1.0-0-g067aaf85'],
    ]) {
      const verdict = judgeRuncVersion(text(v as string, c as string), '/usr/sbin/runc');
      expect(verdict.ok, `${v} ${c}`).toBe(false);
      expect(verdict.ok ? '' : verdict.reason).toMatch(
        /CVE-2024-21626.*install runc 1\.1\.12 or newer, or on Debian 12 the security update 1\.1\.5\+ds1-1\+deb12u1 or later/,
      );
    }
    expect(judgeRuncVersion(text('1.0.3', 'v1.0.3'), '/r')).toMatchObject({ ok: false, reason: expect.stringMatching(/too old/) });
    // Another distribution's backport: its installed changelog, whose first entry is this build, names the CVE.
    const ubuntu = '1.1.7-0ubuntu1~22.04.2';
    const log = (first: string, cve: boolean) =>
      `runc (${first}) jammy-security; urgency=medium\n\n  * ${cve ? 'SECURITY UPDATE: CVE-2024-21626' : 'rebuild'}\n`;
    expect(judgeRuncVersion(text('1.1.7', ubuntu), '/r', log(ubuntu, true))).toMatchObject({ ok: true });
    expect(judgeRuncVersion(text('1.1.7', ubuntu), '/r', log(ubuntu, false))).toMatchObject({ ok: false });
    expect(judgeRuncVersion(text('1.1.7', ubuntu), '/r', log('1.1.8-0ubuntu1', true))).toMatchObject({ ok: false });
  });
});
