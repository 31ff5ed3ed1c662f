// `fedlab up` in a real terminal (Debian's tmux, 100 columns): the view repaints in place (one header in
// the whole scrollback, no line wider than the terminal), shows a second deployment made beside its own
// and what holds each node; Ctrl-C then leaves no process, namespace, cgroup directory (empty or not) or
// slice. The same through `| tee` with tee killed first (EPIPE on its output). A kill -9 of fedlab up,
// then a second run on the same folder: it lists and stops what the first left and comes up READY.
// Under `npm test` (FEDLAB_TEST_CLI=dist) the terminal runs `npm run fedlab -- up`, the npm path.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodePaths, readState, sitePaths } from '../../cli/up/plan.js';
import { maInstance } from '../../services/management-authority/instance.js';
import { netnsPrefix, tableName } from '../../services/node-manager/network/net-names.js';
import { instanceId } from '../../services/node-manager/index.js';
import { sleep } from '../../services/core/timing.js';
import { cliArgs, runCli } from '../helpers/cli.js';

const haveTmux = spawnSync('tmux', ['-V'], { encoding: 'utf8' }).status === 0;
const root = mkdtempSync(join(tmpdir(), 'fedlab-uptmux-'));
// Container slivers' root users traverse it to their bundles.
chmodSync(root, 0o711);
// The profiles fedlab up writes go here, not to the user's (the tmux server and the CLI runs inherit it).
process.env.XDG_CONFIG_HOME = join(root, 'config');
const socket = join(root, 'tmux.sock');
const SITES = ['--sites', 'planetlab,emulab', '--nodes', '1'];
const repo = join(import.meta.dirname, '../..');

const viaNpm = process.env.FEDLAB_TEST_CLI === 'dist';
const q = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
/**
 * The shell command that runs `fedlab up ...args`: through npm when the tests run the built CLI. Alone,
 * it is exec'd: the pane's process is the command itself, not a shell that a Ctrl-C would end first.
 */
function upCommand(args: string[], pipeline = false): string {
  if (viaNpm) return `cd ${q(repo)} && ${pipeline ? '' : 'exec '}npm run --silent fedlab -- up ${args.map(q).join(' ')}`;
  return `${pipeline ? '' : 'exec '}${[process.execPath, ...cliArgs(), 'up', ...args].map(q).join(' ')}`;
}

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
}

/** Starts a 100×40 terminal running `command`; the pane stays after it exits (to read its status). */
function terminal(name: string, command: string): void {
  tmux('new-session', '-d', '-s', name, '-x', '100', '-y', '40', command);
  tmux('set-option', '-t', name, 'remain-on-exit', 'on');
}

/** The whole pane, scrollback included, wrapped lines joined. */
function screen(name: string): string {
  return tmux('capture-pane', '-p', '-J', '-S', '-', '-t', name);
}

/** Whether the pane's command ended, and its status. */
function dead(name: string): { dead: boolean; status: number } {
  const [d, s] = tmux('display-message', '-p', '-t', name, '#{pane_dead} #{pane_dead_status}').trim().split(' ');
  return { dead: d === '1', status: Number(s) };
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs: number, context: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what} did not happen within ${timeoutMs} ms:\n${context()}`);
    await sleep(250);
  }
}

/** The processes whose command line names `dir` (service processes of the federation, sliver keepers). */
function processesOf(dir: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(dir) && !cmd.includes('tmux')) out.push(`${pid} ${cmd}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** The cgroup directories (any depth, any controller) named after one of the federation's node instances. */
function cgroupsOf(dir: string): string[] {
  const state = readState(dir);
  const ids = new Set(state?.sites.flatMap((s) => s.nodes.map((n) => instanceId(nodePaths(dir, s.domain, n.name).data))) ?? []);
  const found: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > 7) return;
    let entries: import('node:fs').Dirent[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (ids.has(e.name)) found.push(join(d, e.name));
      else walk(join(d, e.name), depth + 1);
    }
  };
  if (existsSync('/sys/fs/cgroup')) walk('/sys/fs/cgroup', 0);
  return found;
}

/** Network namespaces of the federation: its emulab MAs' (`fedlab-<ma>-`) and its slivers' (`fl-<instance>-`). */
function namespacesOf(dir: string): string[] {
  const state = readState(dir);
  const prefixes = [
    ...(state?.sites.map((s) => `fedlab-${maInstance(sitePaths(dir, s.domain).maData)}-`) ?? []),
    ...(state?.sites.flatMap((s) => s.nodes.map((n) => netnsPrefix(instanceId(nodePaths(dir, s.domain, n.name).data)))) ?? []),
  ];
  const names = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
  return names.filter((n) => prefixes.some((p) => n.startsWith(p)));
}

/**
 * The sliver network of the federation on this host: its node managers' nftables tables (`fedlab-<instance>`), the
 * sliver bridges of its block (`flu<block>n<k>`), and link devices whose alias names one of its node managers.
 */
function networkOf(dir: string): string[] {
  const state = readState(dir);
  if (process.getuid?.() !== 0 || state?.net_block === undefined) return [];
  const instances = state.sites.flatMap((s) => s.nodes.map((n) => instanceId(nodePaths(dir, s.domain, n.name).data)));
  const tables = new Set(instances.map(tableName));
  const found: string[] = [];
  try {
    const nft = JSON.parse(execFileSync('nft', ['-j', 'list', 'tables'], { encoding: 'utf8' })) as {
      nftables: { table?: { name: string } }[];
    };
    for (const o of nft.nftables) if (o.table && tables.has(o.table.name)) found.push(`nft ${o.table.name}`);
  } catch {
    // No nft here: the node managers made no tables either.
  }
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string; ifalias?: string }[];
  for (const l of links) {
    const ours = l.ifname.startsWith(`flu${state.net_block}n`) || instances.some((i) => (l.ifalias ?? '').includes(` ${i} `));
    if (ours) found.push(`link ${l.ifname}`);
  }
  return found;
}

/** Live slices on the federation's slice authority, asked by starting it alone on its config. */
async function slicesLeft(dir: string): Promise<string> {
  const state = readState(dir);
  if (!state) return 'no state';
  const home = join(dir, state.home);
  const sa = spawn(process.execPath, [...cliArgs(), 'serve', 'sa', '--config', join(home, 'sa.json')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    sa.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until(
      'the slice authority listening',
      () => out.includes('"listening"'),
      30_000,
      () => out,
    );
    const res = await runCli(['slice', 'ls', '--sa', `localhost:${state.sa_port}`, '--tls-dir', join(home, 'sp'), '--json'], {
      timeoutMs: 30_000,
    });
    expect(res.code, res.stderr).toBe(0);
    return res.stdout;
  } finally {
    sa.kill('SIGKILL');
  }
}

/** Nothing of the federation in `dir` is left on the machine. */
function expectNothingLeft(dir: string): void {
  expect(processesOf(dir)).toEqual([]);
  expect(cgroupsOf(dir)).toEqual([]);
  expect(namespacesOf(dir)).toEqual([]);
  expect(networkOf(dir)).toEqual([]);
}

afterAll(() => {
  if (haveTmux) spawnSync('tmux', ['-S', socket, 'kill-server']);
  for (const d of readdirSync(root)) for (const p of processesOf(join(root, d))) spawnSync('kill', ['-9', p.split(' ')[0] ?? '']);
  rmSync(root, { recursive: true, force: true });
}, 30_000);

describe.skipIf(!haveTmux)('fedlab up in a terminal', () => {
  it('repaints in place at 100 columns, shows a second deployment and what holds each node; Ctrl-C leaves nothing', async () => {
    const dir = join(root, 'tty');
    terminal('tty', upCommand(['--dir', dir, ...SITES]));
    await until(
      'ready',
      () => /ready: the service runs in all 2 slivers/.test(screen('tty')),
      120_000,
      () => screen('tty'),
    );
    const state = readState(dir);
    if (!state) throw new Error('no state file');
    const op = join(dir, state.home, 'operator');
    const dep = await runCli(
      [
        'deploy',
        '--sp',
        `localhost:${state.sp_port}`,
        '--tls-dir',
        op,
        '--name',
        'echo',
        '--site',
        `${state.home}=1`,
        '--',
        'sh',
        '-c',
        'while true; do echo tick; sleep 1; done',
      ],
      { timeoutMs: 60_000 },
    );
    expect(dep.code, `${dep.stdout}\n${dep.stderr}`).toBe(0);
    const shown = await until(
      'the second deployment in the view',
      () => {
        const s = screen('tty');
        return /^echo +READY/m.test(s) && /^hello +READY/m.test(s) && s;
      },
      30_000,
      () => screen('tty'),
    );
    // In place: one header in the whole scrollback, the view's lines cut to the terminal.
    expect(shown.match(/^fedlab up: .*Ctrl-C stops it/gm), shown).toHaveLength(1);
    const view = shown.slice(shown.search(/^fedlab up: /m));
    for (const l of view.split('\n')) expect(l.length, l).toBeLessThanOrEqual(100);
    // What holds each node: the planetlab node both slices, the emulab node the demo's.
    expect(view).toMatch(/^plc\.test +plc1 +UP +(hello READY, echo READY|echo READY, hello READY)/m);
    expect(view).toMatch(/^emu\.test +emu1 +UP +hello READY/m);

    tmux('send-keys', '-t', 'tty', 'C-c');
    const end = await until(
      'the stop',
      () => dead('tty').dead && dead('tty'),
      60_000,
      () => screen('tty'),
    );
    // npm's own status after a Ctrl-C is npm's affair; fedlab up's, run directly, is 0.
    if (!viaNpm) expect(end.status, screen('tty')).toBe(0);
    await until(
      'every process gone',
      () => processesOf(dir).length === 0,
      30_000,
      () => processesOf(dir).join('\n'),
    );
    const log = readFileSync(join(dir, 'up.log'), 'utf8');
    expect(log).toMatch(/stopping \(SIGINT\)/);
    expect(log).not.toMatch(/a second Ctrl-C/);
    expect(log).toMatch(/deployment echo/);
    expect(log).toMatch(/stopped; everything is in /);
    expectNothingLeft(dir);
    expect(JSON.parse(await slicesLeft(dir))).toEqual([]);
  }, 200_000);

  it('stops cleanly through | tee with tee killed first (EPIPE), saying so in up.log', async () => {
    const dir = join(root, 'tee');
    const teeLog = join(root, 'tee.log');
    terminal('tee', `${upCommand(['--dir', dir, ...SITES], true)} | tee ${q(teeLog)}`);
    await until(
      'ready',
      () => existsSync(teeLog) && /ready: the service runs in all 2 slivers/.test(readFileSync(teeLog, 'utf8')),
      120_000,
      () => (existsSync(teeLog) ? readFileSync(teeLog, 'utf8') : screen('tee')),
    );
    const tee =
      execFileSync('pgrep', ['-f', `^tee ${teeLog}$`], { encoding: 'utf8' })
        .trim()
        .split('\n')[0] ?? '';
    expect(tee).toMatch(/^\d+$/);
    process.kill(Number(tee), 'SIGKILL');
    await sleep(500);
    tmux('send-keys', '-t', 'tee', 'C-c');
    await until(
      'the stop',
      () => dead('tee').dead,
      60_000,
      () => screen('tee'),
    );
    const log = readFileSync(join(dir, 'up.log'), 'utf8');
    expect(log).toMatch(/standard output is gone \(EPIPE\)/);
    expect(log).toMatch(/deleted/);
    expect(log).toMatch(/stopped; everything is in /);
    expectNothingLeft(dir);
  }, 200_000);

  it('after a kill -9 of fedlab up, a second run lists and stops what the first left and comes up READY', async () => {
    const dir = join(root, 'crash');
    const first = spawn(process.execPath, [...cliArgs(), 'up', '--dir', dir, ...SITES], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    first.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until(
      'ready',
      () => /ready: the service runs in all 2 slivers/.test(out),
      120_000,
      () => out,
    );
    const left = readState(dir)?.pids ?? [];
    expect(left.length).toBe(6);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    // What survives the crash varies (services whose output pipe closed may end on their own; sliver
    // keepers stay): whatever does is stopped by the second run, and the slices it held are deleted.
    const survivors = processesOf(dir);

    const second = await runCli(['up', '--dir', dir, ...SITES, '--once', '--timeout', '90s'], { timeoutMs: 150_000 });
    const said = `${second.stdout}\n${second.stderr}`;
    expect(second.code, said).toBe(0);
    if (survivors.some((p) => p.includes(' serve ')))
      expect(said).toMatch(/the last run of .* did not stop; stopping what it left running/);
    expect(said).toMatch(/an earlier run of .* left on the sites:\n {2}deployment hello \(/);
    expect(said).toMatch(/ready: the service runs in all 2 slivers/);
    for (const pid of left) expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')).toBe(false);
    expectNothingLeft(dir);
  }, 200_000);
});
