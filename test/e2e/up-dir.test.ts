// `fedlab up` without starting a federation: what it does with its directory (make, reuse, refuse),
// its flags, and when it calls a federation ready. Fast: no service process is started.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalFederation } from '../../cli/up/federation.js';
import { parseSites, readState, writeState, STATE_FILE } from '../../cli/up/plan.js';
import { readiness, type FederationStatus } from '../../cli/up/status.js';
import { InvalidArgumentError, FailedPreconditionError } from '../../services/core/errors.js';
import { OperationalState } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, ServiceState, type Deployment } from '../../services/generated/fedlab/v1/service_provider.js';
import { snapshotTree } from '../helpers/pki.js';
import { cliArgs, runCli } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'fedlab-updir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fedlab up: its directory', () => {
  it('makes the PKI and the plan in a fresh directory, then refuses to start over a set-up that did not finish', async () => {
    const dir = join(root, 'fresh');
    const fed = await LocalFederation.open({ dir, nodes: 2, fedlabArgs: cliArgs(), driver: 'process' });
    expect(fed.fresh).toBe(true);
    const state = readState(dir);
    expect(state?.sites.map((s) => s.domain)).toEqual(['plc.test', 'emu.test', 'geni.test']);
    expect(state?.sites.every((s) => s.nodes.length === 2)).toBe(true);
    expect(state?.home).toBe('plc.test');
    // Every port of the plan is distinct.
    const ports = [
      state?.sa_port,
      state?.sp_port,
      ...(state?.sites.flatMap((s) => [s.ma_port, s.enrol_port, s.bundle_port, ...s.nodes.map((n) => n.port)]) ?? []),
    ];
    expect(new Set(ports).size).toBe(ports.length);
    for (const d of ['plc.test', 'emu.test', 'geni.test'])
      expect(readdirSync(join(dir, d)).sort()).toEqual(expect.arrayContaining(['admin', 'bundle.json', 'ca', 'ma', 'owner']));
    expect(readdirSync(join(dir, 'plc.test'))).toEqual(expect.arrayContaining(['sa', 'sp', 'operator', 'member']));
    // Nodes are not enrolled yet, so the set-up is not complete: a second run refuses and changes nothing.
    const before = snapshotTree(dir);
    await expect(LocalFederation.open({ dir, nodes: 2, fedlabArgs: cliArgs(), driver: 'process' })).rejects.toThrow(
      /did not finish; remove the directory/,
    );
    expect(snapshotTree(dir)).toEqual(before);
  });

  it('refuses another --sites or --nodes, a running federation, and a directory that is not its own', async () => {
    const dir = join(root, 'complete');
    await LocalFederation.open({ dir, nodes: 1, fedlabArgs: cliArgs(), driver: 'process' });
    const state = readState(dir);
    if (!state) throw new Error('no state written');
    writeState(dir, { ...state, complete: true });
    const before = snapshotTree(dir);
    await expect(LocalFederation.open({ dir, nodes: 3, driver: 'process' })).rejects.toThrow(InvalidArgumentError);
    await expect(LocalFederation.open({ dir, nodes: 1, sites: ['planetlab'], driver: 'process' })).rejects.toThrow(
      /holds a federation of planetlab,emulab,protogeni with 1 nodes per site/,
    );
    // A live `fedlab serve` of this directory (a previous run still going): refused, naming its pid.
    const fake = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'serve', join(dir, 'plc.test/ma.json')], {
      stdio: 'ignore',
    });
    try {
      writeState(dir, { ...state, complete: true, pids: [fake.pid as number] });
      await expect(LocalFederation.open({ dir, nodes: 1, driver: 'process' })).rejects.toThrow(FailedPreconditionError);
      await expect(LocalFederation.open({ dir, nodes: 1, driver: 'process' })).rejects.toThrow(
        new RegExp(`still runs \\(processes ${fake.pid}\\)`),
      );
    } finally {
      fake.kill('SIGKILL');
    }
    writeState(dir, { ...state, complete: true });
    expect(snapshotTree(dir)).toEqual(before);
    // Gone: reused.
    const again = await LocalFederation.open({ dir, nodes: 1, driver: 'process' });
    expect(again.fresh).toBe(false);

    const other = join(root, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'mine');
    await expect(LocalFederation.open({ dir: other, driver: 'process' })).rejects.toThrow(/is not a fedlab up directory/);
    expect(readdirSync(other)).toEqual(['notes.txt']);
    writeFileSync(join(other, STATE_FILE), '{"v": 2}');
    await expect(LocalFederation.open({ dir: other, driver: 'process' })).rejects.toThrow(/is not a fedlab up state file/);
  });

  it('checks its flags', async () => {
    expect(parseSites('emulab, planetlab')).toEqual(['emulab', 'planetlab']);
    expect(() => parseSites('planetlab,orbit')).toThrow(/unknown site style "orbit"/);
    expect(() => parseSites('emulab,emulab')).toThrow(/names emulab twice/);
    expect(() => parseSites(',')).toThrow(/at least one/);
    const dir = join(root, 'flags');
    const res = await runCli(['up', '--dir', dir, '--nodes', '0'], { timeoutMs: 60_000 });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--nodes must be a positive whole number/);
    const res2 = await runCli(['up', '--dir', dir, '--sites', 'planetlab,orbit'], { timeoutMs: 60_000 });
    expect(res2.code).toBe(2);
    expect(res2.stderr).toMatch(/unknown site style "orbit"/);
    expect(() => readdirSync(dir)).toThrow();
  });
});

describe('fedlab up: when it is ready', () => {
  const target = (site: string, over: Partial<Deployment['targets'][number]> = {}): Deployment['targets'][number] => ({
    sliverUrn: `urn:fedlab:${site}:sliver:s1`,
    nodeUrn: `urn:fedlab:${site}:node:n1`,
    site,
    stepsDone: 1,
    status: { code: 0, reason: '' },
    serviceState: ServiceState.SERVICE_STATE_RUNNING,
    restarts: 0,
    lastOutput: ['hello'],
    lastExit: '',
    nodeEndpoint: 'localhost:1',
    ...over,
  });
  const status = (targets: Deployment['targets'], over: Partial<FederationStatus> = {}): FederationStatus => ({
    at: new Date(),
    sites: ['a.test', 'b.test'].map((d) => ({ domain: d, style: 'planetlab', address: 'localhost:1', up: 1, total: 1 })),
    errors: [],
    deployment: {
      name: 'hello',
      sliceUrn: 'urn:fedlab:a.test:slice:hello',
      state: DeploymentState.DEPLOYMENT_STATE_READY,
      targets,
      error: '',
      requestId: 'r',
    },
    slice: {
      urn: 'urn:fedlab:a.test:slice:hello',
      slivers: targets.map((t) => ({ urn: t.sliverUrn, operationalState: OperationalState.OPERATIONAL_STATE_READY })),
    } as unknown as FederationStatus['slice'],
    ...over,
  });

  it('is ready only when every sliver is READY and its service RUNNING and printing, on every site with every node UP', () => {
    expect(readiness(status([target('a.test'), target('b.test')]), 2)).toEqual({ ready: true, problems: [] });
    expect(readiness(status([target('a.test')]), 2).problems).toContain('1 of 2 slivers');
    expect(
      readiness(
        status([
          target('a.test'),
          target('b.test', { serviceState: ServiceState.SERVICE_STATE_BACKOFF, status: { code: 14, reason: 'node down' } }),
        ]),
        2,
      ).problems,
    ).toEqual(['b.test s1: service BACKOFF (node down)']);
    expect(readiness(status([target('a.test'), target('b.test', { lastOutput: [] })]), 2).problems).toEqual([
      'b.test s1: the service has printed nothing yet',
    ]);
    const oneDown = status([target('a.test'), target('b.test')]);
    expect(readiness({ ...oneDown, sites: [{ ...(oneDown.sites[0] as FederationStatus['sites'][number]), up: 0 }] }, 2).problems).toEqual([
      'a.test: 0/1 nodes UP',
    ]);
    expect(readiness({ ...oneDown, deployment: undefined }, 2).problems).toEqual(['no deployment']);
  });
});
