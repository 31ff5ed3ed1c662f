/**
 * One slice: its state, provider and expiry, its part at every site (the
 * site's outcome and why it failed) and every sliver (allocation and
 * operational state, failure reason). Where the service can watch the slice
 * (the slice authority), the page is live: /assets/slice-live.js follows the
 * server-sent events of `/slices/<urn>/events` and redraws these tables from
 * them with text nodes only.
 */
import type { SliceSiteView, SliceView, SliverView } from '../dashboard-source.js';
import { html, slicePath, type Html } from '../html.js';
import { badge, table, timeCell, urnText } from './format.js';
import { page, type PageContext } from './layout.js';

function siteRow(s: SliceSiteView, now: number): Html {
  return html`<tr data-site="${s.site}">
    <td>${s.site}</td>
    <td>${urnText(s.aggregateUrn)}</td>
    <td>${badge(s.code)}</td>
    <td class="reason">${s.reason}</td>
    <td>${timeCell(s.expiresAt, now)}</td>
  </tr>`;
}

function sliverRow(s: SliverView, now: number): Html {
  return html`<tr data-sliver="${s.urn}">
    <td>${urnText(s.urn)}</td>
    <td>${s.site}</td>
    <td>${urnText(s.nodeUrn)}</td>
    <td>${badge(s.allocation)}</td>
    <td>${badge(s.operational)}</td>
    <td class="reason">${s.error}</td>
    <td>${timeCell(s.expiresAt, now)}</td>
  </tr>`;
}

/** The slice page; `live` when its events can be followed. */
export function slicePage(ctx: PageContext, s: SliceView, live: boolean): Html {
  return page(
    ctx,
    {
      title: 'Slice',
      current: 'slices',
      ...(live ? { scripts: ['slice-live.js'], data: { events: `${slicePath(s.urn)}/events` } } : {}),
    },
    html`<p><code class="urn big">${s.urn}</code></p>
      <dl class="facts">
        <dt>State</dt>
        <dd id="slice-state">${badge(s.state)}</dd>
        <dt>Provider</dt>
        <dd>${urnText(s.provider)}</dd>
        ${
          s.description
            ? html`<dt>Description</dt>
                <dd>${s.description}</dd>`
            : ''
        }
        <dt>Created</dt>
        <dd>${timeCell(s.createdAt, ctx.now)}</dd>
        <dt>Changed</dt>
        <dd id="slice-updated">${timeCell(s.updatedAt, ctx.now)}</dd>
        <dt>Expires</dt>
        <dd id="slice-expires">${timeCell(s.expiresAt, ctx.now)}</dd>
      </dl>
      ${live ? html`<p id="live" class="live" data-state="connecting">Live: connecting…</p>` : html`<p class="muted">As of loading this page; reload to see changes.</p>`}
      <section>
        <h2>Sites</h2>
        ${table(
          ['Site', 'Aggregate', 'Outcome', 'Reason', 'Expires'],
          s.siteParts.map((x) => siteRow(x, ctx.now)),
          'No site.',
          'site-rows',
        )}
      </section>
      <section>
        <h2>Slivers</h2>
        ${table(
          ['Sliver', 'Site', 'Node', 'Allocation', 'Operational', 'Reason', 'Expires'],
          s.sliverList.map((x) => sliverRow(x, ctx.now)),
          'No sliver.',
          'sliver-rows',
        )}
      </section>
      ${
        live
          ? html`<section>
              <h2>Events</h2>
              <ol id="events" class="events"></ol>
            </section>`
          : ''
      }`,
  );
}
