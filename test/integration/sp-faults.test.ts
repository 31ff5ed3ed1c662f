// The service provider when its slice authority is down: a Deploy keeps its intent, says why it waits
// and finishes once the authority is back; a DeleteDeployment stays DELETING and finishes later. A
// best-effort deployment over a site whose nodes cannot be had ends PARTIAL, naming the site. Real MA,
// node managers (process driver), slice authority and provider (in this process).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, type DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';

const A = 'plc.test';
const B = 'pg.test';

const site = (domain: string, count: number) => siteRequest(domain, { count });

const spec = (sites: ReturnType<typeof site>[], mode = SliceMode.SLICE_MODE_ALL_OR_NOTHING) => ({
  sliceUrn: '',
  sliceAuthorityUrn: '',
  sliceName: '',
  mode,
  sites,
  expiresAt: undefined,
  steps: [{ name: 'serve', argv: ['sleep', '300'], env: {}, timeoutMs: 0, service: true }],
});

describe('service provider faults', () => {
  let fed: SpFederation;

  beforeAll(async () => {
    fed = await startSpFederation({
      sites: [
        { domain: A, nodes: 1 },
        { domain: B, nodes: 1 },
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
  }, 120_000);

  it('waits for a slice authority that is down, saying so, and finishes when it is back', async () => {
    await fed.stopSa();
    const events: DeployResponse[] = [];
    const done = (async () => {
      for await (const e of fed.spClient().deploy({ requestId: 'late-1', name: 'late', spec: spec([site(A, 1)]) })) events.push(e);
    })();
    await until(() => events.some((e) => /slice authority unreachable/.test(e.message)), 15_000, 'the wait reported');
    const waiting = (await fed.spClient().getDeployment({ name: 'late' })).deployment;
    expect(waiting?.state).toBe(DeploymentState.DEPLOYMENT_STATE_CREATING_SLICE);
    expect(waiting?.error).toMatch(/^slice authority: /);
    await fed.startSa();
    await done;
    expect(events.at(-1)?.deployment?.state).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
  }, 60_000);

  it('keeps a delete DELETING while the slice authority is down and finishes it later', async () => {
    await fed.stopSa();
    const res = await fed.spClient().deleteDeployment({ name: 'late', keepSlice: false });
    expect(res.deployment?.state).toBe(DeploymentState.DEPLOYMENT_STATE_DELETING);
    expect(res.deployment?.error).toMatch(/deleting slice urn:fedlab:plc\.test:slice:late/);
    await fed.startSa();
    await until(
      async () => (await fed.spClient().getDeployment({ name: 'late' })).deployment?.state === DeploymentState.DEPLOYMENT_STATE_DELETED,
      30_000,
      'deleted',
    );
    await until(async () => (await fed.sliversOnNodes()).length === 0, 15_000, 'no sliver left');
  }, 60_000);

  it('ends PARTIAL, naming the site, when a best-effort slice gets only some sites', async () => {
    const events: DeployResponse[] = [];
    // pg.test has one node: asking for three there cannot be met; plc.test can.
    for await (const e of fed
      .spClient()
      .deploy({ requestId: 'half-1', name: 'half', spec: spec([site(A, 1), site(B, 3)], SliceMode.SLICE_MODE_BEST_EFFORT) }))
      events.push(e);
    const last = events.at(-1)?.deployment;
    expect(last?.state, last?.error).toBe(DeploymentState.DEPLOYMENT_STATE_PARTIAL);
    expect(last?.error).toMatch(/^pg\.test: /);
    expect(last?.targets.map((t) => t.site)).toEqual([A]);
    await fed.spClient().deleteDeployment({ name: 'half', keepSlice: false });
    await until(async () => (await fed.sliversOnNodes()).length === 0, 15_000, 'no sliver left');
  }, 60_000);
});
