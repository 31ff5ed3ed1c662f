// The live slice page: follows the slice's server-sent events (no polling) and redraws its state,
// its sites and its slivers from each one. Everything from the server goes in as text nodes (never
// as markup), so a failure reason holding markup shows as text.
'use strict';
(function () {
  var url = document.body.dataset.events;
  var live = document.getElementById('live');
  if (!url || !live || typeof EventSource === 'undefined') return;

  var STATE_CLASS = {
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
  function stateClass(s) {
    var known = STATE_CLASS[String(s).toLowerCase()];
    if (known) return known;
    return /^[A-Z_]+$/.test(s) ? 'bad' : 'other';
  }
  function el(tag, className, children) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    (children || []).forEach(function (c) {
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }
  function badge(state) {
    return el('span', 'state state-' + stateClass(state || ''), [state || '—']);
  }
  function urn(text) {
    return text ? el('code', 'urn', [text]) : el('span', 'muted', ['—']);
  }
  function relative(ms) {
    var d = Math.round((ms - Date.now()) / 1000);
    var a = Math.abs(d);
    if (a <= 1) return 'just now';
    var span =
      a < 90 ? a + ' s' : a < 5400 ? Math.round(a / 60) + ' min' : a < 172800 ? Math.round(a / 3600) + ' h' : Math.round(a / 86400) + ' d';
    return d >= 0 ? 'in ' + span : span + ' ago';
  }
  function time(ms) {
    if (!ms || !isFinite(ms) || ms <= 0) return el('span', 'muted', ['—']);
    var iso = new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    var t = el('time', '', [relative(ms)]);
    t.dateTime = iso;
    t.title = iso;
    return t;
  }
  function row(cells, key, value) {
    var tr = el(
      'tr',
      '',
      cells.map(function (c) {
        return c instanceof Element && c.tagName === 'TD' ? c : el('td', '', [c]);
      }),
    );
    tr.dataset[key] = value;
    return tr;
  }
  function reason(text) {
    return el('td', 'reason', [text || '']);
  }
  function setRows(id, rows) {
    var body = document.getElementById(id);
    var empty = document.getElementById(id + '-empty');
    if (!body) return;
    body.replaceChildren.apply(body, rows);
    if (empty) empty.hidden = rows.length > 0;
  }
  function setOne(id, node) {
    var target = document.getElementById(id);
    if (target) target.replaceChildren(node);
  }
  function render(slice) {
    setOne('slice-state', badge(slice.state));
    setOne('slice-updated', time(slice.updatedAt));
    setOne('slice-expires', time(slice.expiresAt));
    setRows(
      'site-rows',
      slice.siteParts.map(function (s) {
        return row([s.site, urn(s.aggregateUrn), badge(s.code), reason(s.reason), time(s.expiresAt)], 'site', s.site);
      }),
    );
    setRows(
      'sliver-rows',
      slice.sliverList.map(function (s) {
        return row(
          [urn(s.urn), s.site, urn(s.nodeUrn), badge(s.allocation), badge(s.operational), reason(s.error), time(s.expiresAt)],
          'sliver',
          s.urn,
        );
      }),
    );
  }
  function addEvent(e) {
    var list = document.getElementById('events');
    if (!list) return;
    var parts = [time(e.time), ' ', badge(e.state), ' '];
    if (e.site) parts.push(el('strong', '', [e.site]), ' ');
    if (e.nodeUrn) parts.push(urn(e.nodeUrn), ' ');
    parts.push(e.message || '');
    if (e.reason) parts.push(el('div', 'reason', [e.reason]));
    var li = el('li', '', parts);
    li.dataset.sequence = String(e.sequence);
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 200) list.removeChild(list.lastChild);
  }
  function status(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  var source = new EventSource(url);
  source.addEventListener('open', function () {
    status('live', 'Live: following this slice’s events.');
  });
  source.addEventListener('slice', function (m) {
    var e;
    try {
      e = JSON.parse(m.data);
    } catch {
      return;
    }
    if (e.slice) render(e.slice);
    else setOne('slice-state', badge(e.state));
    addEvent(e);
    status('live', 'Live: following this slice’s events (last: #' + e.sequence + ').');
  });
  source.addEventListener('end', function () {
    source.close();
    status('ended', 'The slice is deleted or expired: no more events.');
  });
  source.addEventListener('error', function () {
    if (source.readyState === EventSource.CLOSED) status('closed', 'Live updates stopped; reload to follow again.');
    else status('reconnecting', 'Live: reconnecting…');
  });
})();
