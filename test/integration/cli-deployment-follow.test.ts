// fedlab deployment show --lines N and --follow against real parts (one site: a real MA and a node
// manager, process driver; a real slice authority; the provider in this process). A service prints 12
// lines and then a tick a second: show prints the last 5 lines of each sliver unless told (--lines 2,
// --lines 0); --follow prints the new ticks and the state changes until the deployment is deleted, and
// exits 0; Ctrl-C ends it quietly; a closed standard output ends it quietly at its next write.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, type Deployment, type DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { cliArgs, runCli } from '../helpers/cli.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';

const A = 'plc.test';
const TICKER = 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line-$i; done; i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done';

/** A running `fedlab …` child with its output so far. */
function spawnCli(args: string[]): {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
} {
  const child = spawn(process.execPath, [...cliArgs(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not in ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('fedlab deployment show --lines and --follow', () => {
  let fed: SpFederation;
  let sp: string[];

  const deploy = async (name: string): Promise<Deployment> => {
    const events: DeployResponse[] = [];
    for await (const e of fed.spClient().deploy({
      requestId: `${name}-1`,
      name,
      spec: {
        sliceUrn: '',
        sliceAuthorityUrn: '',
        sliceName: '',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: [siteRequest(A, { count: 1 })],
        expiresAt: undefined,
        steps: [{ name: 'tick', argv: ['sh', '-c', TICKER], env: {}, timeoutMs: 0, service: true }],
      },
    }))
      events.push(e);
    const dep = events[events.length - 1]?.deployment as Deployment;
    expect(dep.state, dep.error).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    return dep;
  };

  beforeAll(async () => {
    fed = await startSpFederation({ sites: [{ domain: A, nodes: 1 }] });
    sp = [
      '--sp',
      fed.spAddress(),
      '--sp-urn',
      fed.home.sp.urn,
      '--cert',
      fed.spAdmin.certPath,
      '--key',
      fed.spAdmin.keyPath,
      '--ca',
      fed.caFile,
    ];
    await deploy('ticker');
    // Until the first lines and a tick are in the record.
    await until(
      async () => {
        const d = (await fed.spClient().getDeployment({ name: 'ticker' })).deployment;
        return d?.targets[0]?.lastOutput.includes('tick-0') === true;
      },
      20_000,
      'the ticker printed',
    );
  }, 120_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
  }, 60_000);

  it('show prints the last 5 output lines of each sliver unless told; --lines 2, --lines 0; a bad --lines is exit 2', async () => {
    const show = await runCli(['deployment', 'show', 'ticker', ...sp]);
    expect(show.code, show.stderr).toBe(0);
    const section = show.stdout.slice(show.stdout.indexOf('\n--- '));
    expect(section).toMatch(/last 5 of \d+ lines \(--lines\)/);
    expect(section.trim().split('\n').slice(1)).toHaveLength(5);
    expect(section).not.toContain('line-1\n');
    const two = await runCli(['deployment', 'show', 'ticker', '--lines', '2', ...sp]);
    expect(two.stdout.slice(two.stdout.indexOf('\n--- ')).trim().split('\n').slice(1)).toHaveLength(2);
    const none = await runCli(['deployment', 'show', 'ticker', '--lines', '0', ...sp]);
    expect(none.code).toBe(0);
    expect(none.stdout).not.toContain('\n--- ');
    expect(none.stdout).toMatch(/SITE\s+SLIVER/);
    const bad = await runCli(['deployment', 'show', 'ticker', '--lines', 'many', ...sp]);
    expect(bad.code).toBe(2);
    // --json keeps every line the provider holds.
    const json = await runCli(['deployment', 'show', 'ticker', '--json', ...sp]);
    expect((JSON.parse(json.stdout) as { targets: { last_output: string[] }[] }).targets[0]?.last_output).toContain('line-1');
  }, 60_000);

  it('--follow prints new output and state changes until the deployment is deleted, then exits 0', async () => {
    await deploy('followed');
    const f = spawnCli(['deployment', 'show', 'followed', '--follow', '--lines', '1', ...sp]);
    await until(async () => /\| tick-\d+/.test(f.out()), 20_000, 'a new tick followed');
    expect(f.out()).toContain('following followed (Ctrl-C to stop)');
    await fed.spClient().deleteDeployment({ name: 'followed', keepSlice: false });
    const code = await within(f.exit, 60_000, 'follow ended');
    expect(code, f.err()).toBe(0);
    expect(f.out()).toMatch(/followed: READY → (DELETING|DELETED)/);
    expect(f.out()).toMatch(/→ DELETED/);
    expect(f.err()).toBe('');
  }, 90_000);

  it('--follow --json prints one JSON line each time the deployment changes', async () => {
    const f = spawnCli(['deployment', 'show', 'ticker', '--follow', '--json', ...sp]);
    await until(async () => f.out().split('\n').filter(Boolean).length >= 2, 20_000, 'two JSON lines');
    f.child.kill('SIGINT');
    expect(await within(f.exit, 10_000, 'follow ended')).toBe(0);
    for (const line of f.out().split('\n').filter(Boolean)) expect((JSON.parse(line) as { name: string }).name).toBe('ticker');
  }, 60_000);

  it('Ctrl-C ends --follow quietly; so does a closed standard output', async () => {
    const f = spawnCli(['deployment', 'show', 'ticker', '--follow', ...sp]);
    await until(async () => f.out().includes('following ticker'), 20_000, 'following');
    f.child.kill('SIGINT');
    expect(await within(f.exit, 10_000, 'follow ended on SIGINT')).toBe(0);
    expect(f.err()).toBe('');

    const closed = spawnCli(['deployment', 'show', 'ticker', '--follow', ...sp]);
    await until(async () => closed.out().includes('following ticker'), 20_000, 'following');
    closed.child.stdout.destroy();
    // The next tick is written to the closed pipe: the command ends, no EPIPE on stderr.
    expect(await within(closed.exit, 20_000, 'follow ended on a closed stdout')).toBe(0);
    expect(closed.err()).not.toMatch(/EPIPE|Error/);
  }, 60_000);
});
