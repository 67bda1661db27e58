// The security console's one script: the audit log with filters and a timeline, live sessions
// with revoke, the segmentation graph and the explain box. Data reaches the DOM only through
// textContent and attributes (never innerHTML); the SVGs are built with createElementNS.
/* global document, fetch, URLSearchParams */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  const canRevoke = document.body.dataset.canRevoke === 'true';

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function showError(msg, code) {
    const e = $('error');
    e.textContent = msg;
    if (code) e.dataset.code = code;
  }
  function status(msg) {
    $('status').textContent = msg;
  }
  async function api(url, init) {
    const res = await fetch(url, Object.assign({ credentials: 'same-origin', headers: { accept: 'application/json' } }, init || {}));
    let body = {};
    try {
      body = await res.json();
    } catch {
      body = {};
    }
    if (!res.ok) {
      const err = (body && body.error) || {};
      const e = new Error(`${err.code || res.status}: ${err.message || res.statusText}`);
      e.code = err.code;
      throw e;
    }
    return body;
  }
  const time = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '');

  // ---- audit log
  let cursor;
  function filters() {
    const q = new URLSearchParams();
    for (const k of ['user', 'action', 'outcome', 'namespace', 'since']) {
      const v = $(`audit-${k}`).value.trim();
      if (v !== '') q.set(k, v);
    }
    return q;
  }
  function auditRow(hit) {
    const ev = hit.event || {};
    const outcome = ev['event.outcome'] || '';
    const tr = el('tr', { 'data-action': ev['event.action'] || '' });
    tr.append(
      el('td', {}, (ev['@timestamp'] || '').replace('T', ' ').slice(0, 19)),
      el('td', {}, ev['event.action'] || ''),
      el('td', { class: outcome }, outcome),
      el('td', {}, ev['user.id'] || ev['gatehouse.subject'] || ev['source.spiffe_id'] || ''),
      el('td', {}, ev['gatehouse.namespace'] || ''),
      el('td', {}, [ev['service.name'], ev['http.request.method'], ev['url.path']].filter(Boolean).join(' ')),
      el('td', {}, [ev['gatehouse.error_code'], ev['event.reason']].filter(Boolean).join(' · ')),
    );
    return tr;
  }
  async function loadAudit(more) {
    const q = filters();
    q.set('limit', '100');
    if (more && cursor) q.set('cursor', cursor);
    const page = await api(`/.gatehouse/admin/api/audit?${q}`);
    const rows = $('audit-rows');
    if (!more) rows.replaceChildren();
    for (const hit of page.events) rows.append(auditRow(hit));
    cursor = page.nextCursor;
    $('audit-more').hidden = !cursor;
    $('audit-count').textContent = `${rows.children.length} event(s) shown`;
  }

  // ---- timeline: allows and denies per namespace (proxy decisions), drawn as SVG
  async function loadTimeline() {
    const q = filters();
    q.set('action', 'proxy.*');
    q.set('limit', '1000');
    const page = await api(`/.gatehouse/admin/api/audit?${q}`);
    const points = [];
    for (const hit of page.events) {
      const ev = hit.event || {};
      const ns = ev['gatehouse.namespace'];
      const t = Date.parse(ev['@timestamp']);
      if (!ns || !Number.isFinite(t)) continue;
      points.push({ ns, t, allow: ev['event.outcome'] === 'success' });
    }
    drawTimeline(points);
  }
  function drawTimeline(points) {
    const box = $('timeline');
    box.replaceChildren();
    const namespaces = [...new Set(points.map((p) => p.ns))].sort();
    if (namespaces.length === 0) {
      box.append(el('p', { class: 'small', 'data-testid': 'timeline-empty' }, 'No proxied requests in this window.'));
      return;
    }
    const BINS = 40, LEFT = 110, BW = 16, ROW = 56, TOP = 10;
    const t0 = Math.min(...points.map((p) => p.t));
    const t1 = Math.max(...points.map((p) => p.t)) + 1;
    const span = Math.max(t1 - t0, 60_000);
    const bin = (t) => Math.min(BINS - 1, Math.floor(((t - t0) / span) * BINS));
    const width = LEFT + BINS * BW + 20;
    const height = TOP + namespaces.length * ROW + 28;
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, 'data-testid': 'timeline-svg' });
    namespaces.forEach((ns, i) => {
      const counts = Array.from({ length: BINS }, () => ({ allow: 0, deny: 0 }));
      for (const p of points) if (p.ns === ns) counts[bin(p.t)][p.allow ? 'allow' : 'deny']++;
      const max = Math.max(1, ...counts.map((c) => Math.max(c.allow, c.deny)));
      const mid = TOP + i * ROW + ROW / 2;
      const half = ROW / 2 - 6;
      root.append(svg('text', { x: 4, y: mid + 4 }, ns));
      root.append(svg('line', { class: 'axis', x1: LEFT, x2: LEFT + BINS * BW, y1: mid, y2: mid }));
      counts.forEach((c, b) => {
        const x = LEFT + b * BW + 2;
        if (c.allow > 0) {
          const h = Math.max(2, (c.allow / max) * half);
          const r = svg('rect', { class: 'allow', x, y: mid - h, width: BW - 4, height: h, 'data-ns': ns, 'data-kind': 'allow' });
          r.append(svg('title', {}, `${ns}: ${c.allow} allowed`));
          root.append(r);
        }
        if (c.deny > 0) {
          const h = Math.max(2, (c.deny / max) * half);
          const r = svg('rect', { class: 'deny', x, y: mid, width: BW - 4, height: h, 'data-ns': ns, 'data-kind': 'deny' });
          r.append(svg('title', {}, `${ns}: ${c.deny} denied`));
          root.append(r);
        }
      });
    });
    const yAxis = TOP + namespaces.length * ROW + 14;
    root.append(svg('text', { x: LEFT, y: yAxis }, time(t0)));
    root.append(svg('text', { x: LEFT + BINS * BW, y: yAxis, 'text-anchor': 'end' }, time(t0 + span)));
    root.append(svg('text', { x: 4, y: yAxis }, 'allow ▲ / deny ▼'));
    box.append(root);
  }

  async function refreshAudit() {
    $('error').textContent = '';
    status('Loading the audit log…');
    try {
      await Promise.all([loadAudit(false), loadTimeline()]);
      status('');
    } catch (e) {
      status('');
      showError(`Audit log: ${e.message}`, e.code);
    }
  }

  // ---- live sessions
  async function loadSessions() {
    const body = await api('/.gatehouse/admin/api/sessions');
    const rows = $('session-rows');
    rows.replaceChildren();
    for (const s of body.sessions) {
      const roles = Object.entries(s.roles || {}).flatMap(([ns, rs]) => rs.map((r) => `${ns}:${r}`)).join(', ');
      const tr = el('tr', { 'data-sid': s.sid, 'data-user': s.userId, 'data-testid': `session-${s.sid}` });
      if (s.current) tr.setAttribute('class', 'current');
      const sid = el('td', {});
      sid.append(el('code', {}, s.sid));
      if (s.current) sid.append(document.createTextNode(' (you)'));
      tr.append(el('td', {}, s.userId), el('td', {}, roles), el('td', {}, time(s.createdAt)), el('td', {}, time(s.lastSeen)), el('td', {}, s.ip), sid);
      const cell = el('td', {});
      if (canRevoke && body.canRevoke) {
        const b = el('button', { type: 'button', class: 'revoke', 'data-sid': s.sid, 'data-testid': `revoke-${s.sid}` }, 'Revoke');
        b.addEventListener('click', () => void revokeSession(s, b));
        cell.append(b);
      } else cell.hidden = true;
      tr.append(cell);
      rows.append(tr);
    }
  }
  async function revokeSession(s, button) {
    $('error').textContent = '';
    button.disabled = true;
    try {
      await api('/.gatehouse/admin/api/revoke', {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'session', id: s.sid, reason: `revoked from the console` }),
      });
      status(`Session ${s.sid} of ${s.userId} revoked.`);
      await loadSessions();
    } catch (e) {
      button.disabled = false;
      showError(`Revoke: ${e.message}`, e.code);
    }
  }

  // ---- segmentation graph
  async function loadGraph() {
    const g = await api('/.gatehouse/admin/api/graph');
    const box = $('graph');
    box.replaceChildren();
    if (g.nodes.length === 0) {
      box.append(el('p', { class: 'small' }, 'No policy in force.'));
      return;
    }
    // columns: roles first, then one column per namespace (its namespace node on top, its services below)
    const namespaces = [...new Set(g.nodes.filter((n) => n.kind !== 'role').map((n) => n.namespace))].sort();
    const roles = g.nodes.filter((n) => n.kind === 'role');
    const COLW = 190, NW = 150, NH = 30, GAP = 22, TOP = 16, LEFT = 16;
    const pos = new Map();
    let col = 0, rows = 0;
    if (roles.length > 0) {
      roles.forEach((n, i) => pos.set(n.id, { x: LEFT, y: TOP + 40 + i * (NH + GAP), n }));
      rows = roles.length + 1;
      col = 1;
    }
    for (const ns of namespaces) {
      const members = g.nodes.filter((n) => n.namespace === ns && n.kind !== 'role').sort((a, b) => (a.kind === 'namespace' ? -1 : b.kind === 'namespace' ? 1 : a.label.localeCompare(b.label)));
      members.forEach((n, i) => pos.set(n.id, { x: LEFT + col * COLW, y: TOP + i * (NH + GAP) + (n.kind === 'namespace' ? 0 : 18), n }));
      rows = Math.max(rows, members.length + 1);
      col++;
    }
    const width = LEFT + col * COLW;
    const height = TOP + rows * (NH + GAP) + 20;
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, 'data-testid': 'graph-svg' });
    const defs = svg('defs');
    const marker = svg('marker', { id: 'arrowhead', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }));
    defs.append(marker);
    root.append(defs);
    if (roles.length > 0) root.append(svg('text', { x: LEFT, y: TOP + 24 }, 'roles (people)'));
    for (const e of g.edges) {
      const a = pos.get(e.from), b = pos.get(e.to);
      if (!a || !b) continue;
      let x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2;
      if (a.x > b.x) { x1 = a.x; x2 = b.x + NW; }
      let d = `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}`;
      if (a.x === b.x) d = `M${a.x + NW},${y1} C${a.x + NW + 40},${y1} ${b.x + NW + 40},${y2} ${b.x + NW},${y2}`;
      const p = svg('path', { d, class: `edge ${e.mode}`, 'marker-end': 'url(#arrowhead)', 'data-from': e.from, 'data-to': e.to, 'data-rule': e.rule });
      p.append(svg('title', {}, `${e.rule}: ${e.from} → ${e.to} ${e.methods === '*' ? '*' : e.methods.join(',')} ${e.paths.join(' ')}`));
      root.append(p);
    }
    for (const { x, y, n } of pos.values()) {
      const grp = svg('g', { 'data-node': n.id, 'data-kind': n.kind });
      grp.append(svg('rect', { x, y, width: NW, height: NH, rx: n.kind === 'role' ? 14 : 4, class: `node-${n.kind}` }));
      grp.append(svg('text', { x: x + 8, y: y + NH / 2 + 4 }, n.kind === 'namespace' ? `namespace ${n.label}` : n.kind === 'role' ? `role ${n.namespace}:${n.label}` : n.label));
      root.append(grp);
    }
    box.append(root);
  }

  // ---- explain
  async function runExplain() {
    $('error').textContent = '';
    const q = new URLSearchParams();
    for (const k of ['from', 'namespace', 'service', 'method', 'path']) q.set(k, $(`explain-${k}`).value.trim());
    try {
      const r = await api(`/.gatehouse/admin/api/explain?${q}`);
      const v = $('explain-verdict');
      v.textContent = `${r.verdict}${r.mode === 'dry-run' ? ' (dry-run)' : ''}`;
      v.setAttribute('class', `verdict-${r.verdict}`);
      $('explain-rule').textContent = r.rule || '(none)';
      const matching = r.matching.map((m) => `${m.effect} ${m.name} (${m.file}:${m.line})`).join('; ');
      $('explain-reasons').textContent = `${r.reasons.join(', ')}${matching ? ` — matching: ${matching}` : ''}`;
      $('explain-result').hidden = false;
    } catch (e) {
      showError(`Explain: ${e.message}`, e.code);
    }
  }

  $('audit-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void refreshAudit();
  });
  $('audit-more').addEventListener('click', () => void loadAudit(true).catch((e) => showError(`Audit log: ${e.message}`, e.code)));
  $('sessions-refresh').addEventListener('click', () => void loadSessions().catch((e) => showError(`Sessions: ${e.message}`, e.code)));
  $('explain-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void runExplain();
  });
  void refreshAudit();
  void loadSessions().catch((e) => showError(`Sessions: ${e.message}`, e.code));
  void loadGraph().catch((e) => showError(`Graph: ${e.message}`, e.code));
})();
