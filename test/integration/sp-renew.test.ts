// The provider keeps its deployments' slices alive: a real site (MA and a node manager, process driver) whose
// maximum sliver lifetime is a minute, a real slice authority, and the provider in this process, checking
// every 200 ms. A deployment whose slice is made for 8 s is renewed halfway through; the site caps the
// renewal (an hour was asked) and the deployment's renewal note says so; past the slice's first expiry the
// slice is READY at the slice authority, its sliver is on the node and the service has run throughout.
// Also the pure parts: when a slice is due, and what a RenewSlice answer means.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { status } from '@grpc/grpc-js';
import { AllocationState, SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, ServiceState, type Deployment } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceState, type RenewSliceResponse } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { DeploymentRecord } from '../../services/service-provider/records.js';
import { isRenewable, renewalMarginMs, renewalOutcome } from '../../services/service-provider/deployments/slice-renewer.js';
import { runCli } from '../helpers/cli.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';

const A = 'plc.test';
// A sleep length no other test uses, so that the service's processes can be counted on this machine.
const SLEEP = `600.${process.pid}7`;
const running = (): number => {
  const r = spawnSync('pgrep', ['-f', `^sleep ${SLEEP.replace('.', '\\.')}$`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).length;
};

describe('the provider renews the slice of a live deployment', () => {
  let fed: SpFederation;

  beforeAll(async () => {
    fed = await startSpFederation({
      sites: [{ domain: A, nodes: 1, config: { default_sliver_lifetime_s: 60, max_sliver_lifetime_s: 60 } }],
      spConfig: { deployments: { renew_lifetime_s: 3600, renew_check_ms: 200 } },
    });
  }, 120_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
  }, 60_000);

  const get = async (name: string) => (await fed.spClient().getDeployment({ name })).deployment as Deployment;

  it('outlives its slice’s first expiry; the site’s cap is in the renewal note', async () => {
    const firstExpiry = Date.now() + 8_000;
    for await (const _ of fed.spClient().deploy({
      requestId: 'short-1',
      name: 'short',
      spec: {
        sliceUrn: '',
        sliceAuthorityUrn: '',
        sliceName: '',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: [siteRequest(A, { count: 1 })],
        expiresAt: new Date(firstExpiry),
        steps: [{ name: 'serve', argv: ['sleep', SLEEP], env: {}, timeoutMs: 0, service: true }],
      },
    }));
    const made = await get('short');
    expect(made.state).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    // Learned at create, from the slice authority's slice.
    expect(made.sliceExpiresAt?.getTime()).toBe(firstExpiry);
    expect(made.sliceRenewedAt).toBeUndefined();

    // Renewed once half of the slice's life is left: an hour asked, the site's minute granted.
    await until(async () => (await get('short')).sliceRenewedAt !== undefined, 10_000, 'slice renewed');
    const renewed = await get('short');
    const expiry = renewed.sliceExpiresAt?.getTime() ?? 0;
    expect(expiry).toBeGreaterThan(firstExpiry + 40_000);
    expect(expiry).toBeLessThan(Date.now() + 61_000);
    expect(renewed.sliceRenewedAt?.getTime()).toBeLessThan(firstExpiry);
    expect(renewed.renewalNote).toMatch(
      new RegExp(`^renewal: ${A.replace('.', '\\.')} capped it to ${new Date(expiry).toISOString()} \\(asked until `),
    );

    // Past the first expiry (and the sweepers' next rounds): the slice lives on and so does the service.
    await new Promise((r) => setTimeout(r, Math.max(0, firstExpiry + 2_000 - Date.now())));
    const slice = (await fed.saClient().getSlice({ sliceUrn: renewed.sliceUrn })).slice;
    expect(slice?.state).toBe(SliceState.SLICE_STATE_READY);
    expect(slice?.expiresAt?.getTime()).toBe(expiry);
    expect(slice?.slivers.every((s) => s.allocationState === AllocationState.ALLOCATION_STATE_PROVISIONED)).toBe(true);
    const onNodes = await fed.sliversOnNodes();
    expect(onNodes.filter(([, sliceUrn]) => sliceUrn === renewed.sliceUrn)).toHaveLength(1);
    const after = await get('short');
    expect(after.state).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    expect(after.targets[0]?.serviceState).toBe(ServiceState.SERVICE_STATE_RUNNING);
    expect(after.targets[0]?.restarts).toBe(0);
    expect(running()).toBe(1);

    // What the operator sees.
    const tlsFlags = ['--cert', fed.spAdmin.certPath, '--key', fed.spAdmin.keyPath, '--ca', fed.caFile, '--sp-urn', fed.home.sp.urn];
    const show = await runCli(['deployment', 'show', 'short', '--sp', fed.spAddress(), ...tlsFlags], { timeoutMs: 30_000 });
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(`slice expires ${new Date(expiry).toISOString()} (renewed ${after.sliceRenewedAt?.toISOString()})`);
    expect(show.stdout).toContain(`${A} capped it to`);
  }, 60_000);

  it('renews no deleted deployment', async () => {
    const before = fed.sp?.deployments.record('short');
    await fed.spClient().deleteDeployment({ name: 'short', keepSlice: false });
    const rec = fed.sp?.deployments.record('short') as DeploymentRecord;
    expect(isRenewable(rec)).toBe(false);
    await fed.sp?.deployments.renewer.check();
    expect(fed.sp?.deployments.record('short')?.sliceRenewedAt).toBe(before?.sliceRenewedAt);
    await until(() => running() === 0, 10_000, 'service stopped');
  }, 30_000);
});

describe('slice renewal, the pure parts', () => {
  const rec = (over: Partial<DeploymentRecord>): DeploymentRecord =>
    ({ name: 'd', desired: 'run', state: 'ready', sliceUrn: 'urn:fedlab:a.test:slice:s', createdAt: 0, ...over }) as DeploymentRecord;
  const asked = Date.UTC(2026, 0, 8);
  const before = Date.UTC(2026, 0, 2);
  const answer = (sites: { site: string; at: number; code?: number }[]): RenewSliceResponse =>
    ({
      slice: {
        expiresAt: new Date(Math.min(...sites.filter((s) => !s.code).map((s) => s.at))),
        sites: sites.map((s) => ({ site: s.site, expiresAt: new Date(s.at), status: { code: 0, reason: '' } })),
        slivers: sites.map((s) => ({
          urn: `urn:fedlab:${s.site}:sliver:x`,
          allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
        })),
      },
      results: sites.map((s) => ({ site: s.site, status: { code: s.code ?? 0, reason: s.code ? `site ${s.site}: down` : '' } })),
    }) as unknown as RenewSliceResponse;

  it('is due within the margin, or within half the slice’s lifetime when that is shorter', () => {
    expect(renewalMarginMs(rec({ createdAt: 0 }), 7 * 86_400_000, 86_400)).toBe(86_400_000);
    expect(renewalMarginMs(rec({ createdAt: 0 }), 8_000, 86_400)).toBe(4_000);
    expect(renewalMarginMs(rec({ createdAt: 0, sliceRenewedAt: 100_000 }), 160_000, 86_400)).toBe(30_000);
    expect(isRenewable(rec({}))).toBe(true);
    for (const state of ['failed', 'deleting', 'deleted', 'pending', 'creating_slice'] as const)
      expect(isRenewable(rec({ state }))).toBe(false);
    expect(isRenewable(rec({ desired: 'delete' }))).toBe(false);
    expect(isRenewable(rec({ sliceUrn: '' }))).toBe(false);
  });

  it('says which site capped it and to when, which failed, and nothing when all was granted', () => {
    const full = renewalOutcome(answer([{ site: 'a.test', at: asked }]), asked, before);
    expect(full).toEqual({ expiresAt: asked, note: undefined, key: '' });
    const cap = Date.UTC(2026, 0, 3);
    const capped = renewalOutcome(
      answer([
        { site: 'a.test', at: asked },
        { site: 'b.test', at: cap },
      ]),
      asked,
      before,
    );
    expect(capped.expiresAt).toBe(cap);
    expect(capped.note).toBe(`renewal: b.test capped it to ${new Date(cap).toISOString()} (asked until ${new Date(asked).toISOString()})`);
    const failed = renewalOutcome(
      answer([
        { site: 'a.test', at: asked },
        { site: 'b.test', at: before, code: status.UNAVAILABLE },
      ]),
      asked,
      before,
    );
    expect(failed.note).toBe('renewal: not renewed at site b.test: down');
    expect(failed.key).toBe(`fail:b.test:${status.UNAVAILABLE}`);
    // Capped twice at the same site: the same key, so the log says it once.
    expect(renewalOutcome(answer([{ site: 'b.test', at: cap + 1000 }]), asked + 1000, cap).key).toBe(
      renewalOutcome(answer([{ site: 'b.test', at: cap }]), asked, before).key,
    );
  });
});
