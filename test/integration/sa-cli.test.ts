// `fedlab slice create|ls|show|renew|delete` as a user runs them (the CLI as a child process) against a slice
// authority with a real MA and real node managers: progress lines per node when stdout is not a terminal,
// tables and --json, exit 1 naming the site that failed (and the rollback), exit 2 for bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliArgs, runCli } from '../helpers/cli.js';
import { disposeParties, freePort } from '../helpers/ma-harness.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';

let fed: Federation;
let conn: string[];

beforeAll(async () => {
  fed = await startFederation({
    sites: [{ domain: 'plc.test', style: 'planetlab', nodes: 2, driver: 'simulated' }],
    deadSites: [{ domain: 'down.test', endpoint: `127.0.0.1:${await freePort()}` }],
  });
  const sp = fed.home.sp;
  conn = ['--sa', fed.saAddress(), '--sa-urn', fed.home.sa.urn, '--cert', sp.certPath, '--key', sp.keyPath, '--ca', sp.caPath];
}, 120_000);

afterAll(async () => {
  await fed?.destroy();
  await disposeParties();
});

// Each CLI run starts a Node process (a few seconds each on a loaded machine).
describe('fedlab slice', { timeout: 180_000 }, () => {
  it('creates with per-node progress, lists, shows, renews and deletes', async () => {
    const created = await runCli(
      ['slice', 'create', 'web', '--site', 'plc.test=n1,n2', '--lifetime', '2h', '--mem-mb', '64', '--cpu-millis', '100', ...conn],
      { timeoutMs: 60_000 },
    );
    expect(created.stderr).not.toMatch(/fedlab:/);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/urn:fedlab:plc\.test:node:n1 allocated/);
    expect(created.stdout).toMatch(/urn:fedlab:plc\.test:node:n2 started/);
    expect(created.stdout).toMatch(/state\s+READY/);

    const ls = await runCli(['slice', 'ls', ...conn]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/urn:fedlab:plc\.test:slice:web\s+READY\s+plc\.test\s+\d\/2/);

    const shown = await runCli(['slice', 'show', 'web', '--json', ...conn]);
    expect(shown.code).toBe(0);
    const slice = JSON.parse(shown.stdout) as { urn: string; state: string; slivers: { nodeUrn: string }[] };
    expect(slice.state).toBe('SLICE_STATE_READY');
    expect(slice.slivers.map((s) => s.nodeUrn).sort()).toEqual(['urn:fedlab:plc.test:node:n1', 'urn:fedlab:plc.test:node:n2']);

    const renewed = await runCli(['slice', 'renew', slice.urn, '--lifetime', '3h', ...conn]);
    expect(renewed.code).toBe(0);
    expect(renewed.stdout).toMatch(/plc\.test\s+\d{4}-/);

    const deleted = await runCli(['slice', 'delete', 'web', ...conn], { timeoutMs: 60_000 });
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toMatch(/is DELETED/);
    expect((await fed.sliversOnNodes()).filter(([, s]) => s === slice.urn)).toEqual([]);
  });

  it('draws a progress bar when stdout is a terminal', async () => {
    // `script` gives the CLI a pseudo-terminal; skip where util-linux's script is missing. (Not spawnSync:
    // the SA runs in this process and must keep answering.)
    const run = (cmd: string, args: string[]): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const child = spawn(cmd, args, { env: { ...process.env, COLUMNS: '120' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', () => resolve({ code: -1, out }));
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
    if ((await run('script', ['--version'])).code !== 0) {
      console.log('sa-cli: no `script` command; the terminal progress display is not checked');
      return;
    }
    const cmd = [process.execPath, ...cliArgs(), 'slice', 'create', 'tty', '--site', 'plc.test=2', ...conn]
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    const r = await run('script', ['-qec', cmd, '/dev/null']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\r\x1b\[2K\[#*-*\] \d\/2 nodes/);
    expect(r.out).toMatch(/\[#{24}\] 2\/2 nodes/);
    expect(r.out).toMatch(/state\s+READY/);
    await runCli(['slice', 'delete', 'tty', ...conn], { timeoutMs: 60_000 });
  });

  it('says which site failed and why (exit 1), and refuses bad input (exit 2)', async () => {
    const failed = await runCli(['slice', 'create', 'aon', '--site', 'plc.test=1', '--site', 'down.test=1', ...conn], {
      timeoutMs: 60_000,
    });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/FAILED \(all or nothing: every site was rolled back\)/);
    expect(failed.stderr).toMatch(/site down\.test: UNAVAILABLE/);
    expect(failed.stderr).toMatch(/site plc\.test: ABORTED: rolled back/);
    expect((await fed.sliversOnNodes()).filter(([, s]) => s === 'urn:fedlab:plc.test:slice:aon')).toEqual([]);

    const json = await runCli(['slice', 'ls', '--state', 'failed', '--json', ...conn]);
    expect((JSON.parse(json.stdout) as { urn: string }[]).map((s) => s.urn)).toContain('urn:fedlab:plc.test:slice:aon');

    for (const args of [
      ['slice', 'create', 'x', '--site', 'plc.test', ...conn],
      ['slice', 'renew', 'web', ...conn],
      ['slice', 'ls', '--sa', 'nope', '--cert', 'x', '--key', 'y', '--ca', 'z'],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^fedlab: /);
    }
    const missing = await runCli(['slice', 'show', 'nothing-here', ...conn]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no live slice named nothing-here/);
  });

  it('creates from a request file (--request DOMAIN=FILE), naming the site that refuses what its style cannot do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlab-sa-cli-'));
    try {
      writeFileSync(
        join(dir, 'one.json'),
        JSON.stringify({ nodes: { count: 1, client_ids: ['w'] }, resources: { cpu_millis: 100, mem_mb: 64 } }),
      );
      writeFileSync(
        join(dir, 'links.json'),
        JSON.stringify({
          nodes: { count: 2, client_ids: ['a', 'b'] },
          links: [{ name: 'lan0', endpoints: ['a', 'b'], bandwidth_kbps: 1000 }],
        }),
      );
      writeFileSync(join(dir, 'typo.json'), JSON.stringify({ nodes: { count: 1 }, resource: { mem_mb: 64 } }));
      const made = await runCli(['slice', 'create', 'filed', '--request', `plc.test=${join(dir, 'one.json')}`, '--json', ...conn], {
        timeoutMs: 60_000,
      });
      expect(made.stderr).not.toMatch(/fedlab:/);
      expect(made.code).toBe(0);
      const slice = JSON.parse(made.stdout) as { urn: string; state: string; slivers: { clientId: string }[] };
      expect(slice.state).toBe('SLICE_STATE_READY');
      expect(slice.slivers.map((x) => x.clientId)).toEqual(['w']);
      expect((await runCli(['slice', 'delete', 'filed', ...conn], { timeoutMs: 60_000 })).code).toBe(0);

      // A planetlab site has no links: the site says so, and nothing is left anywhere.
      const links = await runCli(['slice', 'create', 'linked', '--request', `plc.test=${join(dir, 'links.json')}`, ...conn], {
        timeoutMs: 60_000,
      });
      expect(links.code).toBe(1);
      expect(links.stderr).toMatch(/site plc\.test: FAILED_PRECONDITION: .*planetlab-style site: it has no topology links/);
      expect((await fed.sliversOnNodes()).filter(([, sl]) => sl === 'urn:fedlab:plc.test:slice:linked')).toEqual([]);

      // A misspelt key is refused before anything is sent (exit 2).
      const typo = await runCli(['slice', 'create', 'typo', '--request', `plc.test=${join(dir, 'typo.json')}`, ...conn]);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toMatch(/unknown key "resource"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
