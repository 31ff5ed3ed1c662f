// `fedlab sliver ls|show|start|stop|renew` against a real node manager (process driver): as the node's
// operator with the owner → MA chain, and as the slice's provider with its slice credential; table and
// --json output, a profile filling --tls-dir, and refusals (no such sliver, a chain the caller does not
// hold, a renewal past the chain's lifetime, bad input) as JSON error objects with exit 1 and 2.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { createSliver, DOMAIN, sliceChain, startNodeManager, type NmHarness } from '../helpers/node-manager.js';

const SLICE = `urn:fedlab:${DOMAIN}:slice:s1`;
const SLIVER = `urn:fedlab:${DOMAIN}:sliver:cli1`;
let h: NmHarness;
let dir: string;
/** The node's operator: the MA's certificate and the owner → MA chain. */
let operator: string[];
/** The slice's provider: its certificate and the slice credential SA → SP. */
let provider: string[];

const env = (): NodeJS.ProcessEnv => ({ XDG_CONFIG_HOME: join(dir, 'config'), FEDLAB_PROFILE: '' });

function sliver(args: string[]): Promise<CliResult> {
  return runCli(['sliver', ...args], { env: env(), timeoutMs: 60_000 });
}

function json(r: CliResult): Record<string, unknown> {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** The JSON error object of a failed run, with its exit code checked. */
function failure(r: CliResult, exitCode: number, code: RegExp): Record<string, unknown> {
  expect(r.code, r.stderr).toBe(exitCode);
  expect(r.stdout).toBe('');
  const err = JSON.parse(r.stderr.trim().split('\n').pop() as string) as Record<string, unknown>;
  expect(Object.keys(err).sort()).toEqual(['code', 'link', 'message', 'node', 'rule', 'site']);
  expect(err.code).toMatch(code);
  return err;
}

beforeAll(async () => {
  h = await startNodeManager({ driver: 'process' });
  await createSliver(h, 'cli1');
  dir = mkdtempSync(join(tmpdir(), 'fedlab-sliver-cli-'));
  const p = h.parties;
  writeFileSync(join(dir, 'owner.chain'), `${p.ownerChain.join('\n')}\n`);
  writeFileSync(join(dir, 'slice.chain'), `${(await sliceChain(SLICE, { ttlSeconds: 10 * 86_400 })).join('\n')}\n`);
  operator = ['--node', h.address, '--tls-dir', p.ma.dir, '--chain', join(dir, 'owner.chain')];
  provider = ['--node', h.address, '--tls-dir', p.sp.dir, '--chain', join(dir, 'slice.chain')];
}, 60_000);

afterAll(async () => {
  await h?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fedlab sliver', () => {
  it("ls: the node's slivers for its operator, one slice's for its provider; a table with a singular count, and JSON", async () => {
    const table = await sliver(['ls', ...operator]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^SLIVER\s+SLICE\s+ALLOCATION\s+OPERATIONAL\s+EXPIRES/);
    expect(table.stdout).toMatch(new RegExp(`${SLIVER}\\s+${SLICE}\\s+PROVISIONED\\s+(READY|CONFIGURING)`));
    expect(table.stdout).toMatch(/^1 sliver$/m);
    expect(table.stdout).not.toMatch(/ALLOCATION_STATE_|OPERATIONAL_STATE_/);

    const all = json(await sliver(['ls', ...operator, '--json'])).slivers as { urn: string }[];
    expect(all.map((s) => s.urn)).toEqual([SLIVER]);
    const mine = json(await sliver(['ls', ...provider, '--slice', SLICE, '--json'])).slivers as { urn: string }[];
    expect(mine.map((s) => s.urn)).toEqual([SLIVER]);

    // A slice credential reads only its slice's slivers: without --slice, refused.
    failure(await sliver(['ls', ...provider, '--json']), 1, /^(UNAUTHENTICATED|PERMISSION_DENIED)$/);
    // A --slice that is not a slice URN is bad input.
    failure(await sliver(['ls', ...provider, '--slice', 'nope', '--json']), 2, /^INVALID_ARGUMENT$/);
  });

  it('a profile fills --tls-dir; explicit flags win', async () => {
    const add = await runCli(['profile', 'add', 'op', '--tls-dir', h.parties.ma.dir], { env: env() });
    expect(add.code, add.stderr).toBe(0);
    const noTls = ['--node', h.address, '--chain', join(dir, 'owner.chain')];
    const viaProfile = json(await sliver(['ls', ...noTls, '--profile', 'op', '--json']));
    expect((viaProfile.slivers as unknown[]).length).toBe(1);
    // Without TLS material (no profile) it is bad input.
    failure(await sliver(['ls', ...noTls, '--json']), 2, /^INVALID_ARGUMENT$/);
    // The provider's own --tls-dir wins over the profile's: the owner's chain is not the provider's to show.
    failure(
      await sliver(['ls', ...noTls, '--profile', 'op', '--tls-dir', h.parties.sp.dir, '--json']),
      1,
      /^(UNAUTHENTICATED|PERMISSION_DENIED)$/,
    );
  });

  it("a profile's sliver chain and CA fill --chain and --ca of sliver commands (a member's profile), not of others", async () => {
    const p = h.parties;
    const add = await runCli(
      ['profile', 'add', 'member', '--tls-dir', p.sp.dir, '--ca', join(p.sp.dir, 'ca.pem'), '--sliver-chain', join(dir, 'slice.chain')],
      { env: env() },
    );
    expect(add.code, add.stderr).toBe(0);
    const shown = json(await runCli(['profile', 'show', 'member', '--json'], { env: env() }));
    expect(shown).toMatchObject({ profile: { ca: join(p.sp.dir, 'ca.pem'), sliver_chain: join(dir, 'slice.chain') } });
    const viaProfile = json(await sliver(['show', '--node', h.address, '--sliver', SLIVER, '--profile', 'member', '--json']));
    expect((viaProfile.sliver as { urn: string }).urn).toBe(SLIVER);
    // An explicit --chain wins: the owner's chain is not the provider's to show.
    failure(
      await sliver(['show', '--node', h.address, '--sliver', SLIVER, '--profile', 'member', '--chain', join(dir, 'owner.chain'), '--json']),
      1,
      /^(UNAUTHENTICATED|PERMISSION_DENIED)$/,
    );
    // A CA file that names no CA of the node is used, and the call fails to connect (the profile's --ca is read).
    const wrong = await runCli(['profile', 'add', 'wrong-ca', '--tls-dir', p.sp.dir, '--ca', join(dir, 'slice.chain')], { env: env() });
    expect(wrong.code, wrong.stderr).toBe(0);
    const r = await sliver([
      'show',
      '--node',
      h.address,
      '--sliver',
      SLIVER,
      '--profile',
      'wrong-ca',
      '--chain',
      join(dir, 'slice.chain'),
      '--json',
    ]);
    expect(r.code).not.toBe(0);
  });

  it('show: one sliver in detail and as JSON; no such sliver and a chain held by someone else are refused', async () => {
    const text = await sliver(['show', ...provider, '--sliver', SLIVER]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^sliver:\\s+${SLIVER}$`, 'm'));
    expect(text.stdout).toMatch(/^state:\s+PROVISIONED\/(READY|CONFIGURING)$/m);
    expect(text.stdout).not.toMatch(/_STATE_/);
    const shown = json(await sliver(['show', ...operator, '--sliver', SLIVER, '--json'])).sliver as Record<string, unknown>;
    expect(shown.urn).toBe(SLIVER);
    expect(shown.sliceUrn).toBe(SLICE);

    const missing = failure(
      await sliver(['show', ...operator, '--sliver', `urn:fedlab:${DOMAIN}:sliver:nosuch`, '--json']),
      1,
      /^NOT_FOUND$/,
    );
    expect(missing.message).toMatch(/nosuch/);
    const plain = await sliver(['show', ...operator, '--sliver', `urn:fedlab:${DOMAIN}:sliver:nosuch`]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/^fedlab: could not read urn:fedlab:plc\.test:sliver:nosuch: /);

    // The slice credential names the provider; the operator's certificate cannot show it.
    const stolen = ['--node', h.address, '--tls-dir', h.parties.ma.dir, '--chain', join(dir, 'slice.chain')];
    failure(await sliver(['show', ...stolen, '--sliver', SLIVER, '--json']), 1, /^(UNAUTHENTICATED|PERMISSION_DENIED)$/);
    failure(await sliver(['show', ...operator, '--sliver', 'not-a-urn', '--json']), 2, /^INVALID_ARGUMENT$/);
  });

  it('stop and start: the sliver after each, as text and JSON', async () => {
    const stopped = await sliver(['stop', ...provider, '--sliver', SLIVER]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(new RegExp(`^stopped ${SLIVER}: PROVISIONED/(STOPPED|STOPPING)\\n$`));
    const shown = json(await sliver(['show', ...provider, '--sliver', SLIVER, '--json'])).sliver as Record<string, unknown>;
    expect(shown.operationalState).toMatch(/OPERATIONAL_STATE_(STOPPED|STOPPING)/);

    const started = json(await sliver(['start', ...operator, '--sliver', SLIVER, '--json']));
    expect(started.action).toBe('start');
    expect((started.sliver as Record<string, unknown>).operationalState).toMatch(/OPERATIONAL_STATE_(READY|CONFIGURING)/);

    failure(await sliver(['stop', ...operator, '--sliver', `urn:fedlab:${DOMAIN}:sliver:nosuch`, '--json']), 1, /^NOT_FOUND$/);
  });

  it("renew: --ttl and --expires move the expiry; past the chain's lifetime is refused naming the rule; a bad --expires is usage", async () => {
    const text = await sliver(['renew', ...provider, '--sliver', SLIVER, '--ttl', '2d']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^renewed ${SLIVER}: expires \\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z\\n$`));

    const at = new Date(Date.now() + 3 * 86_400_000);
    at.setUTCMilliseconds(0);
    const renewed = json(await sliver(['renew', ...provider, '--sliver', SLIVER, '--expires', at.toISOString(), '--json']));
    expect((renewed.sliver as Record<string, unknown>).expiresAt).toBe(at.toISOString());

    // The slice credential lives 10 days: 20 days is past it.
    const far = failure(await sliver(['renew', ...provider, '--sliver', SLIVER, '--ttl', '20d', '--json']), 1, /^PERMISSION_DENIED$/);
    expect(far.rule).toBe('lifetime');

    const bad = failure(
      await sliver(['renew', ...provider, '--sliver', SLIVER, '--expires', 'tomorrow', '--json']),
      2,
      /^INVALID_ARGUMENT$/,
    );
    expect(bad.message).toMatch(/--expires/);
    failure(
      await sliver(['renew', ...provider, '--sliver', SLIVER, '--expires', '2001-01-01T00:00:00Z', '--json']),
      2,
      /^INVALID_ARGUMENT$/,
    );
    failure(await sliver(['renew', ...provider, '--sliver', SLIVER, '--json']), 2, /^INVALID_ARGUMENT$/);
    // A missing required flag is a usage error too, as a JSON object.
    const usage = failure(
      await sliver(['renew', '--node', h.address, '--chain', join(dir, 'slice.chain'), '--ttl', '1d', '--json']),
      2,
      /^USAGE$/,
    );
    expect(usage.message).toMatch(/--sliver/);
  });
});
