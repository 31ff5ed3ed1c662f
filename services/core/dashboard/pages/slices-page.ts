/**
 * The slices this service holds, the most recently changed first: state,
 * provider, sites, slivers (and how many failed), expiry.
 */
import type { SliceSummaryView } from '../dashboard-source.js';
import { html, slicePath, type Html } from '../html.js';
import { badge, table, timeCell, urnText } from './format.js';
import { page, type PageContext } from './layout.js';

/** Slices listed at most. */
export const SLICES_SHOWN = 500;

function sliceRow(s: SliceSummaryView, now: number): Html {
  return html`<tr data-slice="${s.urn}">
    <td>
      <a href="${slicePath(s.urn)}"><code class="urn">${s.urn}</code></a>
    </td>
    <td class="slice-state">${badge(s.state)}</td>
    <td>${urnText(s.provider)}</td>
    <td>${s.sites}</td>
    <td>${s.slivers}${s.failed > 0 ? html` <span class="state state-bad">${s.failed} failed</span>` : ''}</td>
    <td>${timeCell(s.updatedAt ?? s.createdAt, now)}</td>
    <td>${timeCell(s.expiresAt, now)}</td>
  </tr>`;
}

/** The slices page. */
export function slicesPage(ctx: PageContext, slices: readonly SliceSummaryView[], total: number): Html {
  return page(
    ctx,
    { title: 'Slices', current: 'slices' },
    html`${slices.length < total ? html`<p class="muted">The ${slices.length} most recently changed of ${total} slices.</p>` : ''}
    ${table(
      ['Slice', 'State', 'Provider', 'Sites', 'Slivers', 'Changed', 'Expires'],
      slices.map((s) => sliceRow(s, ctx.now)),
      'No slice yet.',
    )}`,
  );
}
