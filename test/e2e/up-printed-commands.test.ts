// issue 17's "Done when": the commands `fedlab up` prints use the profiles it wrote and work as printed.
// One `fedlab up --nodes 2` (not --once: the commands are for while it runs); every command of its
// "How to use it" block — the site, slice authority and provider ones by profile, the deploy, the
// member's sliver exec and logs with its chain, the ssh logins when OpenSSH is here, and (issue 13)
// the pings across the demo slice's emulab link and stitched link where slivers have a network — is
// run as a person pasting it would: in a shell with the printed alias, from another folder, expecting exit 0.
// Then Ctrl-C stops it all, the deployment the printed `fedlab deploy` made included.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliArgs } from '../helpers/cli.js';
import { sleep } from '../../services/core/timing.js';

const haveSsh = spawnSync('ssh', ['-V'], { encoding: 'utf8' }).status === 0;

/** Runs a printed line through bash with the printed alias, from `cwd`, as a person pasting both would. */
function runPasted(alias: string, line: string, cwd: string): { code: number | null; out: string } {
  const r = spawnSync('bash', ['-O', 'expand_aliases', '-c', `${alias}\n${line} </dev/null`], { cwd, encoding: 'utf8', timeout: 90_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('fedlab up: the printed commands', () => {
  it('use the profiles it wrote and work as printed, from another folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlab-upcmd-'));
    const elsewhere = mkdtempSync(join(tmpdir(), 'fedlab-upcmd-cwd-'));
    const child = spawn(process.execPath, [...cliArgs(), 'up', '--dir', dir, '--nodes', '2', '--timeout', '120s'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const end = Date.now() + 150_000;
      while (!/^Everything \(certificates/m.test(out) && Date.now() < end && child.exitCode === null) await sleep(500);
      const block = out.slice(out.indexOf('How to use it'), out.search(/^Everything \(certificates/m));
      expect(block, out).toMatch(/^ {2}alias fedlab="node [^"]+"$/m);
      const alias = (/^ {2}(alias fedlab="node [^"]+")$/m.exec(block) as RegExpExecArray)[1] as string;
      const commands = block
        .split('\n')
        .filter((l) => /^ {2}(fedlab|ssh) /.test(l))
        .map((l) => l.trim());
      const fedlab = commands.filter((c) => c.startsWith('fedlab '));
      // Every site, the slice authority and the provider, by profile: no addresses, no TLS folders.
      const byProfile = fedlab.filter((c) => !c.startsWith('fedlab sliver '));
      expect(byProfile.length).toBeGreaterThanOrEqual(7);
      for (const c of byProfile) {
        expect(c).toMatch(/--profile \S+/);
        expect(c).not.toMatch(/--tls-dir|--sa |--sp |--ma /);
      }
      expect(fedlab.filter((c) => c.startsWith('fedlab sliver '))).toHaveLength(2);
      const pings = commands.filter((c) => c.startsWith('ssh ') && c.includes(' ping '));
      if (haveSsh) expect(commands.filter((c) => c.startsWith('ssh ')).length - pings.length).toBe(3);
      // Links need slivers with a network (root, runc, ip, nft): where there is none the summary says why.
      const noLinks = /^ {2}# no links in the demo slice: .*$/m.exec(block);
      if (noLinks && !(process.env.CI && process.getuid?.() === 0)) console.log(`no pings to run: ${noLinks[0].trim()}`);
      else if (haveSsh) {
        expect(pings, block).toHaveLength(2);
        expect(block).toMatch(/# across link0 \(.*50 Mbit\/s\)/);
        expect(block).toMatch(/# across wan0 \(.*20 Mbit\/s\)/);
      }
      for (const c of commands) {
        if (c.startsWith('ssh ') && !haveSsh) continue;
        let r = runPasted(alias, c, elsewhere);
        // The member's SSH key reaches each node through the slice authority and its site: allow a few seconds.
        for (let i = 0; c.startsWith('ssh ') && i < 20 && r.code !== 0; i++) {
          await sleep(1000);
          r = runPasted(alias, c, elsewhere);
        }
        expect(r.code, `$ ${c}\n${r.out}`).toBe(0);
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGINT');
      const code = await Promise.race([exited, sleep(90_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      rmSync(elsewhere, { recursive: true, force: true });
    }
    // The printed deploy's deployment was deleted with the rest.
    expect(out).toMatch(/deployment echo \(READY/);
    expect(out).toMatch(/stopped; everything is in /);
  }, 300_000);
});
