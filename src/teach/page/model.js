// @ts-check
// The live page's model, without the DOM: the records it holds, the connection table it
// derives from them, the text line of each record and the trace filter. Pure functions and
// plain data, so Node's tests import this file as the browser does (served as is).

/** @typedef {import('../../trace/schema.ts').TraceRecord} TraceRecord */
/** @typedef {import('../../trace/schema.ts').FrameRecord} FrameRecord */
/** @typedef {import('../../trace/schema.ts').ConnId} ConnId */
/** @typedef {import('../../tcp/state.ts').TcpState} TcpState */

/**
 * One row of the connection table, the columns of `ss -tni`. Null where nothing is known yet
 * (a table derived from a trace knows no queues until the stack reports them).
 * @typedef {{
 *   conn: ConnId, local: string, remote: string, state: TcpState | null,
 *   recvQ: number | null, sendQ: number | null,
 *   cwnd: number | null, ssthresh: number | null, mss: number | null,
 *   rttUs: number | null, rttvarUs: number | null, rtoUs: number | null,
 *   retrans: number, bytesSent: number, bytesReceived: number, segsOut: number, segsIn: number,
 *   lastT: number, live: boolean
 * }} ConnectionRow
 */

/**
 * The records the page holds, the last `limit` of them. `base` counts the records dropped
 * from the front, so `base + i` names record i for good (the trace list appends by it).
 */
export class RecordStore {
  /** @param {number} limit */
  constructor(limit) {
    this.limit = limit;
    /** @type {TraceRecord[]} */
    this.records = [];
    this.base = 0;
  }

  /** @param {readonly TraceRecord[]} batch */
  push(batch) {
    for (const r of batch) this.records.push(r);
    // Trimmed in steps of a quarter, not one by one: splice is O(n).
    if (this.records.length > this.limit * 1.25) {
      const drop = this.records.length - this.limit;
      this.records.splice(0, drop);
      this.base += drop;
    }
  }

  clear() {
    this.base += this.records.length;
    this.records = [];
  }

  /** The absolute index one past the last record. */
  get end() {
    return this.base + this.records.length;
  }
}

/**
 * A saved trace (JSON lines) read back: every line that parses as a record with a type; the
 * rest (blank lines, a cut-off last line) is counted, not fatal.
 * @param {string} text
 * @returns {{ records: TraceRecord[], bad: number }}
 */
export function parseJsonLines(text) {
  /** @type {TraceRecord[]} */
  const records = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line);
      if (r && typeof r === 'object' && typeof r.type === 'string' && typeof r.t === 'number') records.push(r);
      else bad++;
    } catch {
      bad++;
    }
  }
  return { records, bad };
}

/**
 * The connection a record is about: a TCP frame's (named from the stack's side, as ConnId,
 * also for a frame no connection took), a TCP event's, or null.
 * @param {TraceRecord} r
 * @returns {ConnId | null}
 */
export function recordConn(r) {
  if (r.type === 'frame') {
    if (!r.tcp) return null;
    if (r.tcp.conn) return r.tcp.conn;
    return r.dir === 'in' ? `${r.dst}:${r.tcp.dport}>${r.src}:${r.tcp.sport}` : `${r.src}:${r.tcp.sport}>${r.dst}:${r.tcp.dport}`;
  }
  if ('conn' in r && typeof r.conn === 'string') return r.conn;
  return null;
}

/** @param {ConnId} conn */
function splitConn(conn) {
  const [local = conn, remote = ''] = conn.split('>');
  return { local, remote };
}

/** @param {ConnId} conn @param {number} t @returns {ConnectionRow} */
function emptyRow(conn, t) {
  return {
    ...splitConn(conn), conn, state: null, recvQ: null, sendQ: null, cwnd: null, ssthresh: null, mss: null,
    rttUs: null, rttvarUs: null, rtoUs: null, retrans: 0, bytesSent: 0, bytesReceived: 0, segsOut: 0, segsIn: 0, lastT: t, live: false,
  };
}

/**
 * The connection table as a trace shows it: for each TCP connection its last state, cwnd,
 * RTT estimate, retransmissions and bytes each way. Connections whose records show no state
 * (a stray segment answered by a reset) are left out.
 * @param {readonly TraceRecord[]} records
 * @returns {Map<ConnId, ConnectionRow>}
 */
export function connectionsFromRecords(records) {
  /** @type {Map<ConnId, ConnectionRow>} */
  const rows = new Map();
  /** @param {ConnId} conn @param {number} t */
  const row = (conn, t) => {
    let r = rows.get(conn);
    if (!r) rows.set(conn, (r = emptyRow(conn, t)));
    r.lastT = t;
    return r;
  };
  for (const r of records) {
    if (r.type === 'frame' && r.tcp && r.tcp.conn) {
      const c = row(r.tcp.conn, r.t);
      if (r.dir === 'out') {
        c.segsOut++;
        c.bytesSent += r.tcp.len;
      } else {
        c.segsIn++;
        c.bytesReceived += r.tcp.len;
      }
    } else if (r.type === 'state') row(r.conn, r.t).state = r.to;
    else if (r.type === 'cc') Object.assign(row(r.conn, r.t), { cwnd: r.cwnd, ssthresh: r.ssthresh, mss: r.mss });
    else if (r.type === 'rtt') Object.assign(row(r.conn, r.t), { rttUs: r.srttUs, rttvarUs: r.rttvarUs, rtoUs: r.rtoUs });
    else if (r.type === 'retransmit') row(r.conn, r.t).retrans++;
  }
  for (const [conn, r] of rows) if (r.state === null && r.cwnd === null) rows.delete(conn);
  return rows;
}

/**
 * The table the page shows: the stack's own list (stack.connections(), Linux's tcp_info
 * names) where it is given, over the rows derived from the trace, which keep connections
 * that have closed since. `live` marks the ones the stack still holds.
 * @param {Map<ConnId, ConnectionRow>} derived
 * @param {readonly any[] | null} stackConnections  stack.connections() as JSON (src/tcp/connections.ts)
 * @returns {ConnectionRow[]}
 */
export function connectionTable(derived, stackConnections) {
  const rows = new Map(derived);
  for (const c of stackConnections ?? []) {
    // Listeners are not connections (ss -t leaves them out too, without -a).
    if (c.state === 'LISTEN') continue;
    const conn = typeof c.conn === 'string' ? c.conn : `${c.localAddress}:${c.localPort}>${c.remoteAddress}:${c.remotePort}`;
    const info = c.info ?? {};
    const r = { ...(rows.get(conn) ?? emptyRow(conn, 0)) };
    /** @param {string} name @param {number | null} fallback */
    const num = (name, fallback) => (typeof info[name] === 'number' ? info[name] : fallback);
    r.state = c.state ?? r.state;
    r.live = true;
    r.mss = num('tcpi_snd_mss', r.mss);
    // tcp_info counts cwnd and ssthresh in segments; the table (as the trace) in bytes.
    const mss = r.mss ?? 1;
    const cwndSegs = num('tcpi_snd_cwnd', null);
    if (cwndSegs !== null) r.cwnd = cwndSegs * mss;
    const ssthreshSegs = num('tcpi_snd_ssthresh', null);
    // Linux reports an "infinite" ssthresh as 0x7fffffff (TCP_INFINITE_SSTHRESH).
    if (ssthreshSegs !== null) r.ssthresh = ssthreshSegs >= 0x7fffffff ? null : ssthreshSegs * mss;
    r.rttUs = num('tcpi_rtt', r.rttUs);
    r.rttvarUs = num('tcpi_rttvar', r.rttvarUs);
    r.rtoUs = num('tcpi_rto', r.rtoUs);
    r.retrans = num('tcpi_total_retrans', r.retrans) ?? r.retrans;
    r.bytesSent = num('tcpi_bytes_sent', r.bytesSent) ?? r.bytesSent;
    r.bytesReceived = num('tcpi_bytes_received', r.bytesReceived) ?? r.bytesReceived;
    r.segsOut = num('tcpi_segs_out', r.segsOut) ?? r.segsOut;
    r.segsIn = num('tcpi_segs_in', r.segsIn) ?? r.segsIn;
    // ss's Recv-Q and Send-Q: bytes received and not read, bytes written and not acknowledged.
    r.recvQ = typeof c.receiveQueue === 'number' ? c.receiveQueue : r.recvQ;
    r.sendQ = typeof c.sendQueue === 'number' ? c.sendQueue : r.sendQ;
    rows.set(conn, r);
  }
  // Live ones first, then the most recent.
  return [...rows.values()].sort((a, b) => Number(b.live) - Number(a.live) || b.lastT - a.lastT);
}

/**
 * The state a connection is in and the transition that led there, from its last state record.
 * @param {readonly TraceRecord[]} records
 * @param {ConnId} conn
 * @returns {{ current: TcpState | null, last: { from: TcpState, to: TcpState } | null }}
 */
export function lastTransition(records, conn) {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i];
    if (r && r.type === 'state' && r.conn === conn) return { current: r.to, last: { from: r.from, to: r.to } };
  }
  return { current: null, last: null };
}
