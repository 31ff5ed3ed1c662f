/**
 * `--profile NAME` (or FEDLAB_PROFILE, which the entry reads and passes in) on every command that calls
 * a service: the profile fills the connection flags the command has and was not given. Flags given
 * explicitly win; an explicit `--cert`/`--key` keeps the profile's `--tls-dir` out.
 *
 * The profile is read in a preAction hook, so only a command that uses it reads the file. Commander
 * checks required flags before that hook, so the flags a profile can fill are made optional here and
 * checked in the hook instead, after the profile has had its say.
 */
import type { Command, Option } from 'commander';
import { loadProfile, type Profile, type ProfileLocation } from './profiles.js';

/** What the entry passes: the profile named by the environment, and where the profiles file is. */
export interface ProfileContext {
  /** FEDLAB_PROFILE, if set; `--profile` wins over it. */
  readonly envName?: string;
  readonly location: ProfileLocation;
}

/** Option attribute names → the profile's value for them. */
const FILLS: Readonly<Record<string, (p: Profile) => string | undefined>> = {
  sa: (p) => p.sa,
  saUrn: (p) => p.saUrn,
  sp: (p) => p.sp,
  spUrn: (p) => p.spUrn,
  ma: (p) => p.ma,
  maUrn: (p) => p.maUrn,
  // `fedlab am --address`: the site's aggregate is its MA.
  address: (p) => p.ma,
  tlsDir: (p) => p.tlsDir,
  ca: (p) => p.ca,
};

/**
 * The profile's `--chain` by command group: `fedlab am`'s is an MA → SA chain, `fedlab sliver`'s a slice
 * credential (a member's); elsewhere a chain means something else and is never filled.
 */
const CHAINS: Readonly<Record<string, (p: Profile) => string | undefined>> = {
  am: (p) => p.chains?.[0],
  sliver: (p) => p.sliverChain,
};

/**
 * The commands that call a service with these flags (by path prefix). Others (`profile add`, `serve`,
 * `federation peer …` whose --tls-dir is a service's own) keep their flags to themselves.
 */
const REMOTE = ['am', 'slice', 'sliver', 'deploy', 'deployment', 'member', 'node', 'site', 'revocations', 'federation check'];

/** The command's path below the program (`am status`). */
function pathOf(cmd: Command): string[] {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names;
}

function fillable(cmd: Command, opt: Option): boolean {
  const key = opt.attributeName();
  if (key === 'chain') return (pathOf(cmd)[0] ?? '') in CHAINS;
  return key in FILLS;
}

function leaves(cmd: Command): Command[] {
  return cmd.commands.length ? cmd.commands.flatMap(leaves) : [cmd];
}

function fromCli(cmd: Command, key: string): boolean {
  return cmd.getOptionValue(key) !== undefined && cmd.getOptionValueSource(key) === 'cli';
}

/**
 * Adds `--profile` to every command of `program` with a flag a profile can fill, and the hook that
 * fills them. Call it once the command groups are registered.
 */
export function applyProfiles(program: Command, context: ProfileContext): void {
  const required = new WeakMap<Command, Option[]>();
  for (const cmd of leaves(program)) {
    const path = pathOf(cmd).join(' ');
    if (!REMOTE.some((r) => path === r || path.startsWith(`${r} `))) continue;
    const opts = cmd.options.filter((o) => fillable(cmd, o));
    if (opts.length === 0) continue;
    if (!cmd.options.some((o) => o.long === '--profile'))
      cmd.option('--profile <name>', 'take the flags not given from this profile (fedlab profile ls; default $FEDLAB_PROFILE)');
    const mandatory = opts.filter((o) => o.mandatory);
    for (const o of mandatory) o.mandatory = false;
    required.set(cmd, mandatory);
  }
  program.hook('preAction', (_root, cmd) => {
    const mandatory = required.get(cmd);
    if (!mandatory) return;
    const name = (cmd.getOptionValue('profile') as string | undefined) ?? context.envName;
    if (name) {
      const profile = loadProfile(name, context.location);
      const tlsGiven = fromCli(cmd, 'cert') || fromCli(cmd, 'key');
      for (const o of cmd.options.filter((x) => fillable(cmd, x))) {
        const key = o.attributeName();
        if (cmd.getOptionValue(key) !== undefined && cmd.getOptionValueSource(key) !== 'default') continue;
        if (key === 'tlsDir' && tlsGiven) continue;
        const value = key === 'chain' ? CHAINS[pathOf(cmd)[0] ?? '']?.(profile) : FILLS[key]?.(profile);
        if (value !== undefined) cmd.setOptionValueWithSource(key, value, 'config');
      }
    }
    for (const o of mandatory) {
      if (cmd.getOptionValue(o.attributeName()) !== undefined) continue;
      const hint = name ? ` (profile ${name} has none)` : ' (or a profile that has it: --profile NAME)';
      cmd.error(`error: required option '${o.flags}' not specified${hint}`, { code: 'commander.missingMandatoryOptionValue', exitCode: 2 });
    }
  });
}
