// @ts-check
/// <reference lib="dom" />
// The live page in the browser: records arrive from the stack over server-sent events
// (GET /events) or from a saved trace (Open trace…, or a file dropped on the page, which
// replaces the live stream: the page then needs nothing from the stack). It draws the
// connection table, the chosen connection's charts (../charts.js, shared with `tapstack
// plot`) and the trace as text, at most every RENDER_MS so that a fast transfer cannot
// freeze the browser.

import { cwndSvg, ladderSvg, rttSvg, stateDiagramSvg, timeSequenceSvg } from '../charts.js';
import { lineFilter } from '../../trace/filter.js';
import { formatRecord } from '../../trace/format-text.js';
import { connectionsFromRecords, connectionTable, lastTransition, parseJsonLines, RecordStore, recordConn } from './model.js';

/** @typedef {import('../../trace/schema.ts').TraceRecord} TraceRecord */
/** @typedef {import('./model.js').ConnectionRow} ConnectionRow */

/** Records kept in the page (the server's ring holds as many). */
const MAX_RECORDS = 50_000;
/** Lines of the trace kept in the DOM: older ones are removed as new ones come. */
const MAX_TRACE_ROWS = 1000;
/** The shortest time between two renders. */
const RENDER_MS = 250;
/** Segments the ladder shows. */
const LADDER_SEGMENTS = 12;

/** @param {string} id */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}

const ui = {
  status: byId('status'),
  pause: /** @type {HTMLButtonElement} */ (byId('pause')),
  open: /** @type {HTMLInputElement} */ (byId('open')),
  download: /** @type {HTMLAnchorElement} */ (byId('download')),
  savePage: /** @type {HTMLAnchorElement} */ (byId('save-page')),
  filter: /** @type {HTMLInputElement} */ (byId('filter')),
  counts: byId('counts'),
  table: /** @type {HTMLTableSectionElement} */ (byId('connections').querySelector('tbody')),
  chosen: byId('chosen'),
  trace: byId('trace'),
  charts: {
    timeseq: byId('chart-timeseq'),
    state: byId('chart-state'),
    cwnd: byId('chart-cwnd'),
    rtt: byId('chart-rtt'),
    ladder: byId('chart-ladder'),
  },
};

const state = {
  store: new RecordStore(MAX_RECORDS),
  /** 'live' over /events, or the name of the file opened. */
  mode: /** @type {'live' | 'offline'} */ ('live'),
  source: '',
  paused: false,
  /** The connection the user clicked; until then the one that moved the most bytes. */
  chosen: /** @type {string | null} */ (null),
  chosenByUser: false,
  /** The stack's own table (stack.connections()), null when it sends none. */
  stackConnections: /** @type {any[] | null} */ (null),
  /** The absolute index of the next record the trace list has not looked at. */
  listed: 0,
  filter: lineFilter(''),
  dirty: true,
  lastRender: 0,
};

/** @type {EventSource | null} */
let events = null;

function startLive() {
  events = new EventSource('/events');
  events.addEventListener('records', (e) => {
    state.store.push(JSON.parse(/** @type {MessageEvent} */ (e).data));
    changed();
  });
  events.addEventListener('connections', (e) => {
    state.stackConnections = JSON.parse(/** @type {MessageEvent} */ (e).data).connections;
    changed();
  });
  events.addEventListener('open', () => setStatus());
  // EventSource reconnects by itself, resuming after the last event id it saw.
  events.addEventListener('error', () => setStatus('reconnecting'));
}

/** A saved trace replaces whatever the page showed, and the live stream stops. */
async function openFile(/** @type {File} */ file) {
  const { records, bad } = parseJsonLines(await file.text());
  events?.close();
  events = null;
  state.mode = 'offline';
  state.source = `${file.name}: ${records.length} records${bad ? `, ${bad} bad lines skipped` : ''}`;
  state.store = new RecordStore(Math.max(MAX_RECORDS, records.length));
  state.store.push(records);
  state.stackConnections = null;
  state.chosen = null;
  state.chosenByUser = false;
  state.listed = 0;
  ui.trace.textContent = '';
  ui.table.textContent = '';
  tableRows.clear();
  ui.download.hidden = true;
  ui.savePage.hidden = true;
  changed();
}

/** @param {string} [override] */
function setStatus(override) {
  const el = ui.status;
  el.className = state.paused ? 'paused' : state.mode;
  const what = state.mode === 'live' ? 'live' : `offline (${state.source})`;
  el.textContent = override ?? (state.paused ? `paused, ${what}` : what);
}

function changed() {
  state.dirty = true;
}

// Renders are throttled: at most one per RENDER_MS, in an animation frame (none while the
// tab is hidden).
setInterval(() => {
  if (!state.dirty || state.paused || performance.now() - state.lastRender < RENDER_MS) return;
  requestAnimationFrame(render);
}, RENDER_MS / 2);

function render() {
  state.dirty = false;
  state.lastRender = performance.now();
  const records = state.store.records;
  const rows = connectionTable(connectionsFromRecords(records), state.stackConnections);
  if (!state.chosenByUser) {
    // The busiest one, by bytes moved, until the user clicks a row.
    let best = null;
    for (const r of rows) if (!best || r.bytesSent + r.bytesReceived > best.bytesSent + best.bytesReceived) best = r;
    state.chosen = best ? best.conn : null;
  }
  renderTable(rows);
  renderCharts(records);
  renderTrace();
  ui.counts.textContent = `${records.length} records, ${rows.length} connections`;
  document.body.dataset.records = String(records.length);
  setStatus();
}

/** @param {number | null} v @param {number | null} mss */
function segs(v, mss) {
  if (v === null) return '-';
  return mss ? `${Math.round(v / mss)}` : `${v}B`;
}

/** @param {number | null} us */
function msText(us) {
  return us === null ? '-' : (us / 1000).toFixed(1);
}

/** The table's rows by connection: updated in place, so that a click is not lost to a render. */
/** @type {Map<string, HTMLTableRowElement>} */
const tableRows = new Map();

/** @param {ConnectionRow[]} rows */
function renderTable(rows) {
  const body = ui.table;
  const seen = new Set();
  rows.forEach((r, index) => {
    seen.add(r.conn);
    /** @type {HTMLTableRowElement | undefined} */
    let tr = tableRows.get(r.conn);
    if (!tr) {
      tr = document.createElement('tr');
      tr.dataset.conn = r.conn;
      for (let i = 0; i < 11; i++) tr.appendChild(document.createElement('td')).className = i === 1 ? 'state' : '';
      tableRows.set(r.conn, tr);
    }
    tr.classList.toggle('chosen', r.conn === state.chosen);
    tr.classList.toggle('closed', !r.live && state.stackConnections !== null);
    const cells = [
      `${r.local} > ${r.remote}`,
      r.state ?? '-',
      r.recvQ ?? '-',
      r.sendQ ?? '-',
      segs(r.cwnd, r.mss),
      segs(r.ssthresh, r.mss),
      r.rttUs === null ? '-' : `${msText(r.rttUs)}/${msText(r.rttvarUs)}`,
      msText(r.rtoUs),
      r.retrans,
      r.bytesSent,
      r.bytesReceived,
    ];
    cells.forEach((text, i) => {
      const td = /** @type {HTMLElement} */ (tr.children[i]);
      if (td.textContent !== String(text)) td.textContent = String(text);
    });
    if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] ?? null);
  });
  for (const [conn, tr] of tableRows) {
    if (seen.has(conn)) continue;
    tr.remove();
    tableRows.delete(conn);
  }
}

/** @param {readonly TraceRecord[]} records */
function renderCharts(records) {
  const conn = state.chosen;
  ui.chosen.textContent = conn ? `connection ${conn}${state.chosenByUser ? '' : ' (the busiest; click a row to choose)'}` : 'no connection yet';
  document.body.dataset.chosen = conn ?? '';
  if (!conn) return;
  const { current, last } = lastTransition(records, conn);
  // Drawn larger than their boxes in the grid's proportions (two thirds, one third of the
  // width), and scaled down to fit: the charts' titles and legends need the room.
  ui.charts.timeseq.innerHTML = timeSequenceSvg(records, conn, { width: 1000, height: 380 });
  ui.charts.state.innerHTML = stateDiagramSvg(current, last, { width: 500, height: 380 });
  ui.charts.cwnd.innerHTML = cwndSvg(records, conn, { width: 600, height: 320 });
  ui.charts.rtt.innerHTML = rttSvg(records, conn, { width: 600, height: 320 });
  ui.charts.ladder.innerHTML = ladderSvg(records, conn, { width: 600, height: 320, last: LADDER_SEGMENTS });
}

/** @param {TraceRecord} r */
function lineClass(r) {
  if (r.type === 'frame') return r.tcp?.retransmit ? 'retransmit' : r.dir;
  return r.type === 'retransmit' ? 'retransmit' : 'event';
}

/** Appends the lines not yet looked at that pass the filter, keeping MAX_TRACE_ROWS. */
function renderTrace() {
  const { store } = state;
  const from = Math.max(state.listed, store.base, store.end - MAX_TRACE_ROWS * 4);
  const stick = ui.trace.scrollTop + ui.trace.clientHeight >= ui.trace.scrollHeight - 4;
  const fragment = document.createDocumentFragment();
  for (let i = from; i < store.end; i++) {
    const r = store.records[i - store.base];
    if (!r) continue;
    const line = formatRecord(r);
    if (!state.filter(r, line)) continue;
    const div = document.createElement('div');
    div.className = lineClass(r);
    div.textContent = line;
    const conn = recordConn(r);
    if (conn) div.dataset.conn = conn;
    fragment.appendChild(div);
  }
  state.listed = store.end;
  ui.trace.appendChild(fragment);
  while (ui.trace.childElementCount > MAX_TRACE_ROWS) ui.trace.firstElementChild?.remove();
  if (stick) ui.trace.scrollTop = ui.trace.scrollHeight;
}

ui.table.addEventListener('click', (e) => {
  const tr = /** @type {HTMLElement} */ (e.target).closest('tr');
  if (!tr || !tr.dataset.conn) return;
  state.chosen = tr.dataset.conn;
  state.chosenByUser = true;
  changed();
  if (state.paused) render();
});

ui.pause.addEventListener('click', () => {
  state.paused = !state.paused;
  ui.pause.textContent = state.paused ? 'Resume' : 'Pause';
  setStatus();
  changed();
});

ui.filter.addEventListener('input', () => {
  // A new filter lists the kept records again, from the last few thousand.
  state.filter = lineFilter(ui.filter.value);
  state.listed = 0;
  ui.trace.textContent = '';
  changed();
});

ui.open.addEventListener('change', () => {
  const file = ui.open.files?.[0];
  if (file) void openFile(file);
});

// Drag and drop a saved trace anywhere on the page.
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  const file = e.dataTransfer?.files[0];
  if (file) void openFile(file);
});

// Served by a stack: live. `/?offline`, or the one-file page (Save page) opened from a file
// with no stack behind it, waits for a saved trace.
if (new URLSearchParams(location.search).has('offline') || location.protocol === 'file:') {
  state.mode = 'offline';
  state.source = 'open a saved trace';
  ui.download.hidden = true;
  ui.savePage.hidden = true;
} else startLive();
setStatus();
