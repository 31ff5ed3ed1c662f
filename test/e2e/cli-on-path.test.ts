// `fedlab` from any folder: the compiled CLI run by path from another working directory; the layout
// `npm link` and `npm install -g .` make (a global package folder that is a symbolic link to the project,
// and a bin link to the package.json `bin` file in it) resolving every import through the links; and a
// real `npm install -g --prefix <tmp> <project>` (offline: a folder install only makes links) whose
// `fedlab` runs from PATH in another folder; and README's alias, as README writes it.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: { fedlab: string } };
const BIN = join(ROOT, pkg.bin.fedlab);
const built = existsSync(BIN);
const work = mkdtempSync(join(tmpdir(), 'fedlab-on-path-'));
// Nothing the CLI might write goes to the user's config.
const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: join(work, 'config'), FEDLAB_PROFILE: '' };

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!built)(`fedlab from any folder (needs ${pkg.bin.fedlab}: npm run build)`, () => {
  it('the compiled CLI runs by its path from another folder', async () => {
    const elsewhere = mkdtempSync(join(work, 'cwd-'));
    const version = await run(process.execPath, [BIN, '--version'], { cwd: elsewhere, env });
    expect(version.stdout.trim()).toBe(pkg.version);
    const ls = await run(process.execPath, [BIN, 'profile', 'ls', '--json'], { cwd: elsewhere, env });
    expect(JSON.parse(ls.stdout)).toEqual({ file: join(work, 'config', 'fedlab', 'profiles.json'), profiles: {} });
  });

  it('the bin is a node script, and through npm link-style links it finds every import', async () => {
    expect(readFileSync(BIN, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    const prefix = join(work, 'linked');
    mkdirSync(join(prefix, 'lib', 'node_modules'), { recursive: true });
    mkdirSync(join(prefix, 'bin'));
    symlinkSync(ROOT, join(prefix, 'lib', 'node_modules', 'fedlab'));
    symlinkSync(join('..', 'lib', 'node_modules', 'fedlab', pkg.bin.fedlab), join(prefix, 'bin', 'fedlab'));
    const elsewhere = mkdtempSync(join(work, 'cwd-'));
    const out = await run(process.execPath, [join(prefix, 'bin', 'fedlab'), 'completion', 'bash'], { cwd: elsewhere, env });
    expect(out.stdout).toContain('complete -o default -F _fedlab fedlab');
  });

  it("README's alias, written in the project folder as README says, runs fedlab from another folder", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const alias = /echo "(alias fedlab=[^"]+)" >> ~\/\.bashrc/.exec(readme)?.[1];
    expect(alias, 'README has the alias line').toBeDefined();
    const written = (await run('bash', ['-c', `echo "${alias as string}"`], { cwd: ROOT, env })).stdout.trim();
    expect(written).toContain(ROOT);
    const elsewhere = mkdtempSync(join(work, 'cwd-'));
    const out = await run('bash', ['-O', 'expand_aliases', '-c', `${written}\nfedlab --version`], { cwd: elsewhere, env });
    expect(out.stdout.trim()).toBe(pkg.version);
  });

  it('npm install -g of the project folder puts a fedlab on PATH that runs from another folder', async () => {
    const prefix = join(work, 'global');
    await run('npm', ['install', '-g', '--prefix', prefix, '--offline', '--ignore-scripts', '--no-audit', '--no-fund', ROOT], {
      env,
      timeout: 170_000,
    });
    const bin = join(prefix, 'bin', 'fedlab');
    // npm makes the bin executable: it runs by its shebang, found on PATH.
    expect(statSync(bin).mode & 0o111).not.toBe(0);
    const elsewhere = mkdtempSync(join(work, 'cwd-'));
    const out = await run('fedlab', ['--version'], { cwd: elsewhere, env: { ...env, PATH: `${join(prefix, 'bin')}:${env.PATH ?? ''}` } });
    expect(out.stdout.trim()).toBe(pkg.version);
  }, 180_000);
});
