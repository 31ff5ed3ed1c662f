/**
 * Small pieces the dashboard's pages share: times (absolute and relative),
 * state badges, allocation bars and tables. Class names are chosen from
 * fixed lists here, never taken from the data, so a state a sliver reports
 * cannot add markup or style.
 */
import { html, type Html } from '../html.js';

/** RFC 3339 of a time in ms (UTC, seconds). */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `12 s ago`, `in 3 min`, `2 h ago`… */
export function relative(ms: number, now: number): string {
  const d = Math.round((ms - now) / 1000);
  const a = Math.abs(d);
  // Clocks and rounding put the latest events a second either side of now.
  if (a <= 1) return 'just now';
  const span =
    a < 90 ? `${a} s` : a < 5400 ? `${Math.round(a / 60)} min` : a < 172_800 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86_400)} d`;
  return d >= 0 ? `in ${span}` : `${span} ago`;
}

/** A time cell: relative text, the exact time in `datetime` and `title`; a dash when unknown. */
export function timeCell(ms: number | undefined, now: number): Html {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return html`<span class="muted">—</span>`;
  const iso = isoTime(ms);
  return html`<time datetime="${iso}" title="${iso}">${relative(ms, now)}</time>`;
}

const STATE_CLASS: Readonly<Record<string, string>> = {
  up: 'good',
  ready: 'good',
  ok: 'good',
  provisioned: 'good',
  committed: 'good',
  accepted: 'good',
  unchanged: 'good',
  pending: 'busy',
  deleting: 'busy',
  configuring: 'busy',
  notready: 'busy',
  allocated: 'busy',
  stopping: 'busy',
  partial: 'warn',
  unknown: 'warn',
  'swapped out': 'warn',
  unallocated: 'warn',
  stopped: 'warn',
  unreachable: 'warn',
  down: 'bad',
  failed: 'bad',
  refused: 'bad',
  'shut down': 'bad',
  deleted: 'gone',
  expired: 'gone',
};

/** The badge class of a state (one of a fixed few). */
export function stateClass(state: string): string {
  const known = STATE_CLASS[state.toLowerCase()];
  if (known) return known;
  // gRPC status names other than OK are failures.
  return /^[A-Z_]+$/.test(state) ? 'bad' : 'other';
}

/** A state badge. */
export function badge(state: string): Html {
  return html`<span class="state state-${stateClass(state)}">${state || '—'}</span>`;
}

/** An allocation bar: `<meter>` (no inline style, so the strict policy holds) with its numbers. */
export function bar(label: string, used: number, max: number | undefined, unit = ''): Html {
  const text = `${used}${max !== undefined ? ` / ${max}` : ''}${unit ? ` ${unit}` : ''}`;
  if (max === undefined || max <= 0)
    return html`<div class="bar">
      <span class="bar-label">${label}</span><span class="muted">no cap</span><span class="bar-text">${text}</span>
    </div>`;
  return html`<div class="bar">
    <span class="bar-label">${label}</span
    ><meter min="0" max="${max}" low="${max * 0.7}" high="${max * 0.9}" optimum="0" value="${Math.min(used, max)}" title="${text}">
      ${text}</meter
    ><span class="bar-text">${text}</span>
  </div>`;
}

/** A table, or a line saying there is nothing to show; with `bodyId` (a live table) both are there, one hidden. */
export function table(headers: readonly string[], rows: readonly Html[], empty: string, bodyId?: string): Html {
  const head = html`<thead>
    <tr>
      ${headers.map((h) => html`<th>${h}</th>`)}
    </tr>
  </thead>`;
  if (!bodyId)
    return rows.length === 0
      ? html`<p class="muted">${empty}</p>`
      : html`<table>
          ${head}
          <tbody>
            ${rows}
          </tbody>
        </table>`;
  return html`<table>
      ${head}
      <tbody id="${bodyId}">
        ${rows}
      </tbody>
    </table>
    <p class="muted" id="${bodyId}-empty" ${rows.length ? html` hidden` : ''}>${empty}</p>`;
}

/** A URN shown in a cell: monospace, breakable. */
export function urnText(urn: string): Html {
  return urn ? html`<code class="urn">${urn}</code>` : html`<span class="muted">—</span>`;
}
