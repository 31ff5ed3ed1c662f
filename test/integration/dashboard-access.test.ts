// The federation dashboard of a management authority and a slice authority (real servers, real nodes): who
// gets in (an administrator's client certificate, a one-time link's session) and who does not (no
// certificate, a provider's, a peered domain's administrator's, one from a CA nobody trusts, a used link);
// the session cookie's flags; the strict Content-Security-Policy; text from sites shown as text.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { dashboardRequest, loginWithLink, readLoginLink } from '../helpers/dashboard-client.js';
import { disposeParties, freePort, siteParties, type SiteParties } from '../helpers/ma-harness.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';

let fed: Federation;
let dir: string;
let saUrl: string;
let maUrl: string;
let outsider: SiteParties;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-dashboard-'));
  const [saPort, maPort] = [await freePort(), await freePort()];
  saUrl = `https://127.0.0.1:${saPort}/`;
  maUrl = `https://127.0.0.1:${maPort}/`;
  fed = await startFederation({
    sites: [
      {
        domain: 'plc.test',
        style: 'planetlab',
        nodes: 1,
        config: { dashboard: { listen: { host: '127.0.0.1', port: maPort }, login_link_file: join(dir, 'ma-link') } },
      },
      { domain: 'pg.test', style: 'protogeni', nodes: 1 },
    ],
    saConfig: { dashboard: { listen: { host: '127.0.0.1', port: saPort }, login_link_file: join(dir, 'sa-link') } },
  });
  outsider = await siteParties('outside.test');
}, 120_000);

afterAll(async () => {
  await fed?.destroy();
  await disposeParties();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const admin = () => ({ ca: fed.home.pki.caPem, cert: fed.home.admin.certPem, key: fed.home.admin.keyPem });

describe('dashboard access', () => {
  it('refuses a request with neither a client certificate nor a session (403, saying how to log in)', async () => {
    for (const url of [saUrl, maUrl, `${saUrl}slices`, `${maUrl}nodes`, `${saUrl}audit`]) {
      const res = await dashboardRequest(url);
      expect(res.status, url).toBe(403);
      expect(res.body).toContain('not logged in');
      expect(res.body).toContain('one-time login link');
    }
  });

  it('lets an administrator in with its client certificate, every page under a strict Content-Security-Policy', async () => {
    for (const [url, expected] of [
      [saUrl, 'slice authority'],
      [`${saUrl}federation`, 'pg.test'],
      [`${saUrl}slices`, 'Slices'],
      [`${saUrl}audit`, 'Audit log'],
      [maUrl, 'management authority'],
      [`${maUrl}nodes`, 'urn:fedlab:plc.test:node:n1'],
      [`${maUrl}federation`, 'pg.test'],
    ] as const) {
      const res = await dashboardRequest(url, admin());
      expect(res.status, url).toBe(200);
      expect(res.body).toContain(expected);
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      // Nothing from elsewhere: every script and stylesheet is this origin's.
      expect(res.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
    const nodes = await dashboardRequest(`${maUrl}nodes`, admin());
    expect(nodes.body).toMatch(/data-node="urn:fedlab:plc.test:node:n1"[\s\S]*?state-good">up</);
    expect(nodes.body).toContain('<meter');
    const fedPage = await dashboardRequest(`${saUrl}federation`, admin());
    expect(fedPage.body).toMatch(/<td>pg\.test<\/td>[\s\S]*?<code class="fp" title="[^"]+"/);
  });

  it("refuses a provider's certificate, a peered domain's administrator's and one from a CA nobody trusts", async () => {
    const pg = fed.sites[1]?.parties as SiteParties;
    const cases = [
      { who: fed.home.sp, url: saUrl, why: 'no provider account|not an administrator' },
      { who: fed.home.sp, url: maUrl, why: 'is not an administrator' },
      { who: pg.admin, url: saUrl, why: 'no provider account' },
      { who: pg.admin, url: maUrl, why: 'is not an administrator' },
      { who: outsider.admin, url: saUrl, why: 'not trusted here' },
      { who: outsider.admin, url: maUrl, why: 'not trusted here' },
    ];
    for (const c of cases) {
      const res = await dashboardRequest(c.url, { cert: c.who.certPem, key: c.who.keyPem });
      expect(res.status, `${c.who.urn} at ${c.url}`).toBe(403);
      expect(res.body).toMatch(new RegExp(c.why));
    }
  });

  it('takes a one-time link once, for an HttpOnly Secure SameSite=Strict session, and writes a new link', async () => {
    const link = await readLoginLink(join(dir, 'sa-link'));
    expect(link.startsWith(saUrl)).toBe(true);
    // Opening the link only shows a form: a GET never uses it up.
    const form = await dashboardRequest(link);
    expect(form.status).toBe(200);
    expect(form.body).toContain('<form method="post" action="/login">');
    const first = await loginWithLink(link);
    expect(first.answer.status).toBe(303);
    expect(first.answer.headers.location).toBe('/');
    const setCookie = String(first.answer.headers['set-cookie']);
    expect(setCookie).toMatch(/^__Host-fedlab-dashboard=/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/Secure/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    const cookie = first.cookie as string;
    expect((await dashboardRequest(`${saUrl}slices`, { cookie })).status).toBe(200);
    // The same link again: refused, no cookie.
    const again = await loginWithLink(link);
    expect(again.answer.status).toBe(403);
    expect(again.cookie).toBeUndefined();
    // A made-up token: refused.
    expect((await loginWithLink(`${saUrl}login?token=${'A'.repeat(43)}`)).answer.status).toBe(403);
    // The file soon holds a fresh link that works (once).
    const next = await readLoginLink(join(dir, 'sa-link'), link);
    expect(next).not.toBe(link);
    expect((await loginWithLink(next)).answer.status).toBe(303);
    // Logging out ends the session.
    await dashboardRequest(`${saUrl}logout`, { cookie }, { form: {} });
    expect((await dashboardRequest(`${saUrl}slices`, { cookie })).status).toBe(403);
  });

  it("shows a site's failure reason holding markup as text, escaped", async () => {
    const evil = '<script>alert(1)</script>';
    const sa = fed.saClient();
    const req = siteRequest('plc.test', { count: 1 });
    const res = await sa
      .createSlice({
        users: [],
        requestId: 'r-evil',
        name: 'evil',
        description: `<img src=x onerror=alert(2)>`,
        mode: SliceMode.SLICE_MODE_BEST_EFFORT,
        sites: [
          { ...req, request: { ...req.request, nodes: { ...req.request.nodes, clientIds: [evil] } } },
          siteRequest('pg.test', { count: 1 }),
        ],
        start: false,
        wait: true,
      })
      .catch((err: unknown) => err as Error);
    expect(res).not.toBeInstanceOf(Error);
    const urn = 'urn:fedlab:plc.test:slice:evil';
    const slice = (await sa.getSlice({ sliceUrn: urn })).slice;
    expect(slice?.state).toBe(SliceState.SLICE_STATE_PARTIAL);
    const reason = slice?.sites.find((s) => s.site === 'plc.test')?.status?.reason ?? '';
    expect(reason).toContain(evil);
    const page = await dashboardRequest(`${saUrl}slices/${encodeURIComponent(urn)}`, admin());
    expect(page.status).toBe(200);
    expect(page.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.body).toContain('&lt;img src=x onerror=alert(2)&gt;');
    expect(page.body).not.toContain(evil);
    expect(page.body).not.toContain('<img src=x');
    // The only scripts are the page's own, from this origin.
    expect(page.body.match(/<script[^>]*>/g)).toEqual(['<script src="/assets/slice-live.js" defer>']);
    // The live stream's first event is the slice as it is, as JSON (the page puts it in as text).
    const events = await firstEvent(`${saUrl}slices/${encodeURIComponent(urn)}/events`);
    expect(events).toMatch(/^event: slice$/m);
    expect(events).toContain(JSON.stringify(evil).slice(1, -1));
  });
});

/** The first server-sent event of a live stream (the connection is closed after it). */
async function firstEvent(url: string): Promise<string> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(url, { ...admin(), checkServerIdentity: () => undefined, servername: '', agent: false }, (res) => {
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString('utf8');
        if (text.includes('\n\n')) {
          req.destroy();
          resolve(text);
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', (err) => (/socket hang up|aborted/.test(err.message) ? undefined : reject(err)));
    req.setTimeout(10_000, () => req.destroy(new Error('no event within 10 s')));
    req.end();
  });
}
