// @ts-check
// The teaching pictures of one connection, drawn as SVG text from trace records
// (src/trace/schema.ts): the same code draws the live page in the browser (served as is, a
// plain ES module without imports at run time) and `tapstack plot` in Node. Pure functions:
// records in, an SVG string out; nothing here touches the DOM or Node.
//
// API (fixed: the page and the plot command call these):
//   connectionsIn(records)                  connections seen, the most bytes first
//   timeSequenceSvg(records, conn, opts)    Stevens/tcptrace time-sequence graph
//   cwndSvg(records, conn, opts)            cwnd and ssthresh over time
//   rttSvg(records, conn, opts)             RTT samples, SRTT and RTO over time
//   ladderSvg(records, conn, opts)          message-sequence diagram of the last segments
//   stateDiagramSvg(current, last, opts)    RFC 9293's state diagram, current state lit
//
// This file starts as a placeholder that draws a labelled empty frame; the plot work
// replaces each body.

/** @typedef {import('../trace/schema.ts').TraceRecord} TraceRecord */
/** @typedef {import('../trace/schema.ts').ConnId} ConnId */
/** @typedef {import('../tcp/state.ts').TcpState} TcpState */
/** @typedef {{ width?: number, height?: number, from?: number, to?: number, last?: number }} ChartOptions */
/** @typedef {{ conn: ConnId, bytes: number, first: number, last: number, state: TcpState | null }} ConnectionSummary */

/**
 * @param {string} title
 * @param {ChartOptions} [opts]
 */
function placeholder(title, opts = {}) {
  const w = opts.width ?? 640;
  const h = opts.height ?? 240;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><rect x="0.5" y="0.5" width="${w - 1}" height="${h - 1}" fill="none" stroke="#888"/><text x="8" y="20">${title}</text></svg>`;
}

/**
 * Connections that appear in the records, the one that moved the most payload bytes first.
 * @param {readonly TraceRecord[]} records
 * @returns {ConnectionSummary[]}
 */
export function connectionsIn(records) {
  /** @type {Map<ConnId, ConnectionSummary>} */
  const seen = new Map();
  for (const r of records) {
    if (r.type !== 'frame' || !r.tcp || r.tcp.conn === null) continue;
    let s = seen.get(r.tcp.conn);
    if (!s) seen.set(r.tcp.conn, (s = { conn: r.tcp.conn, bytes: 0, first: r.t, last: r.t, state: null }));
    s.bytes += r.tcp.len;
    s.last = r.t;
  }
  for (const r of records) {
    if (r.type === 'state') {
      const s = seen.get(r.conn);
      if (s) s.state = r.to;
    }
  }
  return [...seen.values()].sort((a, b) => b.bytes - a.bytes);
}

/** @param {readonly TraceRecord[]} records @param {ConnId} conn @param {ChartOptions} [opts] */
export function timeSequenceSvg(records, conn, opts) {
  return placeholder(`time-sequence ${conn} (${records.length} records)`, opts);
}

/** @param {readonly TraceRecord[]} records @param {ConnId} conn @param {ChartOptions} [opts] */
export function cwndSvg(records, conn, opts) {
  return placeholder(`cwnd ${conn} (${records.length} records)`, opts);
}

/** @param {readonly TraceRecord[]} records @param {ConnId} conn @param {ChartOptions} [opts] */
export function rttSvg(records, conn, opts) {
  return placeholder(`rtt ${conn} (${records.length} records)`, opts);
}

/** @param {readonly TraceRecord[]} records @param {ConnId} conn @param {ChartOptions} [opts] */
export function ladderSvg(records, conn, opts) {
  return placeholder(`ladder ${conn} (${records.length} records)`, opts);
}

/**
 * @param {TcpState | null} current
 * @param {{ from: TcpState, to: TcpState } | null} last
 * @param {ChartOptions} [opts]
 */
export function stateDiagramSvg(current, last, opts) {
  return placeholder(`state ${current ?? '-'}${last ? ` (${last.from} -> ${last.to})` : ''}`, opts);
}
