// The dashboard's parts without a federation: escaping (every value from a sliver, node or peer is text),
// one-time tokens and sessions (once, short-lived), the listener's taken-port message (named like the other
// listeners'), and a role without a dashboard refusing a config that asks for one.
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DashboardLogins } from '../../services/core/dashboard/dashboard-logins.js';
import { startDashboardListener } from '../../services/core/dashboard/dashboard-listener.js';
import type { DashboardSource, SliceView } from '../../services/core/dashboard/dashboard-source.js';
import { escapeHtml, html } from '../../services/core/dashboard/html.js';
import { badge, relative } from '../../services/core/dashboard/pages/format.js';
import type { PageContext } from '../../services/core/dashboard/pages/layout.js';
import { nodesPage } from '../../services/core/dashboard/pages/nodes-page.js';
import { slicePage } from '../../services/core/dashboard/pages/slice-page.js';
import { startServiceDashboard } from '../../services/core/dashboard/service-dashboard.js';
import { silentLogger } from '../../services/core/log.js';
import type { CommonConfig } from '../../services/core/config.js';

const EVIL = `<script>alert("x")</script>'&`;
const ctx: PageContext = {
  role: 'slice authority',
  urn: 'urn:fedlab:plc.test:authority:sa',
  viewer: { who: EVIL, via: 'one-time link' },
  now: Date.UTC(2026, 0, 1),
  hasNodes: true,
};

const evilSlice: SliceView = {
  urn: 'urn:fedlab:plc.test:slice:s',
  provider: EVIL,
  state: EVIL,
  sites: 1,
  slivers: 1,
  failed: 1,
  description: EVIL,
  siteParts: [{ site: EVIL, aggregateUrn: EVIL, code: EVIL, reason: EVIL }],
  sliverList: [{ urn: EVIL, site: EVIL, nodeUrn: EVIL, allocation: EVIL, operational: EVIL, error: EVIL }],
};

describe('dashboard pages escape what they show', () => {
  it('escapes every interpolated value, and only html fragments go in as they are', () => {
    expect(escapeHtml(EVIL)).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;');
    expect(html`<td title="${EVIL}">${EVIL}</td>`.text).toBe(`<td title="${escapeHtml(EVIL)}">${escapeHtml(EVIL)}</td>`);
    const list = [`<a>`, html`<li>ok</li>`];
    expect(html`<b>${list}</b>`.text).toBe('<b>&lt;a&gt;<li>ok</li></b>');
    expect(html`${undefined}${null}${false}${0}`.text).toBe('0');
  });

  it('a slice page whose every field holds markup has no markup of it, and no script but its own', () => {
    const page = slicePage(ctx, evilSlice, true).text;
    expect(page).not.toContain('<script>alert');
    expect(page).not.toContain(`'&`);
    expect(page).toContain(escapeHtml(EVIL));
    expect(page.match(/<script[^>]*>/g)).toEqual(['<script src="/assets/slice-live.js" defer>']);
    // A state from the data never chooses a class of its own.
    expect(page).not.toMatch(/class="state state-(?!good|busy|warn|bad|gone|other)/);
    expect(badge('ready').text).toContain('state-good');
  });

  it('a node page with markup in every field escapes it; bars are <meter> elements, no inline style', () => {
    const page = nodesPage(ctx, [
      {
        urn: EVIL,
        owner: EVIL,
        health: 'up',
        lastHeartbeatAt: ctx.now - 3000,
        missedHeartbeats: 0,
        endpoint: EVIL,
        version: EVIL,
        isolation: EVIL,
        images: [EVIL],
        capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 2048, pids: 512, slivers: 20 },
        allocated: { cpuMillis: 250, memMb: 64, diskMb: 64, pids: 64, slivers: 2 },
      },
    ]).text;
    expect(page).not.toContain('<script>alert');
    expect(page).toContain('<meter min="0" max="1000"');
    expect(page).not.toMatch(/style=/);
    expect(page).toContain('3 s ago');
  });

  it('says times relative to now', () => {
    expect(relative(1_000, 1_000)).toBe('just now');
    expect(relative(0, 30_000)).toBe('30 s ago');
    expect(relative(7 * 86_400_000, 0)).toBe('in 7 d');
  });
});

describe('one-time tokens and sessions', () => {
  it('a token opens one session, once, until it expires; a session ends at its time or at log-out', () => {
    let now = 1_000_000;
    const logins = new DashboardLogins({ now: () => now, linkTtlMs: 60_000, sessionTtlMs: 3_600_000 });
    const token = logins.mintToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const first = logins.redeem(token);
    expect(first).toBeDefined();
    expect(logins.redeem(token)).toBeUndefined();
    expect(logins.session(first?.id)).toBeDefined();
    expect(logins.session('made-up')).toBeUndefined();
    const late = logins.mintToken();
    now += 60_001;
    expect(logins.redeem(late)).toBeUndefined();
    now += 3_600_000;
    expect(logins.session(first?.id)).toBeUndefined();
    const again = logins.redeem(logins.mintToken());
    logins.end(again?.id);
    expect(logins.session(again?.id)).toBeUndefined();
  });
});

describe('dashboard listener', () => {
  let blocker: Server | undefined;
  afterEach(() => {
    blocker?.close();
    blocker = undefined;
  });

  const source: DashboardSource = {
    role: 'slice authority',
    refusal: () => undefined,
    sites: () => [],
    slices: () => ({ slices: [], total: 0 }),
    slice: () => undefined,
  };

  it('names a taken port like the other listeners do (setting, address, what to change)', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker?.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const tls = { cert: '', key: '' };
    await expect(
      startDashboardListener({
        host: '127.0.0.1',
        port,
        urn: ctx.urn,
        tls,
        trust: { caPem: () => '', onChange: () => () => undefined, checkClient: () => undefined },
        source,
        ownBundle: () => Promise.reject(new Error('unused')),
        peers: () => [],
        audit: () => Promise.resolve([]),
        log: silentLogger(),
        linkTtlMs: 60_000,
        sessionTtlMs: 60_000,
      }),
    ).rejects.toThrow(`dashboard.listen: cannot listen on 127.0.0.1:${port}: the port is in use; choose another in dashboard.listen.port`);
  });

  it('a role without a dashboard refuses a config that asks for one, naming the section', async () => {
    const config = {
      role: 'nm',
      urn: 'urn:fedlab:plc.test:node:n1',
      dashboard: { listen: { host: '127.0.0.1', port: 0 } },
    } as unknown as CommonConfig;
    await expect(
      startServiceDashboard({
        config,
        source: undefined,
        tls: { caCerts: '', cert: '', key: '' },
        federation: {} as never,
        bundle: {} as never,
        auditLog: {} as never,
        log: silentLogger(),
      }),
    ).rejects.toThrow(/dashboard.listen is set, but a nm service has no dashboard/);
  });
});
