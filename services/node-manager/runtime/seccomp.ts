/**
 * The slivers' seccomp profile: read from the data file
 * `seccomp-default.json` beside this module (allowed calls grouped by
 * purpose, conditional rules, refused calls with reasons), checked, and turned
 * into the OCI runtime spec's `linux.seccomp` object that runc loads.
 */
import { readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../core/paths.js';

/** The profile data file as written in the repository. */
export interface SeccompProfileFile {
  readonly defaultErrno: string;
  readonly architectures: Readonly<Record<string, readonly string[]>>;
  readonly allow: Readonly<Record<string, readonly string[]>>;
  readonly allowIf: readonly { syscall: string; arg: number; op: string; value: number; valueTwo?: number }[];
  readonly errno: Readonly<Record<string, { errno: string }>>;
  readonly deny: Readonly<Record<string, string>>;
}

/** One rule of the OCI seccomp object. */
export interface OciSyscallRule {
  readonly names: string[];
  readonly action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  readonly errnoRet?: number;
  readonly args?: { index: number; value: number; valueTwo: number; op: string }[];
}

/** The OCI runtime spec's `linux.seccomp`. */
export interface OciSeccomp {
  readonly defaultAction: 'SCMP_ACT_ERRNO';
  readonly defaultErrnoRet: number;
  readonly architectures: string[];
  readonly syscalls: OciSyscallRule[];
}

const ERRNO: Readonly<Record<string, number>> = { EPERM: 1, ENOSYS: 38 };
/** `NE_LOW32` is the profile's own: the low 32 bits of the argument differ from the value (seccomp has no masked "not equal"). */
const OPS = new Set([
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
  'NE_LOW32',
]);

/**
 * The argument comparisons of one allowIf rule, each an OCI rule of its own
 * (rules of one call are alternatives). `NE_LOW32` becomes one masked compare
 * per bit, "bit i differs from the value's": any one of them matching means
 * the low 32 bits differ, whatever the upper 32 hold.
 */
export function ruleArgs(r: { arg: number; op: string; value: number; valueTwo?: number }): NonNullable<OciSyscallRule['args']>[] {
  if (r.op !== 'NE_LOW32') return [[{ index: r.arg, value: r.value, valueTwo: r.valueTwo ?? 0, op: r.op }]];
  const out: NonNullable<OciSyscallRule['args']>[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const mask = 2 ** bit;
    out.push([{ index: r.arg, value: mask, valueTwo: Math.floor(r.value / mask) % 2 === 1 ? 0 : mask, op: 'SCMP_CMP_MASKED_EQ' }]);
  }
  return out;
}

/** Path of the profile data file. */
export function seccompProfilePath(): string {
  return join(packageRoot(), 'services', 'node-manager', 'runtime', 'seccomp-default.json');
}

/** Reads and checks the profile file: known errnos and operators, no call both allowed and refused, no call listed twice. */
export function loadSeccompProfile(file = seccompProfilePath()): SeccompProfileFile {
  const p = JSON.parse(readFileSync(file, 'utf8')) as SeccompProfileFile;
  const problems: string[] = [];
  if (!(p.defaultErrno in ERRNO)) problems.push(`defaultErrno ${p.defaultErrno} is not one of ${Object.keys(ERRNO).join(', ')}`);
  const allowed = new Map<string, string>();
  for (const [group, names] of Object.entries(p.allow)) {
    for (const n of names) {
      if (allowed.has(n)) problems.push(`${n} is allowed twice (${allowed.get(n)}, ${group})`);
      allowed.set(n, group);
    }
  }
  const conditional = new Set(p.allowIf.map((r) => r.syscall));
  for (const r of p.allowIf) if (!OPS.has(r.op)) problems.push(`allowIf ${r.syscall}: unknown operator ${r.op}`);
  for (const r of p.allowIf)
    if (r.op === 'NE_LOW32' && !(Number.isInteger(r.value) && r.value >= 0 && r.value < 2 ** 32))
      problems.push(`allowIf ${r.syscall}: NE_LOW32 needs a 32-bit value`);
  for (const [n, e] of Object.entries(p.errno)) if (!(e.errno in ERRNO)) problems.push(`errno ${n}: unknown ${e.errno}`);
  for (const n of Object.keys(p.deny)) {
    if (allowed.has(n) || conditional.has(n) || n in p.errno) problems.push(`${n} is refused and allowed`);
  }
  for (const n of conditional) if (allowed.has(n)) problems.push(`${n} is allowed outright and conditionally`);
  if (problems.length) throw new Error(`seccomp profile ${file}: ${problems.join('; ')}`);
  return p;
}

/** The OCI seccomp object of a profile for this machine's architecture. */
export function toOciSeccomp(p: SeccompProfileFile, machine: string = arch() === 'arm64' ? 'aarch64' : 'x86_64'): OciSeccomp {
  const architectures = p.architectures[machine];
  if (!architectures) throw new Error(`the seccomp profile has no architectures for ${machine}`);
  const syscalls: OciSyscallRule[] = [{ names: Object.values(p.allow).flat().sort(), action: 'SCMP_ACT_ALLOW' }];
  for (const r of p.allowIf) for (const args of ruleArgs(r)) syscalls.push({ names: [r.syscall], action: 'SCMP_ACT_ALLOW', args });
  for (const [n, e] of Object.entries(p.errno)) syscalls.push({ names: [n], action: 'SCMP_ACT_ERRNO', errnoRet: ERRNO[e.errno] as number });
  return { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: ERRNO[p.defaultErrno] as number, architectures: [...architectures], syscalls };
}

let cached: OciSeccomp | undefined;

/** The slivers' profile as runc takes it (read once). */
export function sliverSeccomp(): OciSeccomp {
  cached ??= toOciSeccomp(loadSeccompProfile());
  return cached;
}
