/**
 * Recent audit events (services/core/audit): every call that changed state
 * or was refused, newest first, with its place in the hash chain.
 */
import type { AuditRecord } from '../../audit/audit-chain.js';
import { html, type Html } from '../html.js';
import { badge, table, timeCell, urnText } from './format.js';
import { page, type PageContext } from './layout.js';

/** Audit records shown. */
export const AUDIT_SHOWN = 200;

function row(r: AuditRecord, now: number): Html {
  const method = r.method.replace(/^\/fedlab\.v1\./, '');
  return html`<tr>
    <td>${r.seq}</td>
    <td>${timeCell(r.time, now)}</td>
    <td><code>${method}</code></td>
    <td>${urnText(r.caller)}</td>
    <td>${urnText(r.object)}</td>
    <td>${badge(r.outcome === 'committed' ? 'committed' : r.outcome)}</td>
    <td>${r.rule}</td>
    <td><code class="fp" title="${r.hash}">${r.hash.slice(0, 12)}</code></td>
  </tr>`;
}

/** The audit page: `records` oldest first (as the log lists them). */
export function auditPage(ctx: PageContext, records: readonly AuditRecord[]): Html {
  const newest = [...records].reverse();
  return page(
    ctx,
    { title: 'Audit log', current: 'audit' },
    html`<p class="muted">
        The ${newest.length} most recent records. <code>fedlab audit verify --config FILE</code> checks the whole chain (with the service
        stopped).
      </p>
      ${table(
        ['#', 'Time', 'Method', 'Caller', 'Object', 'Outcome', 'Rule', 'Hash'],
        newest.map((r) => row(r, ctx.now)),
        'No record yet.',
      )}`,
  );
}
