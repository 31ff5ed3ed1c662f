// Profiles on disk (cli/profiles.ts): the XDG location, mode 0600, symbolic links refused when reading
// and writing, names checked, replacing only when asked; and the CLI's `fedlab profile` commands with
// --json, plus a closed standard output ending a command quietly.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadProfile, profileLocation, profilesFile, readProfiles, removeProfile, writeProfile } from '../../cli/profiles.js';
import { cliArgs, runCli } from '../helpers/cli.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-profiles-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('profiles file', () => {
  it('lives under XDG_CONFIG_HOME when absolute, else ~/.config', () => {
    expect(profilesFile(profileLocation({ XDG_CONFIG_HOME: '/x/cfg', HOME: '/h' }))).toBe('/x/cfg/fedlab/profiles.json');
    expect(profilesFile(profileLocation({ XDG_CONFIG_HOME: 'relative', HOME: '/h' }))).toBe('/h/.config/fedlab/profiles.json');
    expect(profilesFile(profileLocation({ HOME: '/h' }))).toBe('/h/.config/fedlab/profiles.json');
  });

  it('is written 0600 with absolute paths; a name is replaced only when asked, and removed', () => {
    const loc = { configHome: dir };
    const file = writeProfile('local', { sa: '127.0.0.1:7001', tlsDir: 'rel/dir', chains: ['a.chain'] }, loc);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const p = loadProfile('local', loc);
    expect(p.tlsDir).toBe(join(process.cwd(), 'rel/dir'));
    expect(p.chains).toEqual([join(process.cwd(), 'a.chain')]);
    expect(() => writeProfile('local', { sa: '127.0.0.1:1' }, loc)).toThrow(/exists/);
    writeProfile('local', { sa: '127.0.0.1:2' }, { ...loc, replace: true });
    expect(loadProfile('local', loc).sa).toBe('127.0.0.1:2');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(removeProfile('local', loc)).toBe(true);
    expect(removeProfile('local', loc)).toBe(false);
    expect(() => loadProfile('local', loc)).toThrow(/no profile named/);
    expect(() => writeProfile('../x', { sa: 'h:1' }, loc)).toThrow(/profile name/);
  });

  it('refuses a symbolic link at its place, reading and writing, and leaves the target alone', () => {
    const loc = { configHome: dir };
    mkdirSync(join(dir, 'fedlab'));
    const target = join(dir, 'elsewhere.json');
    writeFileSync(target, '{"version":1,"profiles":{}}');
    symlinkSync(target, profilesFile(loc));
    expect(() => readProfiles(loc)).toThrow(/symbolic link/);
    expect(() => writeProfile('p', { sa: 'h:1' }, loc)).toThrow(/symbolic link/);
  });

  it('refuses a malformed file', () => {
    const loc = { configHome: dir };
    mkdirSync(join(dir, 'fedlab'));
    writeFileSync(profilesFile(loc), '{"profiles": {"x": {"chains": "one"}}}');
    expect(() => readProfiles(loc)).toThrow(/chains/);
  });
});

describe('fedlab profile', () => {
  it('adds, lists, shows and removes with --json; FEDLAB_PROFILE naming a missing profile is bad input only where used', async () => {
    const env = { XDG_CONFIG_HOME: dir };
    const add = await runCli(['profile', 'add', 'p1', '--sa', '127.0.0.1:7001', '--tls-dir', dir, '--json'], { env });
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ name: 'p1', profile: { sa: '127.0.0.1:7001', tls_dir: dir } });
    expect(JSON.parse((await runCli(['profile', 'ls', '--json'], { env })).stdout).profiles.p1.sa).toBe('127.0.0.1:7001');
    const again = await runCli(['profile', 'add', 'p1', '--sa', '127.0.0.1:7002', '--json'], { env });
    expect(again.code).toBe(2);
    expect(JSON.parse(again.stderr)).toMatchObject({ code: 'INVALID_ARGUMENT', rule: 'exists' });
    // Profile commands never take a profile themselves.
    const show = await runCli(['profile', 'show', 'p1'], { env: { ...env, FEDLAB_PROFILE: 'missing' } });
    expect(show.code, show.stderr).toBe(0);
    // A remote command does, and the flags it has not been given come from it.
    const slices = await runCli(['slice', 'ls', '--json'], { env: { ...env, FEDLAB_PROFILE: 'missing' } });
    expect(slices.code).toBe(2);
    expect(JSON.parse(slices.stderr).message).toMatch(/no profile named "missing"/);
    const rm = await runCli(['profile', 'rm', 'p1', '--json'], { env });
    expect(JSON.parse(rm.stdout)).toEqual({ name: 'p1', removed: true });
    expect((await runCli(['profile', 'rm', 'p1'], { env })).code).toBe(1);
  });

  it('prints a usage error as a JSON object with --json (exit 2)', async () => {
    const r = await runCli(['profile', 'add', '--json'], { env: { XDG_CONFIG_HOME: dir } });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr)).toMatchObject({ code: 'USAGE', rule: '', site: '' });
  });
});

describe('closed standard output', () => {
  it('ends `fedlab completion bash | head -0` quietly with status 0 (no EPIPE stack)', async () => {
    const child = spawn(process.execPath, [...cliArgs(), 'completion', 'bash'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader goes away at once, as `head` does once it has what it wants.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).not.toMatch(/EPIPE|Error/);
    expect(code).toBe(0);
  });

  it('prints completion scripts for bash and zsh naming the commands', async () => {
    const bash = await runCli(['completion', 'bash']);
    expect(bash.code, bash.stderr).toBe(0);
    expect(bash.stdout).toMatch(/complete -o default -F _fedlab fedlab/);
    expect(bash.stdout).toContain('"am")');
    expect(bash.stdout).toContain('listresources');
    expect((await runCli(['completion', 'zsh'])).stdout).toMatch(/^#compdef fedlab/);
  });
});
