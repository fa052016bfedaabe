// The dashboard: polls /api/status every second and keeps one table row per
// backend up to date. Rates, quantiles and the minute of history come from
// the server, so every viewer sees the same numbers.
'use strict';

(() => {
  const POLL_MS = 1000;
  const rows = new Map(); // pool + ' ' + backend URL -> row elements
  const heads = new Map(); // pool name -> its heading row
  let controls = false; // whether the API takes changes (drain, enable)

  const byId = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // Formatting.
  const fmtRate = (n) => (n == null ? '–' : n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));
  const fmtPct = (r) => (r == null ? '–' : r === 0 ? '0%' : (r * 100).toFixed(r < 0.1 ? 2 : 1) + '%');
  const fmtMs = (ms) => {
    if (ms == null) return '–';
    if (ms < 1) return Math.round(ms * 1000) + ' µs';
    if (ms < 10) return ms.toFixed(2) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    return (ms / 1000).toFixed(2) + ' s';
  };
  const fmtBytes = (n) => {
    if (n == null) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  };
  const fmtDuration = (s) => {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  };

  function row(b) {
    const key = b.pool + ' ' + b.url;
    let r = rows.get(key);
    if (r) return r;
    const url = b.url;
    const tr = el('tr');
    tr.dataset.backend = url;
    tr.dataset.pool = b.pool;
    const cell = (cls) => { const td = el('td', cls); tr.appendChild(td); return td; };
    r = { tr };
    r.url = cell('url');
    r.url.append(el('span', 'addr', url), (r.since = el('span', 'since')));
    r.state = el('span', 'state');
    cell('').appendChild(r.state);
    r.rps = cell('num');
    r.err = cell('num');
    r.p50 = cell('num');
    r.p99 = cell('num');
    r.inflight = cell('num');
    r.check = cell('check');
    r.canvas = el('canvas', 'spark');
    r.canvas.setAttribute('aria-label', 'requests per second over the last minute');
    cell('chart').appendChild(r.canvas);
    r.action = el('button', 'act');
    r.action.type = 'button';
    r.action.addEventListener('click', () => act(r));
    cell('act').appendChild(r.action);
    rows.set(key, r);
    return r;
  }

  // act drains or enables a row's backend through the control API.
  async function act(r) {
    const verb = r.action.dataset.verb;
    r.action.disabled = true;
    try {
      const resp = await fetch('/api/backends/' + verb, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ pool: r.tr.dataset.pool, url: r.tr.dataset.backend }),
      });
      if (!resp.ok) {
        const e = await resp.json().catch(() => ({}));
        throw new Error(e.error || 'HTTP ' + resp.status);
      }
    } catch (e) {
      connection(false, verb + ' failed: ' + e.message);
    } finally {
      r.action.disabled = false;
    }
  }

  // headRow returns the heading row of a pool.
  function headRow(p) {
    let h = heads.get(p.name);
    if (!h) {
      const tr = el('tr', 'pool');
      tr.dataset.pool = p.name;
      const td = el('td');
      td.colSpan = 10;
      h = { tr, name: el('span', 'pname', p.name), info: el('span', 'muted') };
      td.append(h.name, h.info);
      tr.appendChild(td);
      heads.set(p.name, h);
    }
    h.info.textContent = p.policy + ' · ' + p.backends_up + ' of ' + p.backends_total + ' in rotation';
    return h;
  }

  function renderBackend(b, now) {
    const r = row(b);
    r.tr.className = b.state;
    if (r.state.dataset.state !== b.state) {
      r.state.dataset.state = b.state;
      r.state.className = 'state ' + b.state;
      r.state.textContent = b.state;
    }
    const notes = [];
    if (b.state !== 'disabled') notes.push(b.health + ' for ' + fmtDuration((now - Date.parse(b.since)) / 1000));
    if (b.state === 'draining') notes.push(b.in_flight + ' in flight');
    if (b.state === 'backup') notes.push(b.in_rotation ? 'serving' : 'standby');
    if (b.weight > 1) notes.push('weight ' + b.weight);
    if (b.max_conns > 0) notes.push('max ' + b.max_conns + ' conns');
    r.since.textContent = notes.join(' · ');
    const rates = b.rates || {};
    r.rps.textContent = fmtRate(rates.requests_per_second);
    r.err.textContent = fmtPct(rates.error_ratio);
    r.err.classList.toggle('err-hot', (rates.error_ratio || 0) >= 0.01);
    r.err.title = 'in all: ' + Object.entries(b.errors).map(([k, n]) => k + ' ' + n).join(', ') +
      ', 5xx ' + b.responses['5xx'] + ' of ' + b.requests + ' attempts';
    r.p50.textContent = fmtMs(rates.p50_ms);
    r.p99.textContent = fmtMs(rates.p99_ms);
    r.inflight.textContent = b.in_flight;
    const c = b.last_check;
    r.check.replaceChildren();
    if (!c && b.state !== 'disabled') {
      r.check.append(el('span', 'muted', 'not checked yet'));
      r.check.title = '';
    } else if (b.state === 'disabled') {
      r.check.append(el('span', 'muted', 'disabled: not checked'));
      r.check.title = '';
    } else if (c.ok) {
      r.check.append(el('span', 'good', '✓ '), fmtMs(c.latency_ms));
      r.check.title = 'passed at ' + c.at;
    } else {
      r.check.append(el('span', 'bad', '✗ '), c.error);
      r.check.title = c.error + ' (at ' + c.at + ')';
    }
    if (b.history) drawSpark(r.canvas, b.history.requests_per_second, b.history.errors_per_second);
    const draining = b.state === 'draining' || b.state === 'drained';
    r.action.hidden = !controls || b.state === 'disabled';
    r.action.dataset.verb = draining ? 'enable' : 'drain';
    r.action.textContent = draining ? 'Enable' : 'Drain';
    r.action.title = draining ? 'put it back into rotation' : 'take no new requests; let those in flight finish';
  }

  // drawSpark draws requests/s as a filled line and errors/s below it in red.
  function drawSpark(canvas, reqs, errs) {
    const css = getComputedStyle(document.documentElement);
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 176, h = canvas.clientHeight || 36;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const slots = 60;
    const max = Math.max(1, ...reqs, ...errs);
    const x = (i, n) => w - (n - 1 - i) * (w / (slots - 1));
    const y = (v) => h - 2 - (v / max) * (h - 6);
    const area = (vals, stroke, fill) => {
      const n = vals.length;
      if (n === 0) return;
      g.beginPath();
      g.moveTo(x(0, n), h);
      vals.forEach((v, i) => g.lineTo(x(i, n), y(v)));
      g.lineTo(x(n - 1, n), h);
      g.closePath();
      g.fillStyle = fill;
      g.fill();
      g.beginPath();
      vals.forEach((v, i) => (i ? g.lineTo(x(i, n), y(v)) : g.moveTo(x(i, n), y(v))));
      g.strokeStyle = stroke;
      g.lineWidth = 1.5;
      g.stroke();
    };
    g.strokeStyle = css.getPropertyValue('--line');
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, h - 0.5);
    g.lineTo(w, h - 0.5);
    g.stroke();
    area(reqs, css.getPropertyValue('--accent'), css.getPropertyValue('--accent-fill'));
    if (errs.some((v) => v > 0)) area(errs, css.getPropertyValue('--err'), css.getPropertyValue('--err-fill'));
  }

  function render(s) {
    const now = Date.parse(s.now);
    byId('version').textContent = s.version;
    const overall = byId('overall');
    // Up means healthy: a backup on standby counts, a disabled backend is
    // left out of both numbers.
    const enabled = s.backends.filter((b) => b.state !== 'disabled');
    const healthy = enabled.filter((b) => b.health === 'up').length;
    const draining = s.backends.filter((b) => b.state === 'draining' || b.state === 'drained').length;
    const level = s.backends_up === 0 ? 'bad' : healthy < enabled.length ? 'warn' : 'ok';
    overall.textContent = healthy + ' of ' + enabled.length + ' backends up' + (draining ? ' · ' + draining + ' draining' : '');
    overall.className = 'pill ' + level;
    document.title = { bad: '✗ ', warn: '! ', ok: '' }[level] + 'load-balancer';

    const t = s.traffic, tr = t.rates || {};
    byId('t-rps').textContent = fmtRate(tr.requests_per_second);
    byId('t-err').textContent = fmtPct(tr.error_ratio);
    byId('t-conns').textContent = t.connections.toLocaleString('en-US');
    byId('t-in').textContent = fmtBytes(tr.received_bytes_per_second);
    byId('t-in').title = fmtBytes(t.received_bytes) + ' in all';
    byId('t-out').textContent = fmtBytes(tr.sent_bytes_per_second);
    byId('t-out').title = fmtBytes(t.sent_bytes) + ' in all';
    byId('t-uptime').textContent = fmtDuration(s.uptime_seconds);

    controls = !!s.controls;
    const tbody = document.querySelector('#backends tbody');
    const grouped = (s.pools || []).length > 1;
    const seen = new Set(), seenPools = new Set();
    const order = [];
    (s.pools || []).forEach((p) => {
      if (grouped) { order.push(headRow(p).tr); seenPools.add(p.name); }
      s.backends.filter((b) => b.pool === p.name).forEach((b) => {
        renderBackend(b, now);
        const key = b.pool + ' ' + b.url;
        seen.add(key);
        order.push(rows.get(key).tr);
      });
    });
    order.forEach((tr, i) => {
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    for (const [key, r] of rows) {
      if (!seen.has(key)) { r.tr.remove(); rows.delete(key); }
    }
    for (const [name, h] of heads) {
      if (!seenPools.has(name)) { h.tr.remove(); heads.delete(name); }
    }
  }

  function connection(ok, why) {
    const c = byId('conn');
    c.className = 'conn ' + (ok ? 'muted' : 'lost');
    c.textContent = ok ? 'live · updated ' + new Date().toLocaleTimeString() : 'connection lost: ' + why + ' (retrying)';
  }

  async function poll() {
    try {
      const resp = await fetch('/api/status', { cache: 'no-store', credentials: 'same-origin' });
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      render(await resp.json());
      connection(true);
    } catch (e) {
      connection(false, e.message);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
