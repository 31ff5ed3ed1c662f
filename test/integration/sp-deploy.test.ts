// The service provider end to end with real parts: two sites of different domains and styles, each a real
// MA with real node managers (process driver); a real slice authority; the provider as `fedlab serve sp`
// (a child process, so it can be killed with -9). Deploys across both sites through the SA, restarts a
// failing service with capped back-off, delegates a member chain that can exec and read but nothing
// more, survives kill -9 of the provider, and deletes everything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliverAction } from '../../services/generated/fedlab/v1/node_manager.js';
import {
  DeploymentState,
  ServiceState,
  type Deployment,
  type DeployResponse,
} from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { runCli } from '../helpers/cli.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';

const A = 'plc.test';
// A sleep length no other test uses, so that the service's processes can be counted on this machine.
const SLEEP = `600.${process.pid}`;
const running = (): number => {
  const r = spawnSync('pgrep', ['-f', `^sleep ${SLEEP.replace('.', '\\.')}$`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).length;
};
const B = 'pg.test';

const site = (domain: string, count: number) => siteRequest(domain, { count });

function step(name: string, argv: string[], service: boolean, env: Record<string, string> = {}) {
  return { name, argv, env, timeoutMs: 0, service };
}

async function collect(stream: AsyncIterable<DeployResponse>): Promise<DeployResponse[]> {
  const out: DeployResponse[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<{ code: number; details: string; rule: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; details: string; metadata?: { get(k: string): unknown[] } };
    return { code: e.code, details: e.details, rule: String(e.metadata?.get('fedlab-rule')[0] ?? '') };
  }
  throw new Error('expected the call to fail');
}

describe('service provider', () => {
  let fed: SpFederation;
  let web: Deployment;

  beforeAll(async () => {
    fed = await startSpFederation({
      sites: [
        { domain: A, nodes: 2 },
        { domain: B, nodes: 1, style: 'protogeni' },
      ],
      child: true,
    });
  }, 180_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
  }, 60_000);

  const get = async (name: string) => (await fed.spClient().getDeployment({ name })).deployment as Deployment;

  it('registers with every site, accepting its terms with a signed statement', async () => {
    for (const s of fed.sites)
      await until(() => s.ma?.providers.isRegistered(fed.home.sp.urn) ?? false, 15_000, `registered at ${s.parties.domain}`);
  }, 30_000);

  it('deploys across two sites through the slice authority and runs the service in every sliver', async () => {
    const webReq = {
      requestId: 'web-1',
      name: 'web',
      spec: {
        sliceUrn: '',
        sliceAuthorityUrn: '',
        sliceName: '',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: [site(A, 2), site(B, 1)],
        expiresAt: undefined,
        steps: [
          step('setup', ['sh', '-c', 'echo setup done'], false),
          step('serve', ['sh', '-c', `echo "hello $GREETING"; exec sleep ${SLEEP}`], true, { GREETING: 'world' }),
        ],
      },
    };
    const events = await collect(fed.spClient().deploy(webReq));
    const last = events[events.length - 1] as DeployResponse;
    expect(events[0]?.deployment).toBeDefined();
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => (events[0]?.sequence ?? 0) + i));
    expect(last.deployment?.state, last.deployment?.error).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    web = last.deployment as Deployment;
    expect(web.sliceUrn).toMatch(/^urn:fedlab:plc\.test:slice:web$/);
    expect(web.targets.map((t) => t.site).sort()).toEqual([A, A, B].sort());
    // Per-sliver progress was streamed.
    expect(new Set(events.filter((e) => e.sliverUrn).map((e) => e.sliverUrn)).size).toBe(3);
    await until(
      async () =>
        (await get('web')).targets.every(
          (t) => t.serviceState === ServiceState.SERVICE_STATE_RUNNING && t.lastOutput.includes('hello world'),
        ),
      15_000,
      'hello world on every sliver',
    );
    expect(running()).toBe(3);
    const now = await get('web');
    for (const t of now.targets) {
      expect(t.stepsDone).toBe(1);
      expect(t.lastOutput).toContain('setup done');
      expect(t.nodeEndpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    }
    // The same request id re-attaches to the same deployment; the name with another request is taken.
    const again = await collect(fed.spClient().deploy(webReq));
    expect(again).toHaveLength(1);
    expect(again[0]?.deployment?.state).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    const taken = await rejection(collect(fed.spClient().deploy({ ...webReq, requestId: 'web-2' })));
    expect(taken.code).toBe(status.ALREADY_EXISTS);
    const reused = await rejection(collect(fed.spClient().deploy({ ...webReq, name: 'other' })));
    expect(reused.code).toBe(status.ALREADY_EXISTS);
    const slice = (await fed.saClient().getSlice({ sliceUrn: web.sliceUrn })).slice;
    expect(slice?.state).toBe(SliceState.SLICE_STATE_READY);
  }, 90_000);

  it('restarts a service that exits non-zero, with a doubling back-off capped at the maximum', async () => {
    const events = await collect(
      fed.spClient().deploy({
        requestId: 'flaky-1',
        name: 'flaky',
        spec: {
          sliceUrn: '',
          sliceAuthorityUrn: '',
          sliceName: '',
          mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
          sites: [site(A, 1)],
          expiresAt: undefined,
          steps: [step('crash', ['sh', '-c', 'echo boom; exit 3'], true)],
        },
      }),
    );
    expect(events[events.length - 1]?.deployment?.targets.length).toBe(1);
    const delaysOf = (lines: readonly string[]) =>
      lines
        .map((l) => /restarting in (\d+) ms/.exec(l)?.[1])
        .filter(Boolean)
        .map(Number);
    // (Output reaches the record a little after the restart count.)
    await until(async () => delaysOf((await get('flaky')).targets[0]?.lastOutput ?? []).length >= 4, 20_000, 'four restarts');
    const t = (await get('flaky')).targets[0];
    expect(t?.restarts).toBeGreaterThanOrEqual(4);
    expect(t?.lastExit).toBe('exit code 3');
    expect(t?.lastOutput).toContain('boom');
    expect(delaysOf(t?.lastOutput ?? []).slice(0, 4)).toEqual([200, 400, 800, 800]);
  }, 60_000);

  it('gives a member a chain that can exec and read on the nodes, and nothing more', async () => {
    const sp = fed.spClient();
    const member = fed.member;
    await sp.addMember({ requestId: 'bob-1', memberUrn: member.urn, certificatePem: member.certPem, displayName: 'Bob' });
    const res = await sp.delegateToMember({
      sshPublicKey: '',
      requestId: 'bob-web',
      memberUrn: member.urn,
      sliceUrn: web.sliceUrn,
      privileges: [],
      targets: [],
      limits: undefined,
      ttlS: 3600,
      maxDelegations: 0,
    });
    expect(res.chain).toHaveLength(2);
    // The same request id returns the same chain.
    const again = await sp.delegateToMember({
      sshPublicKey: '',
      requestId: 'bob-web',
      memberUrn: member.urn,
      sliceUrn: web.sliceUrn,
      privileges: [],
      targets: [],
      limits: undefined,
      ttlS: 3600,
      maxDelegations: 0,
    });
    expect(again.jti).toBe(res.jti);

    const target = web.targets.find((t) => t.site === B) as Deployment['targets'][number];
    const nm = fed.nodeClient(target.nodeEndpoint, target.nodeUrn, member);
    let out = '';
    let exit: unknown;
    for await (const m of nm.exec(
      { sliverUrn: target.sliverUrn, argv: ['sh', '-c', 'echo member was here'], env: {}, timeoutMs: 5000 },
      { chain: res.chain },
    )) {
      if (m.chunk?.$case === 'stdout') out += m.chunk.stdout.toString();
      if (m.chunk?.$case === 'exit') exit = m.chunk.exit.status;
    }
    expect(out).toBe('member was here\n');
    expect(exit).toEqual({ $case: 'code', code: 0 });
    const logs = await nm.getSliverOutput({ sliverUrn: target.sliverUrn, lines: 10 }, { chain: res.chain });
    expect(logs.lines).toContain('hello world');
    const sliver = await nm.getSliver({ sliverUrn: target.sliverUrn }, { chain: res.chain });
    expect(sliver.sliver?.urn).toBe(target.sliverUrn);

    // Beyond its privileges: PERMISSION_DENIED naming the rule.
    const stop = await rejection(
      nm.controlSliver({ sliverUrn: target.sliverUrn, action: SliverAction.SLIVER_ACTION_STOP }, { chain: res.chain }),
    );
    expect(stop.code).toBe(status.PERMISSION_DENIED);
    expect(stop.rule).toBe('grant-privilege');
    const del = await rejection(fed.spClient(member).deleteDeployment({ name: 'web', keepSlice: false }));
    expect(del.code).toBe(status.PERMISSION_DENIED);
    // The member may read the provider's deployments (a reader), not change them.
    expect((await fed.spClient(member).getDeployment({ name: 'web' })).deployment?.name).toBe('web');
    // Widenings are refused by the credentials library, naming the rule.
    const wider = await rejection(
      sp.delegateToMember({
        sshPublicKey: '',
        requestId: 'bob-wide',
        memberUrn: member.urn,
        sliceUrn: web.sliceUrn,
        privileges: ['sliver.delete'],
        targets: [],
        limits: undefined,
        ttlS: 0,
        maxDelegations: 0,
      }),
    );
    expect(wider.code).toBe(status.PERMISSION_DENIED);
    expect(wider.details).toMatch(/rule priv/);
    const deeper = await rejection(
      sp.delegateToMember({
        sshPublicKey: '',
        requestId: 'bob-deep',
        memberUrn: member.urn,
        sliceUrn: web.sliceUrn,
        privileges: [],
        targets: [],
        limits: undefined,
        ttlS: 0,
        maxDelegations: 1,
      }),
    );
    expect(deeper.code).toBe(status.PERMISSION_DENIED);
    expect(deeper.details).toMatch(/rule dlg/);
    const stranger = await rejection(
      sp.delegateToMember({
        sshPublicKey: '',
        requestId: 'x-1',
        memberUrn: `urn:fedlab:${A}:user:nobody`,
        sliceUrn: web.sliceUrn,
        privileges: [],
        targets: [],
        limits: undefined,
        ttlS: 0,
        maxDelegations: 0,
      }),
    );
    expect(stranger.code).toBe(status.NOT_FOUND);

    // The same through the CLI: exec exits with the command's code; logs prints the service's output.
    const chainFile = join(fed.dir, 'bob.chain');
    writeFileSync(chainFile, `${res.chain.join('\n')}\n`);
    const tlsFlags = ['--cert', member.certPath, '--key', member.keyPath, '--ca', fed.caFile];
    const ex = await runCli(
      [
        'sliver',
        'exec',
        '--node',
        target.nodeEndpoint,
        '--sliver',
        target.sliverUrn,
        '--chain',
        chainFile,
        ...tlsFlags,
        '--',
        'sh',
        '-c',
        'echo out; echo err >&2; exit 7',
      ],
      { timeoutMs: 30_000 },
    );
    expect(ex.stdout).toBe('out\n');
    // (Node may warn about TLS server names that are IP addresses; that is not the command's output.)
    expect(ex.stderr.replace(/^.*(DeprecationWarning|--trace-deprecation).*\n/gm, '')).toBe('err\n');
    expect(ex.code).toBe(7);
    const lg = await runCli(
      ['sliver', 'logs', '--node', target.nodeEndpoint, '--sliver', target.sliverUrn, '--chain', chainFile, ...tlsFlags, '--lines', '50'],
      { timeoutMs: 30_000 },
    );
    expect(lg.code, lg.stderr).toBe(0);
    expect(lg.stdout).toContain('hello world');
  }, 90_000);

  it('resumes supervision after kill -9 of the provider', async () => {
    const before = await get('flaky');
    const restarts = before.targets[0]?.restarts ?? 0;
    const hellos = (t: Deployment['targets'][number]) => t.lastOutput.filter((l) => l === 'hello world').length;
    const webBefore = await get('web');
    await fed.kill9Sp();
    await fed.startSp();
    // Every web sliver runs its service again (a new run: one more "hello world"); the setup step is not run again.
    await until(
      async () => {
        const d = await get('web');
        return d.targets.every(
          (t) =>
            t.serviceState === ServiceState.SERVICE_STATE_RUNNING &&
            hellos(t) > hellos(webBefore.targets.find((x) => x.sliverUrn === t.sliverUrn) as never),
        );
      },
      20_000,
      'web resumed',
    );
    const d = await get('web');
    for (const t of d.targets) expect(t.lastOutput.filter((l) => l === 'setup done')).toHaveLength(1);
    // The runs of the killed provider were killed by their nodes when its calls broke: one run per sliver.
    await until(() => running() === 3, 10_000, 'one service process per sliver');
    expect(d.state).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    await until(async () => ((await get('flaky')).targets[0]?.restarts ?? 0) >= restarts + 2, 20_000, 'flaky restarted again');
  }, 150_000);

  it('kill -9 of the provider in the middle of creating the slice: the restarted provider finishes with the same slice', async () => {
    const stream = fed.spClient().deploy({
      requestId: 'mid-1',
      name: 'mid',
      spec: {
        sliceUrn: '',
        sliceAuthorityUrn: '',
        sliceName: '',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: [site(A, 1), site(B, 1)],
        expiresAt: undefined,
        steps: [step('serve', ['sleep', '300'], true)],
      },
    });
    try {
      for await (const e of stream) if (e.state === DeploymentState.DEPLOYMENT_STATE_CREATING_SLICE) break;
    } catch {
      // The stream breaks with the provider.
    }
    await fed.kill9Sp();
    await fed.startSp();
    await until(async () => (await get('mid')).state === DeploymentState.DEPLOYMENT_STATE_READY, 30_000, 'mid READY after the restart');
    const slices = (
      await fed.saClient().listSlices({ pageSize: 0, pageToken: '', state: SliceState.SLICE_STATE_UNSPECIFIED })
    ).slices.filter((x) => x.urn.endsWith(':slice:mid'));
    expect(slices).toHaveLength(1);
    expect(slices[0]?.requestId).toBe('deploy.mid-1');
    await fed.spClient().deleteDeployment({ name: 'mid', keepSlice: false });
  }, 150_000);

  it('DeleteDeployment stops the services and deletes the slice on every site; again is a no-op', async () => {
    const sp = fed.spClient();
    const res = await sp.deleteDeployment({ name: 'web', keepSlice: false });
    expect(res.deployment?.state).toBe(DeploymentState.DEPLOYMENT_STATE_DELETED);
    expect(res.deployment?.targets.every((t) => t.serviceState === ServiceState.SERVICE_STATE_STOPPED)).toBe(true);
    const slice = (await fed.saClient().getSlice({ sliceUrn: web.sliceUrn })).slice;
    expect([SliceState.SLICE_STATE_DELETED, SliceState.SLICE_STATE_DELETING]).toContain(slice?.state);
    await until(async () => !(await fed.sliversOnNodes()).some(([, s]) => s === web.sliceUrn), 15_000, 'no sliver of web on any node');
    await until(() => running() === 0, 10_000, 'no service process left');
    const again = await sp.deleteDeployment({ name: 'web', keepSlice: false });
    expect(again.deployment?.state).toBe(DeploymentState.DEPLOYMENT_STATE_DELETED);
    expect(
      (await sp.listDeployments({ pageSize: 0, pageToken: '', state: DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED })).deployments.map(
        (x) => x.name,
      ),
    ).toEqual(['flaky']);
    await sp.deleteDeployment({ name: 'flaky', keepSlice: false });
    await until(async () => (await fed.sliversOnNodes()).length === 0, 15_000, 'no sliver left');
    const missing = await rejection(sp.deleteDeployment({ name: 'nothing', keepSlice: false }));
    expect(missing.code).toBe(status.NOT_FOUND);
  }, 60_000);

  it('fedlab deploy shows per-sliver progress and exits 0 when ready; deployment show and delete', async () => {
    const tlsFlags = ['--cert', fed.spAdmin.certPath, '--key', fed.spAdmin.keyPath, '--ca', fed.caFile, '--sp-urn', fed.home.sp.urn];
    const dep = await runCli(
      [
        'deploy',
        '--sp',
        fed.spAddress(),
        ...tlsFlags,
        '--name',
        'cli-app',
        '--site',
        `${A}=1`,
        '--site',
        `${B}=1`,
        '--env',
        'WHO=cli',
        '--',
        'sh',
        '-c',
        'echo "up $WHO"; exec sleep 600',
      ],
      {
        timeoutMs: 60_000,
      },
    );
    expect(dep.code, dep.stderr).toBe(0);
    expect(dep.stdout).toMatch(/READY/);
    expect(dep.stdout).toMatch(/SITE\s+SLIVER/);
    const show = await runCli(['deployment', 'show', 'cli-app', '--sp', fed.spAddress(), ...tlsFlags, '--json'], { timeoutMs: 30_000 });
    expect(show.code, show.stderr).toBe(0);
    expect((JSON.parse(show.stdout) as { targets: unknown[] }).targets).toHaveLength(2);
    const bad = await runCli(['deploy', '--sp', fed.spAddress(), ...tlsFlags, '--name', 'Bad Name', '--site', A, '--', 'true'], {
      timeoutMs: 30_000,
    });
    expect(bad.code).toBe(2);
    const del = await runCli(['deployment', 'delete', 'cli-app', '--sp', fed.spAddress(), ...tlsFlags], { timeoutMs: 60_000 });
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toMatch(/DELETED/);
  }, 120_000);
});
