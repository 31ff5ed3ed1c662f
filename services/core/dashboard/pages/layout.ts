/**
 * The frame of every dashboard page: head (the local stylesheet, scripts
 * only where a page is live), the service it belongs to, navigation, who is
 * looking and how, and a log-out button.
 */
import { html, type Html } from '../html.js';
import { isoTime } from './format.js';

/** Who is looking at the dashboard. */
export interface Viewer {
  /** A URN (client certificate) or `one-time link`. */
  readonly who: string;
  readonly via: 'client certificate' | 'one-time link';
}

/** What every page knows. */
export interface PageContext {
  /** The role, e.g. `management authority`. */
  readonly role: string;
  /** The service's URN. */
  readonly urn: string;
  readonly viewer: Viewer;
  readonly now: number;
  /** Whether this service has nodes to show (management authorities). */
  readonly hasNodes: boolean;
}

/** Options of {@link page}. */
export interface PageOptions {
  readonly title: string;
  /** Which navigation entry is current. */
  readonly current: 'overview' | 'federation' | 'nodes' | 'slices' | 'audit';
  /** Scripts of this page (served from /assets). */
  readonly scripts?: readonly string[];
  /** `data-*` attributes of `<body>` (the live script reads them). */
  readonly data?: Readonly<Record<string, string>>;
}

/** A whole page around `body`. */
export function page(ctx: PageContext, o: PageOptions, body: Html): Html {
  const nav: [PageOptions['current'], string, string][] = [
    ['overview', '/', 'Overview'],
    ['federation', '/federation', 'Sites and peers'],
    ...(ctx.hasNodes ? [['nodes', '/nodes', 'Nodes'] as [PageOptions['current'], string, string]] : []),
    ['slices', '/slices', 'Slices'],
    ['audit', '/audit', 'Audit log'],
  ];
  const data = Object.entries(o.data ?? {}).map(([k, v]) => html` data-${k.replace(/[^a-z-]/g, '')}="${v}"`);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${o.title} · ${ctx.urn}</title>
<link rel="stylesheet" href="/assets/dashboard.css">
${(o.scripts ?? []).map((s) => html`<script src="/assets/${s}" defer></script>`)}
</head>
<body${data}>
<header>
  <div class="brand"><a href="/">Fedlab</a> <span class="role">${ctx.role}</span> <code class="urn">${ctx.urn}</code></div>
  <nav>${nav.map(([k, href, label]) => html`<a href="${href}" ${k === o.current ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>
  <div class="viewer">
    <span title="${ctx.viewer.via}">${ctx.viewer.who}</span>
    <form method="post" action="/logout"><button type="submit">Log out</button></form>
  </div>
</header>
<main>
<h1>${o.title}</h1>
${body}
</main>
<footer>Read-only view, as of <time datetime="${isoTime(ctx.now)}">${isoTime(ctx.now)}</time>.</footer>
</body>
</html>
`;
}

/** A page for someone who is not logged in (or may not look): why, and how to log in. */
export function refusalPage(title: string, why: string, serviceUrn: string): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="referrer" content="no-referrer" />
        <title>${title}</title>
        <link rel="stylesheet" href="/assets/dashboard.css" />
      </head>
      <body class="bare">
        <main class="narrow">
          <h1>${title}</h1>
          <p>${why}</p>
          <p>
            The dashboard of <code class="urn">${serviceUrn}</code> is for its administrators (<code>admins</code> in its config): connect
            with an administrator's client certificate of this domain or a peered one, or open a one-time login link (<code>fedlab up</code>
            prints one; the service writes a new one to its <code>dashboard.login_link_file</code>).
          </p>
        </main>
      </body>
    </html> `;
}

/** The page of a one-time link: one button that exchanges the token for a session (a GET never uses it up). */
export function loginPage(token: string, serviceUrn: string): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="referrer" content="no-referrer" />
        <title>Log in</title>
        <link rel="stylesheet" href="/assets/dashboard.css" />
      </head>
      <body class="bare">
        <main class="narrow">
          <h1>Log in</h1>
          <p>This one-time link opens a session on the dashboard of <code class="urn">${serviceUrn}</code>. It works once.</p>
          <form method="post" action="/login">
            <input type="hidden" name="token" value="${token}" />
            <button type="submit" id="login">Log in</button>
          </form>
        </main>
      </body>
    </html> `;
}
