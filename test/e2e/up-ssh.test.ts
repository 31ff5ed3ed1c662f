// issue 14's "Done when": `fedlab up` prints, for the deployed slice, a ready-to-paste ssh command per
// site, and each works as printed with Debian's OpenSSH client — it logs in to a sliver of that site
// (the member's key, put on the slice with its delegation; the node's host key pinned in the
// known_hosts the command's config names) and runs `hostname; id` there. Then Ctrl-C stops it all.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliArgs, runCli } from '../helpers/cli.js';
import { sleep } from '../../services/core/timing.js';

const haveSsh = spawnSync('ssh', ['-V'], { encoding: 'utf8' }).status === 0;

/** Runs a printed command line through the shell, as a person pasting it would. */
function runPasted(line: string): { code: number | null; out: string } {
  const r = spawnSync('sh', ['-c', `${line} </dev/null`], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!haveSsh)('fedlab up: the printed ssh commands', () => {
  it('work as printed, one per site, and run inside a sliver of that site', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlab-upssh-'));
    const child = spawn(process.execPath, [...cliArgs(), 'up', '--dir', dir, '--nodes', '1', '--timeout', '120s'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const end = Date.now() + 150_000;
      const printed = (): string[] => out.split('\n').filter((l) => /^ {2}ssh -F \S+ \S+ 'hostname; id'$/.test(l));
      while (printed().length < 3 && !/no SSH login into the slivers/.test(out) && Date.now() < end && child.exitCode === null)
        await sleep(500);
      expect(out).toMatch(/ready: the service runs in all 3 slivers on 3 sites/);
      const lines = printed().map((l) => l.trim());
      expect(lines, out).toHaveLength(3);
      // One per site: the aliases name the slice and the site's node.
      expect(new Set(lines.map((l) => l.split(' ')[3])).size).toBe(3);
      const key = statSync(join(dir, 'ssh', 'id_ed25519'));
      expect(key.mode & 0o777).toBe(0o600);
      for (const line of lines) {
        // The key reaches the nodes through the slice authority and the sites: allow a few seconds.
        let r = runPasted(line);
        for (let i = 0; i < 20 && r.code !== 0; i++) {
          await sleep(1000);
          r = runPasted(line);
        }
        console.log(`$ ${line}\n${r.out.trim()}`);
        expect(r.code, `${line}\n${r.out}`).toBe(0);
        expect(r.out).toMatch(/uid=\d+/);
        // The login ran inside the sliver: not this machine's hostname.
        expect(r.out.split('\n')[0]).not.toBe(spawnSync('hostname', { encoding: 'utf8' }).stdout.trim());
      }
      // fedlab sliver ssh-config, as the summary's slice commands call the SA, writes what up wrote.
      const sa = /fedlab slice ls (--sa \S+ --tls-dir \S+)/.exec(out)?.[1]?.split(' ') ?? [];
      expect(sa).toHaveLength(4);
      const kh = join(dir, 'cli-known_hosts');
      const cfg = await runCli(
        ['sliver', 'ssh-config', 'hello', ...sa, '--identity', join(dir, 'ssh', 'id_ed25519'), '--known-hosts', kh],
        {
          timeoutMs: 30_000,
        },
      );
      expect(cfg.code, cfg.stderr).toBe(0);
      expect(statSync(kh).mode & 0o777).toBe(0o644);
      expect(readFileSync(kh, 'utf8')).toBe(readFileSync(join(dir, 'ssh', 'known_hosts'), 'utf8'));
      const cfgFile = join(dir, 'cli-ssh_config');
      writeFileSync(cfgFile, cfg.stdout);
      const alias = lines[0]?.split(' ')[3] ?? '';
      const viaCli = runPasted(`ssh -F ${cfgFile} ${alias} 'echo inside'`);
      expect(viaCli.code, viaCli.out).toBe(0);
      expect(viaCli.out).toMatch(/^inside$/m);
    } finally {
      if (child.exitCode === null) child.kill('SIGINT');
      const code = await Promise.race([exited, sleep(60_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
    expect(out).toMatch(/stopped; everything is in /);
  }, 240_000);
});
