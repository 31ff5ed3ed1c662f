/**
 * Sites and peers: this domain and its trust bundle's fingerprint, every
 * peered domain with the fingerprint pinned and the one trusted now, when it
 * was accepted and how its last refresh went, and the sites the service
 * works with.
 */
import type { PeerRecord } from '../../federation/peers.js';
import type { SiteView } from '../dashboard-source.js';
import { html, type Html } from '../html.js';
import { badge, table, timeCell, urnText } from './format.js';
import { page, type PageContext } from './layout.js';

/** This domain's own bundle, as published. */
export interface OwnBundleView {
  readonly domain: string;
  readonly fingerprint: string;
  readonly serial: number;
  readonly issuedAt: string;
}

function ms(rfc3339: string | undefined): number | undefined {
  if (!rfc3339) return undefined;
  const t = Date.parse(rfc3339);
  return Number.isFinite(t) ? t : undefined;
}

function fingerprint(fp: string): Html {
  return html`<code class="fp" title="${fp}">${fp}</code>`;
}

function peerRow(p: PeerRecord, now: number): Html {
  const r = p.last_refresh;
  const repinned = p.pinned_fingerprint !== p.fingerprint;
  return html`<tr>
    <td>${p.domain}</td>
    <td><code>${p.endpoint}</code></td>
    <td>${fingerprint(p.fingerprint)}${repinned ? html`<div class="muted">pinned ${fingerprint(p.pinned_fingerprint)}</div>` : ''}</td>
    <td>${p.bundle.serial}</td>
    <td>${timeCell(ms(p.pinned_at), now)}</td>
    <td>${timeCell(ms(p.accepted_at), now)}</td>
    <td>
      ${r ? html`${badge(r.result)} ${timeCell(ms(r.at), now)}${r.detail ? html`<div class="reason">${r.detail}</div>` : ''}` : html`<span class="muted">not yet</span>`}
    </td>
  </tr>`;
}

function siteRow(s: SiteView): Html {
  return html`<tr>
    <td>${s.domain}</td>
    <td>${urnText(s.aggregateUrn)}</td>
    <td>${s.style ?? ''}</td>
    <td>${s.endpoint ? html`<code>${s.endpoint}</code>` : ''}</td>
    <td>${s.note ?? ''}</td>
  </tr>`;
}

/** The sites-and-peers page. */
export function federationPage(ctx: PageContext, own: OwnBundleView, peers: readonly PeerRecord[], sites: readonly SiteView[]): Html {
  return page(
    ctx,
    { title: 'Sites and peers', current: 'federation' },
    html`<section>
        <h2>This domain</h2>
        <dl class="facts">
          <dt>Domain</dt>
          <dd>${own.domain}</dd>
          <dt>Trust bundle</dt>
          <dd>${fingerprint(own.fingerprint)} (serial ${own.serial}, issued ${timeCell(ms(own.issuedAt), ctx.now)})</dd>
        </dl>
      </section>
      <section>
        <h2>Peered domains (${peers.length})</h2>
        ${table(
          ['Domain', 'Bundle endpoint', 'Bundle fingerprint', 'Serial', 'Pinned', 'Accepted', 'Last refresh'],
          peers.map((p) => peerRow(p, ctx.now)),
          'No domain is peered with this one yet (fedlab federation peer add).',
        )}
      </section>
      <section>
        <h2>Sites (${sites.length})</h2>
        ${table(['Domain', 'Aggregate', 'Style', 'Endpoint', ''], sites.map(siteRow), 'No site is configured.')}
      </section>`,
  );
}
