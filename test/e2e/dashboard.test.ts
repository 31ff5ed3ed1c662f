// The federation dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core (no
// browser download). A federation of the test harness (two domains, real MAs and node managers, the slice
// authority) with dashboards on the home MA and the SA; the browser logs in with each one-time link, sees
// the nodes UP with their allocation bars and the slice READY with its slivers, then the slice is deleted
// through the API and the open page shows it DELETED without a reload (server-sent events). Screenshots go
// to the test's temp directory, which is kept and printed.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationalState, SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { chromiumPath, launchChromium, noChromiumReason } from '../helpers/chromium.js';
import { readLoginLink } from '../helpers/dashboard-client.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, freePort, until } from '../helpers/ma-harness.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';

if (!chromiumPath) console.log(`skipping the dashboard browser test: ${noChromiumReason}`);

describe.skipIf(!chromiumPath)('the federation dashboard in Chromium', { timeout: 120_000 }, () => {
  let fed: Federation;
  let browser: Browser;
  let shots: string;
  let sliceUrn: string;
  const problems: string[] = [];

  beforeAll(async () => {
    shots = mkdtempSync(join(tmpdir(), 'fedlab-dashboard-e2e-'));
    const [saPort, maPort] = [await freePort(), await freePort()];
    fed = await startFederation({
      sites: [
        {
          domain: 'plc.test',
          style: 'planetlab',
          nodes: 2,
          config: { dashboard: { listen: { host: '127.0.0.1', port: maPort }, login_link_file: join(shots, 'ma-link') } },
        },
        { domain: 'pg.test', style: 'protogeni', nodes: 1 },
      ],
      saConfig: { dashboard: { listen: { host: '127.0.0.1', port: saPort }, login_link_file: join(shots, 'sa-link') } },
    });
    const sa = fed.saClient();
    const res = await sa.createSlice({
      users: [],
      requestId: 'r-dash',
      name: 'dash',
      description: 'seen in a browser',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest('plc.test', { count: 2 }), siteRequest('pg.test', { count: 1 })],
      start: true,
      wait: true,
    });
    sliceUrn = res.slice?.urn ?? '';
    expect(res.slice?.state).toBe(SliceState.SLICE_STATE_READY);
    // GetSlice asks the sites: once every sliver runs, the record (what the page shows) says so.
    await until(
      async () =>
        ((await sa.getSlice({ sliceUrn })).slice?.slivers ?? []).every(
          (s) => s.operationalState === OperationalState.OPERATIONAL_STATE_READY,
        ),
      30_000,
      'every sliver READY',
    );
    browser = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await fed?.destroy();
    await disposeParties();
    if (shots) console.log(`dashboard screenshots: ${shots}`);
  });

  /** A new page that logs in with the service's one-time link and records console errors (a CSP violation is one). */
  async function loggedIn(linkFile: string): Promise<Page> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(await readLoginLink(linkFile));
    await Promise.all([page.waitForURL((u) => u.pathname === '/'), page.click('#login')]);
    await expect.poll(() => page.textContent('h1')).toBe('Overview');
    return page;
  }

  it('shows the nodes UP with their allocation bars on the management authority', async () => {
    const page = await loggedIn(join(shots, 'ma-link'));
    await page.goto(new URL('/nodes', page.url()).toString());
    for (const n of ['n1', 'n2']) {
      const row = page.locator(`tr[data-node="urn:fedlab:plc.test:node:${n}"]`);
      await expect.poll(() => row.locator('td.health').textContent()).toBe('up');
      // The slice holds one sliver on each node: the slivers bar shows it.
      expect(await row.locator('meter').count()).toBeGreaterThanOrEqual(4);
      expect(await row.textContent()).toMatch(/slivers\s*no cap\s*1\b/);
    }
    await page.screenshot({ path: join(shots, 'ma-nodes.png'), fullPage: true });
    // The site's own view of the slice: its slivers there.
    await page.goto(new URL(`/slices/${encodeURIComponent(sliceUrn)}`, page.url()).toString());
    expect(await page.locator('#sliver-rows tr').count()).toBe(2);
    expect(await page.locator('#slice-state').textContent()).toBe('ready');
    await page.context().close();
  });

  it('shows the slice READY on the slice authority, then DELETED without a reload once it is deleted through the API', async () => {
    const page = await loggedIn(join(shots, 'sa-link'));
    await page.goto(new URL('/slices', page.url()).toString());
    const listed = page.locator(`tr[data-slice="${sliceUrn}"]`);
    expect(await listed.locator('td.slice-state').textContent()).toBe('ready');
    await listed.locator('a').click();
    await page.waitForURL((u) => u.pathname.startsWith('/slices/urn'));
    await expect.poll(() => page.getAttribute('#live', 'data-state')).toBe('live');
    expect(await page.locator('#slice-state').textContent()).toBe('ready');
    expect(await page.locator('#site-rows tr').count()).toBe(2);
    const slivers = page.locator('#sliver-rows tr');
    expect(await slivers.count()).toBe(3);
    for (let i = 0; i < 3; i++) expect(await slivers.nth(i).locator('td').nth(4).textContent()).toBe('ready');
    await page.screenshot({ path: join(shots, 'sa-slice-ready.png'), fullPage: true });

    // A mark in this document: a reload would lose it.
    await page.evaluate(() => {
      (globalThis as unknown as { fedlabMark: number }).fedlabMark = 42;
    });
    const del = await fed.saClient().deleteSlice({ sliceUrn });
    expect(del.slice?.state).toBe(SliceState.SLICE_STATE_DELETED);
    await expect.poll(() => page.locator('#slice-state').textContent(), { timeout: 20_000 }).toBe('deleted');
    await expect.poll(() => page.getAttribute('#live', 'data-state')).toBe('ended');
    expect(await page.evaluate(() => (globalThis as unknown as { fedlabMark?: number }).fedlabMark)).toBe(42);
    expect(await page.locator('#events li').count()).toBeGreaterThan(1);
    await page.screenshot({ path: join(shots, 'sa-slice-deleted.png'), fullPage: true });
    await page.context().close();

    for (const f of ['ma-nodes.png', 'sa-slice-ready.png', 'sa-slice-deleted.png']) {
      expect(readFileSync(join(shots, f)).subarray(0, 8).toString('hex'), f).toBe('89504e470d0a1a0a');
    }
    // No script error and no Content-Security-Policy violation on any page.
    expect(problems).toEqual([]);
  });
});
