// `fedlab am` against a real protogeni site (an MA with enrolled node managers): one test per Aggregate
// call, as the slice authority with its MA → SA chain, the site named by --address or by a profile;
// --json output parses on success, and a refused call is a JSON error object with exit 1.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newJti } from '../../services/core/credentials/issue.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { disposeParties, enrolNode, siteParties, startSite, until, type Site, type TestNode } from '../helpers/ma-harness.js';

let site: Site;
let nodes: TestNode[] = [];
let dir: string;
let conn: string[];
const SLICE = 'urn:fedlab:amcli.test:slice:omni';
const PROVIDER = 'urn:fedlab:amcli.test:sp:acme';
const env = (): NodeJS.ProcessEnv => ({ XDG_CONFIG_HOME: join(dir, 'config'), FEDLAB_PROFILE: '' });

function am(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(['am', ...args], { env: { ...env(), ...extra }, timeoutMs: 60_000 });
}

function json(r: CliResult): Record<string, unknown> {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function refusal(r: CliResult, code: string): Record<string, unknown> {
  expect(r.code, r.stderr).toBe(1);
  const err = JSON.parse(r.stderr.trim().split('\n').pop() as string) as Record<string, unknown>;
  expect(Object.keys(err).sort()).toEqual(['code', 'link', 'message', 'node', 'rule', 'site']);
  expect(err.code).toBe(code);
  return err;
}

beforeAll(async () => {
  site = await startSite({ style: 'protogeni', parties: await siteParties('amcli.test') });
  nodes = [];
  for (const name of ['a1', 'a2']) nodes.push(await enrolNode(site, { name, driver: 'process' }));
  dir = mkdtempSync(join(tmpdir(), 'fedlab-am-cli-'));
  writeFileSync(join(dir, 'sa.chain'), `${(await site.saChain({ ttlS: 30 * 86_400 })).join('\n')}\n`);
  conn = ['--address', site.address, '--ma-urn', site.parties.maUrn, '--tls-dir', site.parties.sa.dir];
  await until(async () => (site.ma?.registry.all() ?? []).filter((n) => n.up).length === 2, 10_000, 'two nodes UP');
}, 120_000);

afterAll(async () => {
  for (const n of nodes) await n.destroy();
  await site?.destroy();
  await disposeParties();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fedlab am', () => {
  it('getversion: the aggregate, by address and by a profile (FEDLAB_PROFILE or --profile; explicit flags win)', async () => {
    const v = json(await am(['getversion', ...conn, '--json']));
    expect(v.aggregateUrn ?? v.aggregate_urn).toBe(site.parties.maUrn);
    const text = await am(['getversion', ...conn]);
    expect(text.stdout).toMatch(/style:\s+protogeni/);

    const add = await runCli(
      [
        'profile',
        'add',
        'site',
        '--ma',
        site.address,
        '--ma-urn',
        site.parties.maUrn,
        '--tls-dir',
        site.parties.sa.dir,
        '--chain',
        join(dir, 'sa.chain'),
      ],
      { env: env() },
    );
    expect(add.code, add.stderr).toBe(0);
    expect(json(await am(['getversion', '--json'], { FEDLAB_PROFILE: 'site' }))).toMatchObject(v);
    expect(json(await am(['getversion', '--profile', 'site', '--json']))).toMatchObject(v);
    // An explicit --address wins over the profile's: here one where nothing listens.
    const wrong = await am(['getversion', '--profile', 'site', '--address', '127.0.0.1:1', '--json']);
    refusal(wrong, 'UNAVAILABLE');
    // An unknown profile is bad input.
    const unknown = await am(['getversion', '--profile', 'nosuch', '--json']);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stderr).code).toBe('INVALID_ARGUMENT');
  });

  it('listresources: every node, --available, a table and the advertisement document', async () => {
    const all = json(await am(['listresources', ...conn, '--json'])).nodes as { urn: string }[];
    expect(all.map((n) => n.urn).sort()).toEqual(nodes.map((n) => n.urn).sort());
    expect((json(await am(['listresources', ...conn, '--available', '--json'])).nodes as unknown[]).length).toBe(2);
    const table = await am(['listresources', ...conn]);
    expect(table.stdout).toMatch(/^NODE\s+HEALTH\s+FREE/);
    expect(table.stdout).toMatch(/a1\s+UP\s+yes/);
    const doc = await am(['listresources', ...conn, '--document', 'fedlab-rspec+json']);
    expect(doc.code, doc.stderr).toBe(0);
    expect(doc.stdout).toContain(nodes[0]!.urn);
  });

  it('allocate from a request document, then status, describe, provision, poa start|stop, renew, delete', async () => {
    const request = join(dir, 'request.json');
    writeFileSync(request, JSON.stringify({ type: 'request', nodes: [{ client_id: 'web', resources: { mem_mb: 96 } }] }));
    const chain = ['--profile', 'site'];
    const alloc = json(await am(['allocate', ...chain, '--slice', SLICE, '--provider', PROVIDER, '--request', request, '--json']));
    expect((alloc.slivers as unknown[]).length).toBe(1);

    const status = json(await am(['status', SLICE, ...chain, '--json']));
    expect(JSON.stringify(status.slivers)).toMatch(/ALLOCATION_STATE_ALLOCATED/);
    const describe = json(await am(['describe', SLICE, ...chain, '--json']));
    expect(describe.sliceUrn ?? describe.slice_urn).toBe(SLICE);

    const provisioned = json(await am(['provision', SLICE, ...chain, '--json']));
    expect((provisioned.results as unknown[]).length).toBe(1);
    const started = json(await am(['poa', 'start', SLICE, ...chain, '--json']));
    expect((started.results as unknown[]).length).toBe(1);
    const table = await am(['status', SLICE, ...chain]);
    expect(table.stdout).toMatch(/PROVISIONED\s+(READY|CONFIGURING)/);
    expect(table.stdout).not.toMatch(/ALLOCATION_STATE_|OPERATIONAL_STATE_/);
    json(await am(['poa', 'stop', SLICE, ...chain, '--json']));

    const renewed = json(await am(['renew', SLICE, ...chain, '--ttl', '2d', '--json']));
    expect((renewed.results as unknown[]).length).toBe(1);

    // Swap-out is for emulab sites: refused, as a JSON error object naming the status.
    refusal(await am(['poa', 'swap-out', SLICE, ...chain, '--json']), 'FAILED_PRECONDITION');

    const deleted = json(await am(['delete', SLICE, ...chain, '--json']));
    expect((deleted.results as unknown[]).length).toBe(1);
    // Gone: status is refused with NOT_FOUND, as a JSON error object.
    refusal(await am(['status', SLICE, ...chain, '--json']), 'NOT_FOUND');
  });

  it('shutdown: stops a slice at the site and says so in status', async () => {
    const slice = 'urn:fedlab:amcli.test:slice:halt';
    const request = join(dir, 'plain.json');
    writeFileSync(request, JSON.stringify({ nodes: { count: 1 } }));
    json(await am(['allocate', '--profile', 'site', '--slice', slice, '--provider', PROVIDER, '--request', request, '--json']));
    json(await am(['provision', slice, '--profile', 'site', '--start', '--json']));
    const res = json(await am(['shutdown', slice, '--profile', 'site', '--reason', 'test', '--json']));
    expect(res.slice_urn).toBe(slice);
    const st = json(await am(['status', slice, '--profile', 'site', '--json']));
    expect(st.shutDown ?? st.shut_down).toBe(true);
    await am(['delete', slice, '--profile', 'site', '--best-effort']);
  });

  it('refuses a caller without the chain, and bad input, as JSON errors with exit 1 and 2', async () => {
    const noChainHolder = ['--address', site.address, '--ma-urn', site.parties.maUrn, '--tls-dir', site.parties.admin.dir];
    const r = await am(['status', SLICE, ...noChainHolder, '--chain', join(dir, 'sa.chain'), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr).code).toMatch(/^(UNAUTHENTICATED|PERMISSION_DENIED)$/);
    const bad = await am(['status', 'not-a-urn', ...conn, '--chain', join(dir, 'sa.chain'), '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr)).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const usage = await am(['status', SLICE, '--json', '--chain', join(dir, 'sa.chain')]);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toMatchObject({ code: 'USAGE' });
  });
});

describe('fedlab revocations ls', () => {
  it("lists a management authority's revocations (table and --json), and asks for an authority when given none", async () => {
    const jti = newJti();
    await site.maClient().revoke({ jti, keyThumbprint: '', reason: 'cli test' });
    const ma = ['--ma', site.address, '--ma-urn', site.parties.maUrn, '--tls-dir', site.parties.sa.dir];
    const listed = await runCli(['revocations', 'ls', ...ma, '--json'], { env: env() });
    expect(listed.code, listed.stderr).toBe(0);
    const body = JSON.parse(listed.stdout) as { authority: string; version: number; entries: { jti: string; reason: string }[] };
    expect(body.authority).toBe('ma');
    expect(body.version).toBeGreaterThanOrEqual(1);
    expect(body.entries).toEqual(expect.arrayContaining([expect.objectContaining({ jti, reason: 'cli test' })]));
    const text = await runCli(['revocations', 'ls', ...ma], { env: env() });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`management authority .*list version \\d+\\n[\\s\\S]*${jti}`));
    const none = await runCli(['revocations', 'ls', '--tls-dir', site.parties.sa.dir], { env: env() });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/give --sa ADDR or --ma ADDR/);
  });
});
