/**
 * The dashboard's routes, on Hono: read-only pages (overview, sites and
 * peers, nodes, slices, one slice, audit), the live events of a slice as
 * server-sent events, the two local assets, and the one-time-link login.
 * Every page is HTML escaped on the server and sent under a strict
 * Content-Security-Policy (scripts and styles from this origin only, no
 * inline code), never cached.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import type { AuditRecord } from '../audit/audit-chain.js';
import type { PeerRecord } from '../federation/peers.js';
import type { Logger } from '../log.js';
import { packageRoot } from '../paths.js';
import type { TransportTrust } from '../rpc/trust.js';
import type { DashboardLogins } from './dashboard-logins.js';
import type { DashboardSource } from './dashboard-source.js';
import { admit, SESSION_COOKIE } from './dashboard-viewer.js';
import type { Html } from './html.js';
import { AUDIT_SHOWN, auditPage } from './pages/audit-page.js';
import { federationPage, type OwnBundleView } from './pages/federation-page.js';
import { loginPage, refusalPage, type PageContext, type Viewer } from './pages/layout.js';
import { nodesPage } from './pages/nodes-page.js';
import { overviewPage } from './pages/overview-page.js';
import { slicePage } from './pages/slice-page.js';
import { SLICES_SHOWN, slicesPage } from './pages/slices-page.js';

/** What the routes read from. */
export interface DashboardAppDeps {
  /** The service's URN. */
  readonly urn: string;
  readonly source: DashboardSource;
  readonly logins: DashboardLogins;
  readonly trust: Pick<TransportTrust, 'checkClient'>;
  readonly ownBundle: () => Promise<OwnBundleView>;
  readonly peers: () => readonly PeerRecord[];
  /** The latest `limit` audit records, oldest first. */
  readonly audit: (limit: number) => Promise<readonly AuditRecord[]>;
  readonly now: () => number;
  readonly log: Logger;
  /** Aborts when the dashboard stops: live streams end. */
  readonly stopping: AbortSignal;
  /** A one-time token was exchanged for a session. */
  readonly onRedeemed?: (token: string) => void;
}

/** The policy every response carries: nothing inline, nothing from elsewhere. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** How often a live stream sends a comment, so that a dead client is noticed. */
const SSE_PING_MS = 15_000;

type Env = { Bindings: HttpBindings; Variables: { viewer: Viewer } };

const ASSETS: Readonly<Record<string, string>> = {
  'dashboard.css': 'text/css; charset=utf-8',
  'slice-live.js': 'text/javascript; charset=utf-8',
};

function loadAssets(): Map<string, string> {
  const dir = join(packageRoot(), 'services', 'core', 'dashboard', 'assets');
  return new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
}

function sendHtml(c: Context<Env>, body: Html, status: 200 | 403 | 404 = 200): Response {
  return c.html(body.text, status);
}

/** The dashboard application (to be served over HTTPS by the listener). */
export function dashboardApp(deps: DashboardAppDeps): Hono<Env> {
  const assets = loadAssets();
  const app = new Hono<Env>();
  const { source } = deps;

  app.use('*', async (c, next) => {
    await next();
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');
    c.header('Cross-Origin-Opener-Policy', 'same-origin');
    c.header('Cross-Origin-Resource-Policy', 'same-origin');
    if (!c.res.headers.get('Cache-Control')) c.header('Cache-Control', 'no-store');
  });

  app.get('/assets/:name', (c) => {
    const name = c.req.param('name');
    const body = assets.get(name);
    if (body === undefined) return c.text('no such asset\n', 404);
    return c.body(body, 200, { 'Content-Type': ASSETS[name] as string, 'Cache-Control': 'no-cache' });
  });

  // Browsers ask for it on every origin; there is none (and the answer must not be a refusal).
  app.get('/favicon.ico', (c) => c.body(null, 204));

  app.get('/login', (c) => {
    const token = c.req.query('token') ?? '';
    if (!/^[A-Za-z0-9_-]{16,128}$/.test(token)) return sendHtml(c, refusalPage('Log in', 'This login link is malformed.', deps.urn), 403);
    return sendHtml(c, loginPage(token, deps.urn));
  });

  app.post('/login', bodyLimit({ maxSize: 4096, onError: (c) => c.text('too large\n', 413) }), async (c) => {
    const form = await c.req.parseBody();
    const token = typeof form.token === 'string' ? form.token : '';
    const done = deps.logins.redeem(token);
    if (!done) {
      deps.log.warn({ from: c.env.incoming.socket.remoteAddress }, 'dashboard: a login link was refused (unknown, used or expired)');
      return sendHtml(
        c,
        refusalPage(
          'Log in',
          'This login link is not valid: it was used already, it expired, or it is not one of this service’s.',
          deps.urn,
        ),
        403,
      );
    }
    deps.onRedeemed?.(token);
    deps.log.info({ from: c.env.incoming.socket.remoteAddress }, 'dashboard: a one-time login link was used');
    setCookie(c, SESSION_COOKIE, done.id, {
      path: '/',
      secure: true,
      httpOnly: true,
      sameSite: 'Strict',
      maxAge: Math.max(1, Math.floor((done.session.expiresAt - deps.now()) / 1000)),
    });
    return c.redirect('/', 303);
  });

  app.post('/logout', (c) => {
    deps.logins.end(getCookie(c, SESSION_COOKIE));
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: true });
    return sendHtml(c, refusalPage('Logged out', 'Your session has ended.', deps.urn), 200);
  });

  // Everything below is for admitted viewers only.
  app.use('*', async (c, next) => {
    const decision = await admit(c.env.incoming.socket as TLSSocket, getCookie(c, SESSION_COOKIE), deps);
    if ('refused' in decision) {
      deps.log.warn({ path: c.req.path, why: decision.refused }, 'dashboard: request refused');
      return sendHtml(c, refusalPage('Not allowed', decision.refused, deps.urn), 403);
    }
    c.set('viewer', decision.viewer);
    await next();
  });

  const ctx = (c: Context<Env>): PageContext => ({
    role: source.role,
    urn: deps.urn,
    viewer: c.get('viewer'),
    now: deps.now(),
    hasNodes: source.nodes !== undefined,
  });

  app.get('/', async (c) => {
    const { slices, total } = source.slices(SLICES_SHOWN);
    return sendHtml(
      c,
      overviewPage(ctx(c), {
        domain: (await deps.ownBundle()).domain,
        peers: deps.peers().length,
        sites: source.sites().length,
        ...(source.nodes ? { nodes: source.nodes() } : {}),
        slices,
        sliceTotal: total,
        audit: await deps.audit(8),
      }),
    );
  });

  app.get('/federation', async (c) => sendHtml(c, federationPage(ctx(c), await deps.ownBundle(), deps.peers(), source.sites())));

  app.get('/nodes', (c) => {
    if (!source.nodes) return sendHtml(c, refusalPage('Not found', 'This service has no nodes.', deps.urn), 404);
    return sendHtml(c, nodesPage(ctx(c), source.nodes()));
  });

  app.get('/slices', (c) => {
    const { slices, total } = source.slices(SLICES_SHOWN);
    return sendHtml(c, slicesPage(ctx(c), slices, total));
  });

  app.get('/slices/:urn', (c) => {
    const slice = source.slice(c.req.param('urn'));
    if (!slice) return sendHtml(c, refusalPage('Not found', 'This service has no such slice.', deps.urn), 404);
    return sendHtml(c, slicePage(ctx(c), slice, source.watch !== undefined));
  });

  app.get('/slices/:urn/events', (c) => {
    const urn = c.req.param('urn');
    const watch = source.watch?.bind(source);
    if (!watch || !source.slice(urn)) return c.text('no live events for this slice\n', 404);
    // A reconnecting EventSource says where it was; the events after it are replayed.
    const last = Number(c.req.header('Last-Event-ID') ?? '0');
    const after = Number.isSafeInteger(last) && last > 0 ? last : 0;
    return streamSSE(c, async (stream) => {
      const done = new AbortController();
      const end = (): void => done.abort();
      c.env.outgoing.once('close', end);
      deps.stopping.addEventListener('abort', end);
      stream.onAbort(end);
      const ping = setInterval(() => void stream.write(': ping\n\n').catch(end), SSE_PING_MS);
      try {
        for await (const e of watch(urn, after, done.signal)) {
          if (done.signal.aborted) break;
          await stream.writeSSE({ id: String(e.sequence), event: 'slice', data: JSON.stringify(e) });
        }
        // The slice is gone for good: the page stops listening instead of reconnecting.
        if (!done.signal.aborted) await stream.writeSSE({ event: 'end', data: '{}' });
      } catch (err) {
        deps.log.warn({ slice: urn, err: (err as Error).message }, 'dashboard: a live stream failed');
      } finally {
        clearInterval(ping);
        c.env.outgoing.off('close', end);
        deps.stopping.removeEventListener('abort', end);
      }
    });
  });

  app.get('/audit', async (c) => sendHtml(c, auditPage(ctx(c), await deps.audit(AUDIT_SHOWN))));

  app.notFound((c) => c.text('not found\n', 404));
  app.onError((err, c) => {
    deps.log.error({ err, path: c.req.path }, 'dashboard: a page failed');
    return c.text('the page could not be made; see the service log\n', 500);
  });
  return app;
}
