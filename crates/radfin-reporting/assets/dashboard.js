// radfin's margin dashboard: fetches each panel's JSON from /api/<table> and draws it with
// Apache ECharts (loaded before this module as the global `echarts`), then refreshes every few
// seconds without reloading the page.
//
// Money: every amount arrives as the exact decimal string the server computed, and that string
// is what is shown, in tables, figures and tooltips alike. Number(...) is applied to an amount
// only to give a chart a position to plot; a parsed amount is never displayed.

const LABELS = {
  period: 'Period', client_id: 'Client', modality: 'Modality', grade: 'Grade', rank: 'Rank',
  reports: 'Reports', revenue_inr: 'Revenue (INR)', cogs_inr: 'COGS (INR)', margin_inr: 'Margin (INR)',
  margin_pct: 'Margin %', currency: 'Currency', billed_inr: 'Billed (INR)', rerun_inr: 'Rerun (INR)',
  price_inr: 'Price (INR)', volume_inr: 'Volume (INR)', fx_inr: 'FX (INR)', difference_inr: 'Difference (INR)',
  billed: 'Billed', rerun: 'Rerun', difference: 'Difference', provider_id: 'Radiologist', paid_inr: 'Paid (INR)',
  state: 'State', current_run_id: 'Current run', current_run_kind: 'Run kind', close_run_id: 'Close run',
  closed_at: 'Closed at', closed_by: 'Closed by', status: 'Status', report_id: 'Report', revision: 'Revision',
  reason: 'Reason', held_at: 'Held since', id: 'Run', trigger: 'Trigger', source_table: 'Source table',
  window_start: 'Window from', window_end: 'Window to', started_at: 'Started', duration_ms: 'Took (ms)',
  read: 'Read', new: 'New', changed: 'Changed', unchanged: 'Unchanged', rejected: 'Rejected', outcome: 'Outcome',
  run_id: 'Run', kind: 'Kind', rules_as_of: 'Rules as of', created_by: 'By', created_at: 'At',
  number: 'Number', party_id: 'Client or radiologist', issue_date: 'Issued', total: 'Total', corrects: 'Corrects',
  pdf: 'PDF',
};
const NUMERIC = new Set([
  'rank', 'reports', 'revenue_inr', 'cogs_inr', 'margin_inr', 'margin_pct', 'billed_inr', 'rerun_inr', 'price_inr',
  'volume_inr', 'fx_inr', 'difference_inr', 'billed', 'rerun', 'difference', 'paid_inr', 'current_run_id',
  'close_run_id', 'revision', 'id', 'duration_ms', 'read', 'new', 'changed', 'unchanged', 'rejected', 'run_id',
  'total',
]);
const TABLES = [
  'trend', 'clients', 'modalities', 'top-clients', 'bottom-clients', 'rerun-clients', 'rerun-providers',
  'periods', 'held-by-status', 'held', 'sync-runs', 'runs', 'documents',
];
// Tables from another service (the ledger's documents): one failing does not stop the rest.
const OPTIONAL = new Set(['documents']);
const COLORS = { revenue: '#2563eb', cogs: '#d97706', margin: '#059669', pct: '#7c3aed', price: '#2563eb', volume: '#059669', fx: '#d97706', difference: '#17202a', held: '#b42318' };
const CLIENTS_CHARTED = 15;
const RERUN_CLIENTS_CHARTED = 20;
const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)').matches;

const state = { from: '', to: '', run: '', paused: false, refreshMs: 5000, busy: false, refreshed: 0, timer: null };
const charts = new Map();

const $ = (id) => document.getElementById(id);

function escapeHtml(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function announce(message) {
  $('announce').textContent = message;
}

function params(extra = {}) {
  const p = new URLSearchParams();
  if (state.from) p.set('from', state.from);
  if (state.to) p.set('to', state.to);
  if (state.run) p.set('run_id', state.run);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  return p;
}

async function getJSON(path) {
  const response = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new Error(`${path}: ${response.status} ${body && body.error ? body.error : response.statusText}`);
  }
  return body;
}

// ---- tables ----

function renderTable(wrap, data) {
  const table = document.createElement('table');
  const caption = document.createElement('caption');
  const shown = data.rows.length;
  caption.textContent = wrap.dataset.caption + (data.total_rows > shown ? ` (${shown} of ${data.total_rows}; the CSV has all)` : '');
  table.append(caption);
  const thead = table.createTHead();
  const head = thead.insertRow();
  for (const c of data.columns) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = LABELS[c] || c;
    if (NUMERIC.has(c)) th.className = 'num';
    head.append(th);
  }
  const tbody = table.createTBody();
  if (data.rows.length === 0) {
    const td = tbody.insertRow().insertCell();
    td.colSpan = Math.max(1, data.columns.length);
    td.className = 'empty';
    td.textContent = data.error ? `Not available: ${data.error}` : 'Nothing to show yet.';
  }
  for (const row of data.rows) {
    const tr = tbody.insertRow();
    data.columns.forEach((c, i) => {
      const cell = document.createElement(i === 0 ? 'th' : 'td');
      if (i === 0) cell.scope = 'row';
      const value = row[c];
      if (c === 'pdf' && value) {
        const a = document.createElement('a');
        a.href = value;
        a.textContent = 'PDF';
        a.setAttribute('aria-label', `PDF of ${row.number}`);
        a.setAttribute('download', '');
        cell.append(a);
      } else {
        cell.textContent = value === null || value === undefined ? '' : String(value);
      }
      const classes = [];
      if (NUMERIC.has(c)) classes.push('num');
      if (typeof value === 'string' && value.startsWith('-')) classes.push('neg');
      if (c === 'state') classes.push(`state-${value}`);
      if (classes.length) cell.className = classes.join(' ');
      tr.append(cell);
    });
  }
  wrap.replaceChildren(table);
}

// ---- charts ----

function chart(name) {
  const el = document.querySelector(`[data-chart="${name}"]`);
  let instance = charts.get(name);
  if (!instance) {
    el.setAttribute('role', 'img');
    instance = echarts.init(el, null, { renderer: 'canvas' });
    charts.set(name, instance);
    new ResizeObserver(() => instance.resize()).observe(el);
  }
  return instance;
}

// Plotting only: the position of a bar. Never displayed.
const plot = (amount) => (amount === '' || amount === null || amount === undefined ? null : Number(amount));

const axisMoney = {
  type: 'value',
  axisLabel: { formatter: (v) => new Intl.NumberFormat('en-IN', { notation: 'compact', maximumFractionDigits: 1 }).format(v) },
  splitLine: { lineStyle: { color: '#e6e9ee' } },
};
const axisPct = { type: 'value', name: 'margin %', position: 'right', axisLabel: { formatter: '{value} %' }, splitLine: { show: false } };

function baseOption() {
  return {
    animation: !reducedMotion,
    aria: { enabled: true },
    textStyle: { fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif' },
    grid: { left: 64, right: 64, top: 40, bottom: 48 },
    legend: { top: 0 },
  };
}

// A tooltip listing a row's fields as the server sent them.
function rowTooltip(rows, fields) {
  return (p) => {
    const first = Array.isArray(p) ? p[0] : p;
    const row = rows[first.dataIndex];
    if (!row) return '';
    const title = escapeHtml(first.name);
    const lines = fields.map((f) => `${escapeHtml(LABELS[f] || f)}: <b>${escapeHtml(row[f] === '' ? '—' : row[f])}</b>`);
    return `${title}<br>${lines.join('<br>')}`;
  };
}

const SUMMARY_FIELDS = ['reports', 'revenue_inr', 'cogs_inr', 'margin_inr', 'margin_pct'];

function summaryChart(name, data, key) {
  const rows = data.rows;
  chart(name).setOption({
    ...baseOption(),
    tooltip: { trigger: 'axis', formatter: rowTooltip(rows, SUMMARY_FIELDS) },
    xAxis: { type: 'category', data: rows.map((r) => r[key]) },
    yAxis: [axisMoney, axisPct],
    series: [
      { name: 'Revenue (INR)', type: 'bar', color: COLORS.revenue, data: rows.map((r) => plot(r.revenue_inr)) },
      { name: 'COGS (INR)', type: 'bar', color: COLORS.cogs, data: rows.map((r) => plot(r.cogs_inr)) },
      { name: 'Margin (INR)', type: 'bar', color: COLORS.margin, data: rows.map((r) => plot(r.margin_inr)) },
      { name: 'Margin %', type: 'line', yAxisIndex: 1, color: COLORS.pct, symbol: 'circle', showSymbol: true, showAllSymbol: true, symbolSize: 8, z: 5, data: rows.map((r) => plot(r.margin_pct)) },
    ],
  }, { notMerge: true });
}

function clientsChart(data) {
  const rows = data.rows.slice(0, CLIENTS_CHARTED).reverse();
  chart('clients').setOption({
    ...baseOption(),
    grid: { left: 96, right: 24, top: 32, bottom: 32 },
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, formatter: rowTooltip(rows, SUMMARY_FIELDS) },
    xAxis: axisMoney,
    yAxis: { type: 'category', data: rows.map((r) => r.client_id), axisLabel: { fontSize: 11 } },
    series: [{
      name: 'Margin (INR)',
      type: 'bar',
      color: COLORS.margin,
      data: rows.map((r) => ({ value: plot(r.margin_inr), itemStyle: { color: r.margin_inr.startsWith('-') ? COLORS.held : COLORS.margin } })),
    }],
  }, { notMerge: true });
}

function rerunChart(data) {
  const rows = data.rows.slice(0, RERUN_CLIENTS_CHARTED);
  const series = (name, field, color) => ({ name, type: 'bar', stack: 'effect', color, data: rows.map((r) => plot(r[field])) });
  chart('rerun').setOption({
    ...baseOption(),
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, formatter: rowTooltip(rows, ['billed_inr', 'rerun_inr', 'price_inr', 'volume_inr', 'fx_inr', 'difference_inr']) },
    xAxis: { type: 'category', data: rows.map((r) => r.client_id), axisLabel: { interval: 0, rotate: rows.length > 8 ? 30 : 0 } },
    yAxis: axisMoney,
    series: [
      series('Price (INR)', 'price_inr', COLORS.price),
      series('Volume (INR)', 'volume_inr', COLORS.volume),
      series('FX (INR)', 'fx_inr', COLORS.fx),
      { name: 'Difference (INR)', type: 'scatter', symbol: 'diamond', symbolSize: 12, color: COLORS.difference, data: rows.map((r) => plot(r.difference_inr)) },
    ],
  }, { notMerge: true });
}

function heldChart(data) {
  const rows = data.rows;
  chart('held').setOption({
    ...baseOption(),
    grid: { left: 150, right: 24, top: 16, bottom: 32 },
    legend: { show: false },
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    xAxis: { type: 'value', minInterval: 1 },
    yAxis: { type: 'category', data: rows.map((r) => r.status), inverse: true },
    series: [{ name: 'Held reports', type: 'bar', color: COLORS.held, data: rows.map((r) => r.reports) }],
  }, { notMerge: true });
}

// ---- the page ----

function setOptions(select, options, selected) {
  const keep = select.options[0];
  const wanted = [keep.value, ...options.map((o) => o.value)].join('\n');
  const have = [...select.options].map((o) => o.value).join('\n');
  if (wanted !== have) {
    const fresh = options.map((o) => new Option(o.label, o.value));
    select.replaceChildren(keep, ...fresh);
  }
  select.value = options.some((o) => o.value === selected) ? selected : '';
}

function applyMeta(meta) {
  state.refreshMs = meta.refresh_ms || state.refreshMs;
  const periods = meta.periods.map((p) => ({ value: p, label: p }));
  setOptions($('from'), periods, state.from);
  setOptions($('to'), periods, state.to);
  const reruns = meta.reruns.map((r) => ({
    value: String(r.run_id),
    label: `${r.period} · run ${r.run_id} · ${r.applied ? 'applied' : 'preview'} · ${r.created_at.slice(0, 10)}`,
  }));
  setOptions($('rerun'), reruns, state.run);
}

function updateLinks() {
  const q = params().toString();
  for (const a of document.querySelectorAll('a.csv')) {
    a.href = `/api/${a.dataset.table}.csv${q ? `?${q}` : ''}`;
  }
}

function renderKpis(meta) {
  $('kpi-revenue').textContent = meta.revenue_inr;
  $('kpi-cogs').textContent = meta.cogs_inr;
  $('kpi-margin').textContent = meta.margin_inr;
  $('kpi-pct').textContent = meta.margin_pct === '' ? '—' : `${meta.margin_pct} %`;
  $('kpi-reports').textContent = String(meta.reports);
}

function renderRerunInfo(meta) {
  const info = $('rerun-info');
  if (!meta) {
    info.textContent = 'No period has been rerun yet.';
    return;
  }
  const how = meta.applied ? 'applied' : 'previewed, not applied';
  info.textContent = `Run ${meta.run_id} reprices ${meta.period} against run ${meta.compared_run_id} (${how}; by ${meta.created_by} at ${meta.created_at}${meta.reason ? `: “${meta.reason}”` : ''}). Per client, price + volume + FX = the difference in INR.`;
}

async function refresh() {
  if (state.busy) return;
  state.busy = true;
  try {
    applyMeta(await getJSON('/api/meta'));
    const q = params().toString();
    const results = await Promise.all(TABLES.map((t) => {
      const got = getJSON(`/api/${t}${q ? `?${q}` : ''}`);
      return OPTIONAL.has(t) ? got.catch((e) => ({ columns: [], rows: [], total_rows: 0, error: e.message })) : got;
    }));
    const data = Object.fromEntries(TABLES.map((t, i) => [t, results[i]]));
    for (const wrap of document.querySelectorAll('.table-wrap[data-table]')) {
      renderTable(wrap, data[wrap.dataset.table]);
    }
    renderKpis(data.trend.meta);
    summaryChart('trend', data.trend, 'period');
    clientsChart(data.clients);
    summaryChart('modalities', data.modalities, 'modality');
    rerunChart(data['rerun-clients']);
    renderRerunInfo(data['rerun-clients'].meta);
    heldChart(data['held-by-status']);
    updateLinks();
    state.refreshed += 1;
    document.body.dataset.refreshed = String(state.refreshed);
    const at = new Date().toLocaleTimeString('en-GB');
    $('updated').textContent = state.paused
      ? `Updated ${at}; live refresh paused`
      : `Updated ${at}; refreshes every ${Math.round(state.refreshMs / 1000)} s`;
  } catch (e) {
    $('updated').textContent = 'Refresh failed; retrying';
    announce(`Could not refresh the dashboard: ${e.message}`);
  } finally {
    state.busy = false;
  }
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    if (!state.paused && document.visibilityState === 'visible') await refresh();
    schedule();
  }, state.refreshMs);
}

function readSelection() {
  state.from = $('from').value;
  state.to = $('to').value;
  state.run = $('rerun').value;
  const url = new URL(window.location.href);
  url.search = params().toString();
  window.history.replaceState(null, '', url);
}

function start() {
  const initial = new URLSearchParams(window.location.search);
  state.from = initial.get('from') || '';
  state.to = initial.get('to') || '';
  state.run = initial.get('run_id') || '';
  for (const id of ['from', 'to', 'rerun']) {
    $(id).addEventListener('change', async () => {
      readSelection();
      await refresh();
      announce(`Showing ${state.from || 'the first period'} to ${state.to || 'the last period'}${state.run ? `, rerun ${state.run}` : ''}.`);
    });
  }
  $('pause').addEventListener('click', () => {
    state.paused = !state.paused;
    $('pause').setAttribute('aria-pressed', String(state.paused));
    $('pause').textContent = state.paused ? 'Resume live refresh' : 'Pause live refresh';
    announce(state.paused ? 'Live refresh paused.' : 'Live refresh resumed.');
    if (!state.paused) refresh();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && !state.paused) refresh();
  });
  refresh().then(schedule);
}

start();
