/**
 * The first page: counts at a glance (peers, sites, nodes by health, slices
 * by state) and the latest audit records, each linking to its page.
 */
import type { AuditRecord } from '../../audit/audit-chain.js';
import type { NodeView, SliceSummaryView } from '../dashboard-source.js';
import { html, type Html } from '../html.js';
import { badge, timeCell, urnText } from './format.js';
import { page, type PageContext } from './layout.js';

/** What the overview counts. */
export interface OverviewData {
  readonly domain: string;
  readonly peers: number;
  readonly sites: number;
  readonly nodes?: readonly NodeView[];
  readonly slices: readonly SliceSummaryView[];
  readonly sliceTotal: number;
  /** The latest audit records, oldest first. */
  readonly audit: readonly AuditRecord[];
}

function tally(states: readonly string[]): Html {
  const by = new Map<string, number>();
  for (const s of states) by.set(s, (by.get(s) ?? 0) + 1);
  if (by.size === 0) return html`<span class="muted">none</span>`;
  return html`${[...by.entries()].sort().map(([s, n]) => html`<span class="count">${badge(s)} ${n}</span> `)}`;
}

function card(title: string, href: string, big: string | number, body: Html): Html {
  return html`<a class="card" href="${href}"
    ><h2>${title}</h2>
    <div class="big">${big}</div>
    <div>${body}</div></a
  >`;
}

/** The overview page. */
export function overviewPage(ctx: PageContext, d: OverviewData): Html {
  const cards = [
    card('Peered domains', '/federation', d.peers, html`this domain: ${d.domain}`),
    card('Sites', '/federation', d.sites, html``),
    ...(d.nodes ? [card('Nodes', '/nodes', d.nodes.length, tally(d.nodes.map((n) => n.health)))] : []),
    card('Slices', '/slices', d.sliceTotal, tally(d.slices.map((s) => s.state))),
  ];
  const latest = [...d.audit].reverse();
  return page(
    ctx,
    { title: 'Overview', current: 'overview' },
    html`<div class="cards">${cards}</div>
      <section>
        <h2>Latest audit records</h2>
        ${
          latest.length === 0
            ? html`<p class="muted">No record yet.</p>`
            : html`<ul class="plain">
                  ${latest.map(
                    (r) =>
                      html`<li>
                        ${timeCell(r.time, ctx.now)} <code>${r.method.replace(/^\/fedlab\.v1\./, '')}</code> by ${urnText(r.caller)}
                        ${r.object ? html`on ${urnText(r.object)} ` : ''}${badge(r.outcome)}
                      </li>`,
                  )}
                </ul>
                <p><a href="/audit">All recent records</a></p>`
        }
      </section>`,
  );
}
