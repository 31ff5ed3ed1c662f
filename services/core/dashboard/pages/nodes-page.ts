/**
 * The site's nodes: health, the last heartbeat and how many were missed, and
 * for each node what slices hold against its capacity (cpu, memory, disk,
 * pids, slivers) as bars.
 */
import type { NodeView } from '../dashboard-source.js';
import { html, type Html } from '../html.js';
import { badge, bar, table, timeCell, urnText } from './format.js';
import { page, type PageContext } from './layout.js';

/** Nodes shown on one page at most (the count says how many there are). */
export const NODES_SHOWN = 1000;

function nodeRow(n: NodeView, now: number): Html {
  const c = n.capacity;
  const a = n.allocated;
  return html`<tr data-node="${n.urn}">
    <td>
      ${urnText(n.urn)}
      <div class="muted">${n.endpoint} · ${n.isolation}${n.version ? ` · ${n.version}` : ''}</div>
    </td>
    <td class="health">${badge(n.health)}</td>
    <td>
      ${timeCell(n.lastHeartbeatAt, now)}${n.missedHeartbeats > 0 ? html`<div class="reason">${n.missedHeartbeats} missed</div>` : ''}
    </td>
    <td class="bars">
      ${bar('cpu', a.cpuMillis, c.cpuMillis, 'millicores')}${bar('memory', a.memMb, c.memMb, 'MB')}${bar('disk', a.diskMb, c.diskMb, 'MB')}${bar('pids', a.pids, c.pids)}${bar('slivers', a.slivers ?? 0, c.slivers)}
    </td>
    <td>${n.images.join(', ')}</td>
    <td>${urnText(n.owner)}</td>
  </tr>`;
}

/** The nodes page. */
export function nodesPage(ctx: PageContext, nodes: readonly NodeView[]): Html {
  const up = nodes.filter((n) => n.health === 'up').length;
  const down = nodes.filter((n) => n.health === 'down').length;
  const shown = nodes.slice(0, NODES_SHOWN);
  return page(
    ctx,
    { title: 'Nodes', current: 'nodes' },
    html`<p class="summary">
        <span>${nodes.length} enrolled</span> ${badge('up')} ${up} ${badge('down')}
        ${down}${nodes.length - up - down > 0 ? html` ${badge('unknown')} ${nodes.length - up - down}` : ''}
      </p>
      ${shown.length < nodes.length ? html`<p class="muted">The first ${shown.length} of ${nodes.length} nodes, by URN.</p>` : ''}
      ${table(
        ['Node', 'Health', 'Last heartbeat', 'Allocated / capacity', 'Images', 'Owner'],
        shown.map((n) => nodeRow(n, ctx.now)),
        'No node is enrolled yet (fedlab site token, then fedlab serve nm).',
      )}`,
  );
}
