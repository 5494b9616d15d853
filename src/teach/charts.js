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
// Additions: escapeXml(text); STATE_DIAGRAM_EDGES (the figure's arrows as data).
//
// Every element a reader (or a test) may want to find carries a class: 'seg', 'seg
// retransmit', 'rexmit-mark', 'ack-line', 'window-line', 'sack', 'dsack', 'cwnd-line',
// 'ssthresh-line', 'phase-band', 'rtt-sample', 'srtt-line', 'rto-line', 'ladder-arrow',
// 'state-label', 'fsm-state', 'fsm-edge'. No element has an id, so that several charts can
// share one page or one SVG document.

/** @typedef {import('../trace/schema.ts').TraceRecord} TraceRecord */
/** @typedef {import('../trace/schema.ts').FrameRecord} FrameRecord */
/** @typedef {import('../trace/schema.ts').TcpFields} TcpFields */
/** @typedef {import('../trace/schema.ts').CongestionRecord} CongestionRecord */
/** @typedef {import('../trace/schema.ts').RttRecord} RttRecord */
/** @typedef {import('../trace/schema.ts').StateRecord} StateRecord */
/** @typedef {import('../trace/schema.ts').RetransmitRecord} RetransmitRecord */
/** @typedef {import('../trace/schema.ts').ConnId} ConnId */
/** @typedef {import('../tcp/state.ts').TcpState} TcpState */
/** @typedef {import('../tcp/state.ts').TcpEventName} TcpEventName */
/** @typedef {import('../tcp/tcb.ts').RecoveryPhase} RecoveryPhase */
/**
 * width/height in pixels; from/to: the time window in ms (the x axis spans exactly it when
 * given, so that charts drawn with the same window line up); last: the ladder's segment
 * count; direction: the time-sequence graph's data direction ('out': what the stack sent,
 * 'in': what it received; default the one that moved more bytes); title: replaces the
 * chart's own title ('' for none).
 * @typedef {{ width?: number, height?: number, from?: number, to?: number, last?: number,
 *   direction?: 'in' | 'out', title?: string }} ChartOptions
 */
/** @typedef {{ conn: ConnId, bytes: number, first: number, last: number, state: TcpState | null }} ConnectionSummary */
/** @typedef {FrameRecord & { tcp: TcpFields }} TcpFrame */

// ---------------------------------------------------------------------------------------------
// Text, numbers, colours

const FONT = 'font-family="DejaVu Sans, Verdana, sans-serif"';

/** Colours after tcptrace's (xplot) conventions where it has one. */
const COLOUR = {
  axis: '#444',
  grid: '#e4e4e4',
  text: '#222',
  segment: '#1f4e9c',
  retransmit: '#d62728',
  ack: '#2ca02c',
  window: '#b8860b',
  sack: '#9467bd',
  dsack: '#e377c2',
  cwnd: '#1f4e9c',
  ssthresh: '#d62728',
  srtt: '#1f4e9c',
  rto: '#d62728',
  sample: '#555',
  lit: '#ffd54f',
  taken: '#e8590c',
};

/** @type {Record<RecoveryPhase, { colour: string, label: string }>} */
const PHASES = {
  open: { colour: 'none', label: 'open' },
  'fast-recovery': { colour: '#ffcc80', label: 'fast recovery (RFC 6582)' },
  'sack-recovery': { colour: '#b3e5fc', label: 'SACK recovery (RFC 6675)' },
  loss: { colour: '#ef9a9a', label: 'loss (after RTO, RFC 5681 3.1)' },
};

/**
 * Text made safe for SVG/XML content and attribute values.
 * @param {string} text
 */
export function escapeXml(text) {
  return text.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

/** A coordinate with one decimal: enough for a screen, short in the file. @param {number} v */
function n(v) {
  return String(Math.round(v * 10) / 10);
}

/**
 * @param {number} x @param {number} y @param {string} words
 * @param {{ anchor?: 'start' | 'middle' | 'end', size?: number, colour?: string, weight?: string, cls?: string, rotate?: boolean, halo?: boolean }} [o]
 */
function text(x, y, words, o = {}) {
  const rotate = o.rotate ? ` transform="rotate(-90 ${n(x)} ${n(y)})"` : '';
  const cls = o.cls ? ` class="${o.cls}"` : '';
  const weight = o.weight ? ` font-weight="${o.weight}"` : '';
  // A white outline under the letters keeps a label legible over the lines it crosses.
  const halo = o.halo ? ' stroke="#fff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"' : '';
  return `<text x="${n(x)}" y="${n(y)}" font-size="${o.size ?? 11}" text-anchor="${o.anchor ?? 'start'}" fill="${o.colour ?? COLOUR.text}"${weight}${halo}${cls}${rotate}>${escapeXml(words)}</text>`;
}

/** @param {number} w @param {number} h @param {string} cls @param {string[]} body */
function svg(w, h, cls, body) {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="${cls}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ${FONT}>\n` +
    `<rect class="background" x="0" y="0" width="${w}" height="${h}" fill="#fff"/>\n` +
    body.join('\n') +
    '\n</svg>\n'
  );
}

/** A connection's name for a title: `A:P > B:Q` reads as "from the stack to its peer". @param {ConnId} conn */
function connTitle(conn) {
  return conn.replace('>', ' \u2192 ');
}

// ---------------------------------------------------------------------------------------------
// Scales and axes

/** A tick step of 1, 2 or 5 times a power of ten giving about `count` ticks. @param {number} span @param {number} count */
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
}

/**
 * @typedef {{ map: (v: number) => number, ticks: number[], lo: number, hi: number, log: boolean }} Scale
 */

/**
 * @param {number} lo @param {number} hi domain
 * @param {number} r0 @param {number} r1 range (pixels)
 * @param {number} tickCount
 * @returns {Scale}
 */
function linearScale(lo, hi, r0, r1, tickCount) {
  if (!(hi > lo)) hi = lo + 1;
  const step = niceStep(hi - lo, tickCount);
  /** @type {number[]} */
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  const k = (r1 - r0) / (hi - lo);
  return { map: (v) => r0 + (v - lo) * k, ticks, lo, hi, log: false };
}

/**
 * A logarithmic scale with ticks at 1, 2 and 5 times the powers of ten: RTT and RTO differ by
 * two orders of magnitude on a LAN (2 ms against Linux's 200 ms floor, RFC 6298 2.4's 1 s).
 * @param {number} lo @param {number} hi (> 0)
 * @param {number} r0 @param {number} r1
 * @returns {Scale}
 */
function logScale(lo, hi, r0, r1) {
  const l0 = Math.log10(lo);
  const l1 = Math.log10(hi);
  /** @type {number[]} */
  const ticks = [];
  for (let p = Math.floor(l0); p <= Math.ceil(l1); p++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** p;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
    }
  }
  const k = (r1 - r0) / (l1 - l0);
  return { map: (v) => r0 + (Math.log10(Math.max(v, lo)) - l0) * k, ticks, lo, hi, log: true };
}

/** Decimals that show a tick step exactly. @param {number} step */
function decimalsFor(step) {
  return Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
}

/** @param {Scale} scale @param {number} divisor */
function tickLabels(scale, divisor) {
  const t = scale.ticks;
  if (scale.log) return t.map((v) => String(Number((v / divisor).toPrecision(3))));
  const step = t.length > 1 ? (/** @type {number} */ (t[1]) - /** @type {number} */ (t[0])) / divisor : 1;
  const d = decimalsFor(step);
  return t.map((v) => (v / divisor).toFixed(d));
}

/**
 * The unit a time axis reads best in: ms for spans under 10 s, s above.
 * @param {number} lo @param {number} hi ms
 */
function timeUnit(lo, hi) {
  return Math.max(Math.abs(lo), Math.abs(hi)) >= 10_000 ? { name: 's', divisor: 1000 } : { name: 'ms', divisor: 1 };
}

/** Bytes, kB or MB (decimal, as tcptrace and Wireshark label sequence axes). @param {number} max */
function byteUnit(max) {
  return max >= 10_000_000 ? { name: 'MB', divisor: 1e6 } : max >= 10_000 ? { name: 'kB', divisor: 1000 } : { name: 'bytes', divisor: 1 };
}

/** @typedef {{ left: number, top: number, right: number, bottom: number }} Area */

/**
 * The frame, the grid, the ticks and their labels, the axis titles.
 * @param {Area} area
 * @param {Scale} xs @param {{ name: string, divisor: number }} xUnit @param {string} xTitle
 * @param {Scale} ys @param {{ name: string, divisor: number }} yUnit @param {string} yTitle
 */
function axes(area, xs, xUnit, xTitle, ys, yUnit, yTitle) {
  /** @type {string[]} */
  const out = [];
  /** @type {string[]} */
  const grid = [];
  /** @type {string[]} */
  const ticks = [];
  const xl = tickLabels(xs, xUnit.divisor);
  xs.ticks.forEach((v, i) => {
    const x = xs.map(v);
    grid.push(`M${n(x)} ${n(area.top)}V${n(area.bottom)}`);
    ticks.push(`M${n(x)} ${n(area.bottom)}v5`);
    out.push(text(x, area.bottom + 17, xl[i] ?? '', { anchor: 'middle', cls: 'tick-label' }));
  });
  const yl = tickLabels(ys, yUnit.divisor);
  ys.ticks.forEach((v, i) => {
    const y = ys.map(v);
    grid.push(`M${n(area.left)} ${n(y)}H${n(area.right)}`);
    ticks.push(`M${n(area.left)} ${n(y)}h-5`);
    out.push(text(area.left - 8, y + 4, yl[i] ?? '', { anchor: 'end', cls: 'tick-label' }));
  });
  return [
    `<path class="grid" d="${grid.join('')}" stroke="${COLOUR.grid}" stroke-width="1" fill="none"/>`,
    `<rect class="frame" x="${n(area.left)}" y="${n(area.top)}" width="${n(area.right - area.left)}" height="${n(area.bottom - area.top)}" fill="none" stroke="${COLOUR.axis}"/>`,
    `<path class="ticks" d="${ticks.join('')}" stroke="${COLOUR.axis}" fill="none"/>`,
    ...out,
    text((area.left + area.right) / 2, area.bottom + 35, `${xTitle} (${xUnit.name})`, { anchor: 'middle', cls: 'axis-title' }),
    text(area.left - 52, (area.top + area.bottom) / 2, `${yTitle} (${yUnit.name})`, { anchor: 'middle', rotate: true, cls: 'axis-title' }),
  ];
}

/**
 * A legend in one row: each entry a small sample of its mark and its words.
 * @param {number} x @param {number} y
 * @param {Array<{ label: string, colour: string, kind: 'line' | 'dash' | 'bar' | 'dot' | 'band' }>} items
 */
function legend(x, y, items) {
  const out = ['<g class="legend">'];
  let at = x;
  for (const it of items) {
    if (it.kind === 'line' || it.kind === 'dash') {
      const dash = it.kind === 'dash' ? ' stroke-dasharray="4 3"' : '';
      out.push(`<path d="M${n(at)} ${n(y - 4)}h18" stroke="${it.colour}" stroke-width="2"${dash}/>`);
    } else if (it.kind === 'bar') {
      out.push(`<path d="M${n(at + 9)} ${n(y - 10)}v12M${n(at + 6)} ${n(y - 10)}h6M${n(at + 6)} ${n(y + 2)}h6" stroke="${it.colour}" stroke-width="1.5"/>`);
    } else if (it.kind === 'dot') {
      out.push(`<circle cx="${n(at + 9)}" cy="${n(y - 4)}" r="2.5" fill="${it.colour}"/>`);
    } else {
      out.push(`<rect x="${n(at)}" y="${n(y - 10)}" width="18" height="12" fill="${it.colour}" fill-opacity="0.6"/>`);
    }
    out.push(text(at + 22, y, it.label, { size: 10 }));
    at += 30 + it.label.length * 5.6;
  }
  out.push('</g>');
  return out;
}

// Loops, not Math.min(...values): a spread of 100,000 arguments overflows V8's stack.
/** @param {readonly number[]} values */
function minOf(values) {
  let m = Infinity;
  for (const v of values) if (v < m) m = v;
  return m;
}
/** @param {readonly number[]} values */
function maxOf(values) {
  let m = -Infinity;
  for (const v of values) if (v > m) m = v;
  return m;
}

/** Records of one connection inside the window. @param {ChartOptions} opts @param {number} t */
function inWindow(opts, t) {
  return (opts.from === undefined || t >= opts.from) && (opts.to === undefined || t <= opts.to);
}

/** @param {readonly TraceRecord[]} records @param {ConnId} conn @returns {TcpFrame[]} */
function tcpFrames(records, conn) {
  /** @type {TcpFrame[]} */
  const out = [];
  for (const r of records) if (r.type === 'frame' && r.tcp && r.tcp.conn === conn) out.push(/** @type {TcpFrame} */ (r));
  return out;
}

/**
 * The x domain: the window when given, else the span of `times`, widened when empty or a point.
 * @param {ChartOptions} opts @param {number[]} times
 */
function timeDomain(opts, times) {
  let lo = opts.from ?? minOf(times);
  let hi = opts.to ?? maxOf(times);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) (lo = 0), (hi = 1);
  if (hi - lo < 1e-6) (lo -= 0.5), (hi += 0.5);
  return { lo, hi };
}

/**
 * A plotting chart's frame: its size, its plot area (room for the title and legend above, the
 * tick labels and axis titles left and below) and its body, the title first.
 * @param {ChartOptions} opts @param {number} defaultHeight @param {number} top @param {string} title
 */
function chartStart(opts, defaultHeight, top, title) {
  const w = opts.width ?? 720;
  const h = opts.height ?? defaultHeight;
  const area = { left: 76, top, right: w - 16, bottom: h - 44 };
  const body = [text(area.left, 18, opts.title ?? title, { size: 13, weight: 'bold', cls: 'title' })];
  return { w, h, area, body };
}

/** A placeholder body saying why a chart is empty. @param {Area} area @param {string} why */
function emptyNote(area, why) {
  return text((area.left + area.right) / 2, (area.top + area.bottom) / 2, why, { anchor: 'middle', colour: '#888', size: 13, cls: 'empty-note' });
}

/**
 * A step line (a value holds until the next one: cumulative ACK, cwnd, SRTT) as one path; null
 * values break it (ssthresh before the first loss is "infinite", RFC 5681 3.1).
 * @param {Array<{ t: number, v: number | null }>} points in time order
 * @param {(t: number) => number} sx @param {(v: number) => number} sy @param {number} endT
 */
function stepPath(points, sx, sy, endT) {
  let d = '';
  /** @type {number | null} */
  let prev = null;
  for (const p of points) {
    const x = n(sx(p.t));
    if (p.v === null) {
      if (prev !== null) d += `H${x}`;
    } else if (prev === null) d += `M${x} ${n(sy(p.v))}`;
    else d += `H${x}V${n(sy(p.v))}`;
    prev = p.v;
  }
  if (prev !== null && d) d += `H${n(sx(endT))}`;
  return d;
}

// ---------------------------------------------------------------------------------------------
// Connections

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

// ---------------------------------------------------------------------------------------------
// Time-sequence graph (W. R. Stevens, TCP/IP Illustrated vol. 1; tcptrace -S)

/** @param {TcpFields} tcp */
function seqSpace(tcp) {
  return tcp.len + (tcp.flags.includes('S') ? 1 : 0) + (tcp.flags.includes('F') ? 1 : 0);
}

/**
 * The direction that moved more payload bytes: 'out' when the stack sent more.
 * @param {readonly TcpFrame[]} frames
 * @returns {'in' | 'out'}
 */
function busierDirection(frames) {
  let out = 0;
  let inb = 0;
  for (const f of frames) f.dir === 'out' ? (out += f.tcp.len) : (inb += f.tcp.len);
  return inb > out ? 'in' : 'out';
}

/**
 * x: time; y: relative sequence number of the data direction. Each data segment is a vertical
 * bar from its first byte to one past its last (tcptrace's "I" with end ticks); a
 * retransmission is red with an R above it. The ACK line steps up with the peer's cumulative
 * ACK, the window line is ACK + window (what the sender may send up to, RFC 9293 3.8.6), and
 * SACK blocks (RFC 2018) are shaded bars at the time of the ACK carrying them; a D-SACK (RFC
 * 2883: a block below the cumulative ACK, reporting a duplicate) in its own colour.
 * More segments than pixel columns: the new-data segments are merged into one bar per column;
 * every retransmission is kept.
 * @param {readonly TraceRecord[]} records @param {ConnId} conn @param {ChartOptions} [opts]
 */
export function timeSequenceSvg(records, conn, opts = {}) {
  const all = tcpFrames(records, conn);
  const dir = opts.direction ?? busierDirection(all);
  const sender = dir === 'out' ? conn.split('>')[0] : conn.split('>')[1];
  const { w, h, area, body } = chartStart(opts, 400, 54, `time-sequence: ${connTitle(conn)}, data sent by ${sender ?? '?'}`);

  // Segments and ACKs in time order; retransmission as the sender flagged it (out) or, for
  // what the peer sent, by tcptrace's rule: it starts below the highest byte seen so far.
  /** @type {Array<{ t: number, lo: number, hi: number, rexmit: boolean, flags: string }>} */
  const segs = [];
  /** @type {Array<{ t: number, ack: number, win: number, sack: Array<[number, number]> }>} */
  const acks = [];
  let highest = -Infinity;
  for (const f of all) {
    const tcp = f.tcp;
    if (f.dir === dir) {
      const space = seqSpace(tcp);
      if (space === 0) continue;
      const rexmit = tcp.retransmit || tcp.rseq < highest;
      highest = Math.max(highest, tcp.rseq + space);
      if (inWindow(opts, f.t)) segs.push({ t: f.t, lo: tcp.rseq, hi: tcp.rseq + tcp.len, rexmit, flags: tcp.flags });
    } else if (tcp.flags.includes('.') && inWindow(opts, f.t)) {
      acks.push({ t: f.t, ack: tcp.rack, win: tcp.rack + tcp.winBytes, sack: tcp.sack });
    }
  }
  if (segs.length === 0 && acks.length === 0) {
    body.push(emptyNote(area, `no segments of ${conn} in this window`));
    return svg(w, h, 'chart time-sequence', body);
  }

  const { lo: t0, hi: t1 } = timeDomain(opts, [...segs.map((s) => s.t), ...acks.map((a) => a.t)]);
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const s of segs) (yLo = Math.min(yLo, s.lo)), (yHi = Math.max(yHi, s.hi));
  for (const a of acks) {
    yLo = Math.min(yLo, a.ack);
    yHi = Math.max(yHi, a.ack);
    for (const [l, r] of a.sack) (yLo = Math.min(yLo, l)), (yHi = Math.max(yHi, r));
  }
  // The window line is drawn when it fits without squashing the data (within half the data's
  // height above it); else it is clipped at the top and the legend says so.
  const winHi = maxOf(acks.map((a) => a.win));
  const span = Math.max(1, yHi - yLo);
  const windowFits = winHi <= yHi + span * 0.5;
  if (windowFits && winHi > yHi) yHi = winHi;
  if (yHi - yLo < 1) yHi = yLo + 1;
  const yPad = (yHi - yLo) * 0.04;
  const xs = linearScale(t0, t1, area.left, area.right, Math.max(2, Math.round((area.right - area.left) / 90)));
  const ys = linearScale(Math.max(0, yLo - yPad), yHi + yPad, area.bottom, area.top, Math.max(2, Math.round((area.bottom - area.top) / 45)));
  const clampY = (/** @type {number} */ v) => Math.max(area.top, Math.min(area.bottom, ys.map(v)));
  body.push(...axes(area, xs, timeUnit(t0, t1), 'time', ys, byteUnit(ys.hi), 'relative sequence number'));

  const columns = Math.max(1, Math.floor(area.right - area.left));
  const column = (/** @type {number} */ t) => Math.max(0, Math.min(columns - 1, Math.floor(xs.map(t) - area.left)));

  // SACK blocks first, under everything else.
  const thinAcks = acks.length > 2 * columns;
  const sackOut = [];
  let hasSack = false;
  let hasDsack = false;
  if (thinAcks) {
    // Per pixel column, the union of the blocks reported in it.
    /** @type {Map<number, Array<[number, number]>>} */
    const byColumn = new Map();
    for (const a of acks) {
      if (a.sack.length === 0) continue;
      const c = column(a.t);
      const list = byColumn.get(c) ?? [];
      for (const [l, r] of a.sack) list.push([l, r]);
      byColumn.set(c, list);
    }
    for (const [c, list] of byColumn) {
      list.sort((p, q) => p[0] - q[0]);
      /** @type {Array<[number, number]>} */
      const merged = [];
      for (const b of list) {
        const top = merged[merged.length - 1];
        if (top && b[0] <= top[1]) top[1] = Math.max(top[1], b[1]);
        else merged.push([b[0], b[1]]);
      }
      for (const [l, r] of merged) {
        hasSack = true;
        sackOut.push(`<rect class="sack" x="${n(area.left + c - 1)}" y="${n(clampY(r))}" width="2" height="${n(Math.max(1, clampY(l) - clampY(r)))}"/>`);
      }
    }
  } else {
    for (const a of acks) {
      a.sack.forEach(([l, r], i) => {
        // RFC 2883 4: a D-SACK is the first block, below the cumulative ACK or inside the
        // second block.
        const second = a.sack[1];
        const dsack = i === 0 && (r <= a.ack || (second !== undefined && l >= second[0] && r <= second[1]));
        dsack ? (hasDsack = true) : (hasSack = true);
        const x = xs.map(a.t);
        sackOut.push(
          `<rect class="${dsack ? 'dsack' : 'sack'}"${dsack ? ` fill="${COLOUR.dsack}"` : ''} x="${n(x - 1)}" y="${n(clampY(r))}" width="2" height="${n(Math.max(1, clampY(l) - clampY(r)))}"><title>${dsack ? 'D-SACK' : 'SACK'} ${l}:${r} at ${a.t} ms</title></rect>`,
        );
      });
    }
  }
  body.push(`<g fill="${COLOUR.sack}" fill-opacity="0.45">${sackOut.join('')}</g>`);

  // The ACK and window lines: per pixel column the highest ACK and the last window when thinned.
  let ackPoints = acks.map((a) => ({ t: a.t, ack: a.ack, win: a.win }));
  if (thinAcks) {
    /** @type {Map<number, { t: number, ack: number, win: number }>} */
    const byColumn = new Map();
    for (const a of ackPoints) {
      const c = column(a.t);
      const p = byColumn.get(c);
      if (!p) byColumn.set(c, { ...a });
      else (p.t = a.t), (p.ack = Math.max(p.ack, a.ack)), (p.win = a.win);
    }
    ackPoints = [...byColumn.values()];
  }
  if (ackPoints.length > 0) {
    const ackD = stepPath(ackPoints.map((a) => ({ t: a.t, v: a.ack })), xs.map, ys.map, t1);
    const winD = stepPath(ackPoints.map((a) => ({ t: a.t, v: a.win })), xs.map, clampY, t1);
    body.push(`<path class="window-line" d="${winD}" stroke="${COLOUR.window}" stroke-width="1.2" fill="none"/>`);
    body.push(`<path class="ack-line" d="${ackD}" stroke="${COLOUR.ack}" stroke-width="1.5" fill="none"/>`);
  }

  // Segments: one element each (new data merged per column when there are too many).
  const bars = [];
  const marks = [];
  const thinSegs = segs.length > columns;
  /** @param {{ t: number, lo: number, hi: number, rexmit: boolean, flags: string }} s @param {boolean} ends @param {string} extra */
  const bar = (s, ends, extra) => {
    const x = xs.map(s.t);
    const yTop = ys.map(s.hi);
    const yBot = ys.map(s.lo);
    // A zero-length SYN or FIN still gets a visible mark.
    const y2 = Math.min(yTop, yBot - 2);
    let d = `M${n(x)} ${n(yBot)}V${n(y2)}`;
    if (ends) d += `M${n(x - 2.5)} ${n(yBot)}h5M${n(x - 2.5)} ${n(y2)}h5`;
    const cls = s.rexmit ? 'seg retransmit' : 'seg';
    const colour = s.rexmit ? COLOUR.retransmit : COLOUR.segment;
    const what = s.hi > s.lo ? `${s.lo}:${s.hi}` : s.flags.includes('S') ? 'SYN' : 'FIN';
    return `<path class="${cls}"${extra} d="${d}" stroke="${colour}" stroke-width="${s.rexmit ? 1.6 : 1.2}"><title>${escapeXml(`${s.rexmit ? 'retransmission ' : ''}${what} at ${s.t} ms`)}</title></path>`;
  };
  if (thinSegs) {
    /** @type {Map<number, { t: number, lo: number, hi: number, count: number }>} */
    const byColumn = new Map();
    for (const s of segs) {
      if (s.rexmit) continue;
      const c = column(s.t);
      const m = byColumn.get(c);
      if (!m) byColumn.set(c, { t: s.t, lo: s.lo, hi: s.hi, count: 1 });
      else (m.lo = Math.min(m.lo, s.lo)), (m.hi = Math.max(m.hi, s.hi)), m.count++;
    }
    for (const m of byColumn.values()) bars.push(bar({ ...m, rexmit: false, flags: '' }, false, ` data-segments="${m.count}"`));
  }
  for (const s of segs) {
    if (thinSegs && !s.rexmit) continue;
    bars.push(bar(s, !thinSegs, ''));
    if (s.rexmit) marks.push(text(xs.map(s.t), ys.map(s.hi) - 4, 'R', { anchor: 'middle', size: 9, colour: COLOUR.retransmit, weight: 'bold', cls: 'rexmit-mark' }));
  }
  body.push(`<g class="segments" fill="none">${bars.join('')}</g>`, `<g class="marks">${marks.join('')}</g>`);

  /** @type {Parameters<typeof legend>[2]} */
  const items = [{ label: thinSegs ? 'data segments (merged per pixel)' : 'data segment', colour: COLOUR.segment, kind: 'bar' }];
  if (segs.some((s) => s.rexmit)) items.push({ label: 'retransmission (R)', colour: COLOUR.retransmit, kind: 'bar' });
  if (ackPoints.length > 0) {
    items.push({ label: 'cumulative ACK', colour: COLOUR.ack, kind: 'line' });
    items.push({ label: windowFits ? 'ACK + receive window' : 'ACK + receive window (clipped)', colour: COLOUR.window, kind: 'line' });
  }
  if (hasSack) items.push({ label: 'SACK block', colour: COLOUR.sack, kind: 'band' });
  if (hasDsack) items.push({ label: 'D-SACK', colour: COLOUR.dsack, kind: 'band' });
  body.push(...legend(area.left, 40, items));
  return svg(w, h, 'chart time-sequence', body);
}

// ---------------------------------------------------------------------------------------------
// Congestion window

/**
 * cwnd and ssthresh in segments (bytes / MSS) as step lines from the 'cc' records, and the
 * recovery phases (fast recovery, SACK recovery, loss after an RTO) as shaded bands.
 * @param {readonly TraceRecord[]} records @param {ConnId} conn @param {ChartOptions} [opts]
 */
export function cwndSvg(records, conn, opts = {}) {
  const { w, h, area, body } = chartStart(opts, 240, 50, `congestion window: ${connTitle(conn)}`);
  /** @type {CongestionRecord[]} */
  const cc = [];
  /** @type {CongestionRecord | null} */
  let before = null;
  for (const r of records) {
    if (r.type !== 'cc' || r.conn !== conn) continue;
    if (opts.from !== undefined && r.t < opts.from) before = r;
    else if (inWindow(opts, r.t)) cc.push(r);
  }
  if (cc.length === 0 && !before) {
    body.push(emptyNote(area, 'no congestion records (cc) in this window'));
    return svg(w, h, 'chart cwnd', body);
  }
  const { lo: t0, hi: t1 } = timeDomain(opts, cc.map((r) => r.t));
  /** @type {Array<{ t: number, cwnd: number, ssthresh: number | null, phase: RecoveryPhase }>} */
  const points = [];
  const first = cc[0];
  if (before) points.push({ t: t0, cwnd: before.cwnd / before.mss, ssthresh: before.ssthresh === null ? null : before.ssthresh / before.mss, phase: before.phase });
  else if (first) {
    const p = first.prev;
    points.push({ t: Math.min(t0, first.t), cwnd: p.cwnd / first.mss, ssthresh: p.ssthresh === null ? null : p.ssthresh / first.mss, phase: p.phase });
  }
  for (const r of cc) points.push({ t: r.t, cwnd: r.cwnd / r.mss, ssthresh: r.ssthresh === null ? null : r.ssthresh / r.mss, phase: r.phase });

  let yHi = 1;
  for (const p of points) yHi = Math.max(yHi, p.cwnd, p.ssthresh ?? 0);
  const xs = linearScale(t0, t1, area.left, area.right, Math.max(2, Math.round((area.right - area.left) / 90)));
  const ys = linearScale(0, yHi * 1.08, area.bottom, area.top, Math.max(2, Math.round((area.bottom - area.top) / 35)));
  const clampX = (/** @type {number} */ t) => Math.max(area.left, Math.min(area.right, xs.map(t)));

  // Bands: each run of a phase other than open, from its first record to the next change.
  const bands = [];
  /** @type {Set<RecoveryPhase>} */
  const seenPhases = new Set();
  for (let i = 0; i < points.length; i++) {
    const p = /** @type {typeof points[number]} */ (points[i]);
    if (p.phase === 'open') continue;
    let j = i + 1;
    while (j < points.length && /** @type {typeof points[number]} */ (points[j]).phase === p.phase) j++;
    const end = j < points.length ? /** @type {typeof points[number]} */ (points[j]).t : t1;
    const x0 = clampX(p.t);
    const x1 = Math.max(x0 + 1, clampX(end));
    seenPhases.add(p.phase);
    bands.push(
      `<rect class="phase-band" data-phase="${p.phase}" x="${n(x0)}" y="${n(area.top)}" width="${n(x1 - x0)}" height="${n(area.bottom - area.top)}" fill="${PHASES[p.phase].colour}" fill-opacity="0.6"><title>${escapeXml(PHASES[p.phase].label)}</title></rect>`,
    );
    i = j - 1;
  }
  body.push(`<g class="phases">${bands.join('')}</g>`);
  body.push(...axes(area, xs, timeUnit(t0, t1), 'time', ys, { name: 'segments', divisor: 1 }, 'cwnd, ssthresh'));
  const ssD = stepPath(points.map((p) => ({ t: p.t, v: p.ssthresh })), clampX, ys.map, t1);
  const cwD = stepPath(points.map((p) => ({ t: p.t, v: p.cwnd })), clampX, ys.map, t1);
  // ssthresh over cwnd: its dashes stay visible where the two are equal (after a halving).
  body.push(`<path class="cwnd-line" d="${cwD}" stroke="${COLOUR.cwnd}" stroke-width="1.8" fill="none"/>`);
  if (ssD) body.push(`<path class="ssthresh-line" d="${ssD}" stroke="${COLOUR.ssthresh}" stroke-width="1.5" stroke-dasharray="5 3" fill="none"/>`);

  /** @type {Parameters<typeof legend>[2]} */
  const items = [{ label: 'cwnd', colour: COLOUR.cwnd, kind: 'line' }];
  items.push({ label: ssD ? 'ssthresh' : 'ssthresh (infinite: no loss yet)', colour: COLOUR.ssthresh, kind: 'dash' });
  for (const phase of /** @type {RecoveryPhase[]} */ (['fast-recovery', 'sack-recovery', 'loss'])) {
    if (seenPhases.has(phase)) items.push({ label: PHASES[phase].label, colour: PHASES[phase].colour, kind: 'band' });
  }
  body.push(...legend(area.left, 38, items));
  return svg(w, h, 'chart cwnd', body);
}

// ---------------------------------------------------------------------------------------------
// RTT

/**
 * RTT samples as dots, SRTT and the RTO (with its backoff) as step lines, in ms (RFC 6298).
 * The y axis turns logarithmic when the RTO towers over the samples.
 * @param {readonly TraceRecord[]} records @param {ConnId} conn @param {ChartOptions} [opts]
 */
export function rttSvg(records, conn, opts = {}) {
  const { w, h, area, body } = chartStart(opts, 240, 50, `round-trip time: ${connTitle(conn)}`);
  /** @type {RttRecord[]} */
  const rtt = [];
  for (const r of records) if (r.type === 'rtt' && r.conn === conn && inWindow(opts, r.t)) rtt.push(r);
  if (rtt.length === 0) {
    body.push(emptyNote(area, 'no RTT records in this window'));
    return svg(w, h, 'chart rtt', body);
  }
  const { lo: t0, hi: t1 } = timeDomain(opts, rtt.map((r) => r.t));
  const ms = (/** @type {number} */ us) => us / 1000;
  const values = [];
  for (const r of rtt) {
    values.push(ms(r.srttUs), ms(r.rtoUs));
    if (r.sampleUs !== undefined) values.push(ms(r.sampleUs));
  }
  const positive = values.filter((v) => v > 0);
  const vMax = Math.max(maxOf(values), 0.001);
  const vMin = positive.length ? minOf(positive) : vMax;
  const log = vMax / vMin > 20;
  const xs = linearScale(t0, t1, area.left, area.right, Math.max(2, Math.round((area.right - area.left) / 90)));
  const ys = log
    ? logScale(10 ** Math.floor(Math.log10(vMin)), 10 ** Math.ceil(Math.log10(vMax)), area.bottom, area.top)
    : linearScale(0, vMax * 1.1, area.bottom, area.top, Math.max(2, Math.round((area.bottom - area.top) / 35)));
  body.push(...axes(area, xs, timeUnit(t0, t1), 'time', ys, { name: log ? 'ms, log scale' : 'ms', divisor: 1 }, 'RTT, SRTT, RTO'));
  const rtoD = stepPath(rtt.map((r) => ({ t: r.t, v: ms(r.rtoUs) })), xs.map, ys.map, t1);
  const srttD = stepPath(rtt.map((r) => ({ t: r.t, v: r.srttUs > 0 ? ms(r.srttUs) : null })), xs.map, ys.map, t1);
  body.push(`<path class="rto-line" d="${rtoD}" stroke="${COLOUR.rto}" stroke-width="1.5" stroke-dasharray="5 3" fill="none"/>`);
  if (srttD) body.push(`<path class="srtt-line" d="${srttD}" stroke="${COLOUR.srtt}" stroke-width="1.8" fill="none"/>`);
  const dots = [];
  for (const r of rtt) {
    if (r.cause !== 'sample' || r.sampleUs === undefined) continue;
    dots.push(`<circle class="rtt-sample" cx="${n(xs.map(r.t))}" cy="${n(ys.map(ms(r.sampleUs)))}" r="2.5"><title>RTT ${ms(r.sampleUs)} ms at ${r.t} ms</title></circle>`);
  }
  body.push(`<g fill="${COLOUR.sample}">${dots.join('')}</g>`);
  body.push(
    ...legend(area.left, 38, [
      { label: 'RTT sample', colour: COLOUR.sample, kind: 'dot' },
      { label: 'SRTT', colour: COLOUR.srtt, kind: 'line' },
      { label: 'RTO (with backoff)', colour: COLOUR.rto, kind: 'dash' },
    ]),
  );
  return svg(w, h, 'chart rtt', body);
}

// ---------------------------------------------------------------------------------------------
// Ladder (message sequence) diagram

/** tcpdump's words for a segment, relative numbers. @param {TcpFields} tcp */
function segmentLabel(tcp) {
  const parts = [`[${tcp.flags}]`];
  if (tcp.len > 0) parts.push(`seq ${tcp.rseq}:${tcp.rseq + tcp.len}`);
  else if (tcp.flags.includes('S') || tcp.flags.includes('F') || tcp.flags.includes('R')) parts.push(`seq ${tcp.rseq}`);
  if (tcp.flags.includes('.')) parts.push(`ack ${tcp.rack}`);
  parts.push(`win ${tcp.winBytes}`);
  if (tcp.sack.length > 0) parts.push(`sack ${tcp.sack.map(([l, r]) => `${l}:${r}`).join(' ')}`);
  if (tcp.len > 0) parts.push(`len ${tcp.len}`);
  return parts.join(' ');
}

/**
 * The remote end's states, inferred from the segments, as RFC 9293 3.10.7 moves a peer: the
 * trace sees only this end, so what the peer sent proves the state it was in (a SYN without ACK:
 * SYN-SENT; a SYN,ACK: SYN-RECEIVED; a FIN: it closed), and what we sent moves it when it got
 * there. A segment of ours may be lost: its effect is taken only when the peer shows it arrived
 * (it acknowledged our SYN or FIN; it did not send its SYN or FIN again after our ACK of it),
 * at the last copy sent before that proof. Returns, per frame index, the state after it.
 * @param {readonly TcpFrame[]} frames
 * @returns {Map<number, TcpState>}
 */
function inferRemoteStates(frames) {
  /** @type {Map<number, TcpState>} */
  const changes = new Map();
  /** @type {TcpState | null} */
  let remote = null;
  /** @type {number | null} */
  let remoteFinEnd = null;
  /** @param {number} i @param {TcpState} s */
  const set = (i, s) => {
    if (remote !== s) changes.set(i, (remote = s));
  };
  /** The peer acknowledged sequence `end` of ours after frame i, with no copy of ours carrying `flag` between. @param {number} i @param {number} end @param {string} flag */
  const provenArrived = (i, end, flag) => {
    for (let j = i + 1; j < frames.length; j++) {
      const f = /** @type {TcpFrame} */ (frames[j]);
      if (f.dir === 'out' && f.tcp.flags.includes(flag)) return false;
      if (f.dir === 'in' && f.tcp.flags.includes('.') && f.tcp.rack >= end) return true;
    }
    return false;
  };
  /** The peer did not send `flag` again after frame i (so our ACK of it arrived). @param {number} i @param {string} flag */
  const notResent = (i, flag) => {
    for (let j = i + 1; j < frames.length; j++) {
      const f = /** @type {TcpFrame} */ (frames[j]);
      if (f.dir === 'in' && f.tcp.flags.includes(flag)) return false;
    }
    return true;
  };
  frames.forEach((f, i) => {
    const fl = f.tcp.flags;
    const syn = fl.includes('S');
    const fin = fl.includes('F');
    const ack = fl.includes('.');
    if (fl.includes('R')) {
      if (f.dir === 'in' || remote !== null) set(i, 'CLOSED');
      return;
    }
    if (f.dir === 'in') {
      if (syn && !ack) set(i, 'SYN-SENT');
      else if (syn) {
        // A SYN,ACK answering our SYN: the peer was listening (RFC 9293 3.10.7.2).
        if (remote === null) changes.set(-1, 'LISTEN');
        set(i, 'SYN-RECEIVED');
      } else if (remote === 'SYN-RECEIVED' || remote === 'SYN-SENT') set(i, 'ESTABLISHED');
      if (fin) {
        remoteFinEnd = f.tcp.rseq + seqSpace(f.tcp);
        if (remote === 'ESTABLISHED') set(i, 'FIN-WAIT-1');
        else if (remote === 'CLOSE-WAIT') set(i, 'LAST-ACK');
      }
      return;
    }
    // Ours, at its arrival.
    if (syn && ack && remote === 'SYN-SENT' && provenArrived(i, f.tcp.rseq + 1, 'S')) set(i, 'ESTABLISHED');
    if (!syn && ack && remote === 'SYN-RECEIVED' && f.tcp.rack >= 1 && notResent(i, 'S')) set(i, 'ESTABLISHED');
    if (ack && remoteFinEnd !== null && f.tcp.rack >= remoteFinEnd && notResent(i, 'F')) {
      if (remote === 'FIN-WAIT-1') set(i, 'FIN-WAIT-2');
      else if (remote === 'CLOSING') set(i, 'TIME-WAIT');
      else if (remote === 'LAST-ACK') set(i, 'CLOSED');
    }
    if (fin && provenArrived(i, f.tcp.rseq + seqSpace(f.tcp), 'F')) {
      if (remote === 'ESTABLISHED') set(i, 'CLOSE-WAIT');
      else if (remote === 'FIN-WAIT-1') set(i, 'CLOSING');
      else if (remote === 'FIN-WAIT-2') set(i, 'TIME-WAIT');
    }
  });
  return changes;
}

/**
 * The last `opts.last` (default 20) segments of the connection between two vertical lines, the
 * stack's end on the left and the peer on the right, time running down (one row per segment,
 * its time on the left: gaps of seconds and microseconds read alike). Each arrow slopes from
 * sender to receiver and carries tcpdump's words; a retransmission is red. The states are
 * written beside each line where they change: this end's from the 'state' records, the
 * peer's inferred from the segments (inferRemoteStates).
 * @param {readonly TraceRecord[]} records @param {ConnId} conn @param {ChartOptions} [opts]
 */
export function ladderSvg(records, conn, opts = {}) {
  const lastN = Math.max(1, opts.last ?? 20);
  const w = opts.width ?? 720;
  const all = tcpFrames(records, conn);
  const startIndex = Math.max(0, all.length - lastN);
  const shown = all.slice(startIndex);
  const rows = Math.max(1, shown.length);
  const top = 78;
  const bottom = 24;
  const rowH = opts.height !== undefined ? Math.max(12, (opts.height - top - bottom) / rows) : 32;
  const h = opts.height ?? Math.round(top + rows * rowH + bottom);
  const localX = 170;
  const remoteX = w - 170;
  // An arrow falls a third of a row: the next row's arrow starts below its end, so that the
  // arrows of a data segment and of the ACK after it do not cross.
  const slope = rowH * 0.35;
  const [local = '?', remote = '?'] = conn.split('>');
  const body = [text(16, 18, opts.title ?? `ladder: the last ${shown.length} segments of ${connTitle(conn)}`, { size: 13, weight: 'bold', cls: 'title' })];
  body.push(text(localX, 40, `${local} (this stack)`, { anchor: 'middle', weight: 'bold' }));
  body.push(text(remoteX, 40, `${remote} (peer)`, { anchor: 'middle', weight: 'bold' }));
  body.push(text(60, 40, 'time (ms)', { anchor: 'end', size: 10 }));
  const lineTop = 48;
  body.push(`<path class="ladder-lines" d="M${localX} ${lineTop}V${n(h - bottom + 8)}M${remoteX} ${lineTop}V${n(h - bottom + 8)}" stroke="${COLOUR.axis}" stroke-width="2"/>`);
  if (shown.length === 0) {
    body.push(text(w / 2, top + 20, `no segments of ${conn}`, { anchor: 'middle', colour: '#888', cls: 'empty-note' }));
    return svg(w, h, 'chart ladder', body);
  }

  /** @param {number} k row @param {'local' | 'remote'} side */
  const rowY = (k, side) => {
    const f = /** @type {TcpFrame} */ (shown[k]);
    const y = top + k * rowH + slope;
    // Out: leaves the stack at its time, reaches the peer later. In: left the peer earlier.
    return side === 'local' ? y : f.dir === 'out' ? y + slope : y - slope;
  };
  /** @param {'local' | 'remote'} side @param {number} y @param {TcpState} state @param {string} why */
  const stateLabel = (side, y, state, why) => {
    const x = side === 'local' ? localX - 8 : remoteX + 8;
    const width = state.length * 6.6 + 10;
    const rx = side === 'local' ? x - width : x;
    return `<g class="state-label ${side}" data-state="${state}"><rect x="${n(rx)}" y="${n(y - 9)}" width="${n(width)}" height="14" rx="3" fill="${COLOUR.lit}" fill-opacity="0.7"/>${text(rx + width / 2, y + 2, state, { anchor: 'middle', size: 10 })}<title>${escapeXml(why)}</title></g>`;
  };

  // This end's states: each 'state' record goes below the frame record before it (record order:
  // the tracer writes the frame, then the change it caused).
  /** @type {string[]} */
  const labels = [];
  let frameIndex = -1;
  /** @type {StateRecord | null} */
  let initialLocal = null;
  for (const r of records) {
    if (r.type === 'frame' && r.tcp && r.tcp.conn === conn) frameIndex++;
    else if (r.type === 'state' && r.conn === conn) {
      const k = frameIndex - startIndex;
      if (k < 0) initialLocal = r;
      else labels.push(stateLabel('local', Math.min(rowY(k, 'local') + rowH / 2, h - bottom), r.to, `${r.from} -> ${r.to}: ${r.event} (${r.rfc})`));
    }
  }
  if (initialLocal) labels.push(stateLabel('local', top - 14, initialLocal.to, `${initialLocal.from} -> ${initialLocal.to}: ${initialLocal.event}`));
  const remoteStates = inferRemoteStates(all);
  /** @type {TcpState | null} */
  let initialRemote = null;
  for (const [i, state] of [...remoteStates].sort((a, b) => a[0] - b[0])) {
    const k = i - startIndex;
    if (k < 0) initialRemote = state;
    else labels.push(stateLabel('remote', rowY(k, 'remote') + 4, state, 'inferred from the segments (RFC 9293 3.10.7)'));
  }
  if (initialRemote) labels.push(stateLabel('remote', top - 14, initialRemote, 'inferred from the segments (RFC 9293 3.10.7)'));

  /** @type {string[]} */
  const arrows = [];
  let highest = -Infinity;
  let highestIn = -Infinity;
  for (let i = 0; i < startIndex; i++) {
    const f = /** @type {TcpFrame} */ (all[i]);
    if (f.dir === 'out') highest = Math.max(highest, f.tcp.rseq + seqSpace(f.tcp));
    else highestIn = Math.max(highestIn, f.tcp.rseq + seqSpace(f.tcp));
  }
  shown.forEach((f, k) => {
    const space = seqSpace(f.tcp);
    const high = f.dir === 'out' ? highest : highestIn;
    const rexmit = space > 0 && (f.tcp.retransmit || f.tcp.rseq < high);
    if (f.dir === 'out') highest = Math.max(highest, f.tcp.rseq + space);
    else highestIn = Math.max(highestIn, f.tcp.rseq + space);
    const [x0, x1] = f.dir === 'out' ? [localX, remoteX] : [remoteX, localX];
    const y0 = f.dir === 'out' ? rowY(k, 'local') : rowY(k, 'remote');
    const y1 = f.dir === 'out' ? rowY(k, 'remote') : rowY(k, 'local');
    const colour = rexmit ? COLOUR.retransmit : f.dir === 'out' ? COLOUR.segment : COLOUR.ack;
    // The arrowhead by hand (no <marker>: it would need an id).
    const len = Math.hypot(x1 - x0, y1 - y0);
    const ux = (x1 - x0) / len;
    const uy = (y1 - y0) / len;
    const head = `M${n(x1)} ${n(y1)}L${n(x1 - 9 * ux - 4 * uy)} ${n(y1 - 9 * uy + 4 * ux)}L${n(x1 - 9 * ux + 4 * uy)} ${n(y1 - 9 * uy - 4 * ux)}Z`;
    const label = segmentLabel(f.tcp) + (rexmit ? ' retransmission' : '');
    const mid = (localX + remoteX) / 2;
    arrows.push(
      `<g class="ladder-arrow${rexmit ? ' retransmit' : ''}" data-dir="${f.dir}"><path d="M${n(x0)} ${n(y0)}L${n(x1)} ${n(y1)}" stroke="${colour}" stroke-width="1.4"/><path d="${head}" fill="${colour}"/>` +
        // Above the arrow along the label's whole length (it spans about 2/3 of the arrow).
        text(mid, (y0 + y1) / 2 - 4 - Math.abs(y1 - y0) / 3, label, { anchor: 'middle', size: 10, colour: rexmit ? COLOUR.retransmit : COLOUR.text, halo: true }) +
        '</g>',
    );
    body.push(text(60, rowY(k, 'local') + 4, f.t.toFixed(3), { anchor: 'end', size: 10, cls: 'time-label' }));
  });
  body.push(...arrows, ...labels);
  return svg(w, h, 'chart ladder', body);
}

// ---------------------------------------------------------------------------------------------
// RFC 9293's state diagram (section 3.3.2, Figure 5)

/**
 * The boxes where Figure 5 puts them (centres); CLOSED appears twice, as in the figure.
 * @type {Array<{ state: TcpState, x: number, y: number, h: number }>}
 */
const FSM_BOXES = [
  { state: 'CLOSED', x: 380, y: 60, h: 40 },
  { state: 'LISTEN', x: 380, y: 170, h: 40 },
  { state: 'SYN-RECEIVED', x: 100, y: 290, h: 60 },
  { state: 'SYN-SENT', x: 660, y: 290, h: 60 },
  { state: 'ESTABLISHED', x: 380, y: 400, h: 40 },
  { state: 'FIN-WAIT-1', x: 100, y: 510, h: 40 },
  { state: 'CLOSE-WAIT', x: 660, y: 510, h: 40 },
  { state: 'FIN-WAIT-2', x: 100, y: 630, h: 40 },
  { state: 'CLOSING', x: 380, y: 630, h: 40 },
  { state: 'LAST-ACK', x: 660, y: 630, h: 40 },
  { state: 'TIME-WAIT', x: 380, y: 740, h: 40 },
  { state: 'CLOSED', x: 660, y: 740, h: 40 },
];
const BOX_W = 116;

/**
 * @typedef {{ from: TcpState, to: TcpState, event: string, action: string,
 *   events: TcpEventName[], stack?: { from: TcpState, to: TcpState, why: string },
 *   path: Array<[number, number]>, label: [number, number, 'start' | 'middle' | 'end'] }} FsmEdge
 */

/**
 * The arrows of RFC 9293's Figure 5 with their labels as the RFC writes them (event above the
 * line, action below; "x" is no action), and the events of src/tcp/state.ts TCP_EVENTS that
 * make each move in this stack. Copied as data (this module has no imports at run time);
 * test/unit/charts.test.ts checks each against TCP_EVENTS. Where the stack differs from the
 * figure, `stack` says which transition it makes instead and why: a listener is its own
 * object, not a TCB in LISTEN, so a passive connection is born CLOSED -> SYN-RECEIVED, and
 * its failure goes to CLOSED while the listener stays; a CLOSE in SYN-RECEIVED is queued
 * until ESTABLISHED (RFC 9293 3.10.4 allows either).
 * @type {readonly FsmEdge[]}
 */
export const STATE_DIAGRAM_EDGES = [
  { from: 'CLOSED', to: 'LISTEN', event: 'passive OPEN', action: 'create TCB', events: [], stack: { from: 'CLOSED', to: 'CLOSED', why: 'listen() makes a listener, not a TCB' }, path: [[365, 80], [365, 150]], label: [355, 108, 'end'] },
  { from: 'LISTEN', to: 'CLOSED', event: 'CLOSE', action: 'delete TCB', events: [], stack: { from: 'CLOSED', to: 'CLOSED', why: 'closing the listener deletes no TCB' }, path: [[395, 150], [395, 80]], label: [405, 108, 'start'] },
  { from: 'CLOSED', to: 'SYN-SENT', event: 'active OPEN', action: 'create TCB, snd SYN', events: ['activeOpen'], path: [[438, 50], [700, 50], [700, 260]], label: [570, 30, 'middle'] },
  { from: 'LISTEN', to: 'SYN-RECEIVED', event: 'rcv SYN', action: 'snd SYN,ACK', events: ['synOnListener', 'cookieAck'], stack: { from: 'CLOSED', to: 'SYN-RECEIVED', why: 'the listener makes a new TCB in SYN-RECEIVED' }, path: [[355, 190], [355, 268], [158, 268]], label: [345, 218, 'end'] },
  { from: 'LISTEN', to: 'SYN-SENT', event: 'SEND', action: 'snd SYN', events: [], stack: { from: 'CLOSED', to: 'CLOSED', why: 'a listener does not send (Linux has no SEND in LISTEN either)' }, path: [[405, 190], [405, 268], [602, 268]], label: [415, 218, 'start'] },
  { from: 'SYN-SENT', to: 'SYN-RECEIVED', event: 'rcv SYN', action: 'snd SYN,ACK', events: ['simultaneousOpen'], path: [[602, 290], [158, 290]], label: [470, 284, 'middle'] },
  { from: 'SYN-SENT', to: 'CLOSED', event: 'CLOSE', action: 'delete TCB', events: ['closeInSynSent'], path: [[630, 260], [630, 72], [438, 72]], label: [620, 140, 'end'] },
  { from: 'SYN-RECEIVED', to: 'LISTEN', event: 'rcv RST (note 1)', action: '', events: ['resetReceived', 'refused'], stack: { from: 'SYN-RECEIVED', to: 'CLOSED', why: 'the TCB goes; its listener is still listening' }, path: [[100, 260], [100, 170], [322, 170]], label: [210, 160, 'middle'] },
  { from: 'SYN-RECEIVED', to: 'ESTABLISHED', event: 'rcv ACK of SYN', action: 'x', events: ['synAcked'], path: [[158, 312], [355, 312], [355, 380]], label: [250, 330, 'middle'] },
  { from: 'SYN-SENT', to: 'ESTABLISHED', event: 'rcv SYN,ACK', action: 'snd ACK', events: ['synAckReceived'], path: [[602, 312], [405, 312], [405, 380]], label: [510, 330, 'middle'] },
  { from: 'SYN-RECEIVED', to: 'FIN-WAIT-1', event: 'CLOSE', action: 'snd FIN', events: ['queuedClose'], stack: { from: 'ESTABLISHED', to: 'FIN-WAIT-1', why: 'the CLOSE waits for ESTABLISHED, then sends the FIN' }, path: [[80, 320], [80, 490]], label: [90, 400, 'start'] },
  { from: 'ESTABLISHED', to: 'FIN-WAIT-1', event: 'CLOSE', action: 'snd FIN', events: ['closeCall'], path: [[355, 420], [355, 500], [158, 500]], label: [345, 446, 'end'] },
  { from: 'ESTABLISHED', to: 'CLOSE-WAIT', event: 'rcv FIN', action: 'snd ACK', events: ['finReceived'], path: [[405, 420], [405, 500], [602, 500]], label: [415, 446, 'start'] },
  { from: 'FIN-WAIT-1', to: 'FIN-WAIT-2', event: 'rcv ACK of FIN', action: 'x', events: ['finAcked'], path: [[90, 530], [90, 610]], label: [100, 566, 'start'] },
  { from: 'FIN-WAIT-1', to: 'CLOSING', event: 'rcv FIN', action: 'snd ACK', events: ['finReceived'], path: [[158, 520], [370, 520], [370, 610]], label: [360, 566, 'end'] },
  { from: 'CLOSE-WAIT', to: 'LAST-ACK', event: 'CLOSE', action: 'snd FIN', events: ['closeCall'], path: [[660, 530], [660, 610]], label: [650, 566, 'end'] },
  { from: 'FIN-WAIT-2', to: 'TIME-WAIT', event: 'rcv FIN', action: 'snd ACK', events: ['finReceived'], path: [[100, 650], [100, 740], [322, 740]], label: [110, 690, 'start'] },
  { from: 'CLOSING', to: 'TIME-WAIT', event: 'rcv ACK of FIN', action: 'x', events: ['finAcked'], path: [[380, 650], [380, 720]], label: [390, 680, 'start'] },
  { from: 'LAST-ACK', to: 'CLOSED', event: 'rcv ACK of FIN', action: 'x', events: ['finAcked'], path: [[660, 650], [660, 720]], label: [670, 680, 'start'] },
  { from: 'TIME-WAIT', to: 'CLOSED', event: 'Timeout=2MSL', action: 'delete TCB', events: ['timeWaitTimeout'], path: [[438, 740], [602, 740]], label: [520, 734, 'middle'] },
];

/**
 * The words of the events the figure's edges name, as TCP_EVENTS has them (a state record's
 * `event`): they tell apart two edges the stack makes with the same move (ESTABLISHED ->
 * FIN-WAIT-1 is a CLOSE in ESTABLISHED or one queued in SYN-RECEIVED). Checked against
 * TCP_EVENTS by test/unit/charts.test.ts.
 * @type {Readonly<Partial<Record<TcpEventName, string>>>}
 */
export const STATE_EVENT_WORDS = {
  activeOpen: 'OPEN call (active)',
  synOnListener: 'SYN on a listening port',
  cookieAck: 'ACK carrying a valid SYN cookie',
  simultaneousOpen: 'SYN received in SYN-SENT (simultaneous open)',
  synAckReceived: 'SYN-ACK acknowledging our SYN',
  synAcked: 'ACK of our SYN',
  closeCall: 'CLOSE call',
  queuedClose: 'CLOSE call queued in SYN-RECEIVED, now ESTABLISHED',
  finReceived: 'FIN received',
  finAcked: 'ACK of our FIN',
  resetReceived: 'RST received',
  refused: 'RST or ICMP unreachable answering our SYN',
  closeInSynSent: 'CLOSE call in SYN-SENT',
  timeWaitTimeout: '2*MSL in TIME-WAIT elapsed',
};

/**
 * The figure's edges that show the stack's move: those making from -> to; of several, those
 * whose events have the move's words, else the figure's own (not remapped) edge.
 * @param {{ from: TcpState, to: TcpState, event?: string }} move
 * @returns {FsmEdge[]}
 */
function edgesShowing(move) {
  const candidates = STATE_DIAGRAM_EDGES.filter((e) => {
    const s = e.stack ?? e;
    return e.events.length > 0 && s.from === move.from && s.to === move.to;
  });
  if (candidates.length < 2) return candidates;
  const byWords = candidates.filter((e) => e.events.some((ev) => STATE_EVENT_WORDS[ev] === move.event));
  if (byWords.length > 0) return byWords;
  const own = candidates.filter((e) => !e.stack);
  return own.length > 0 ? own : candidates;
}

/** @param {number} x @param {number} y @param {number} ux @param {number} uy @param {string} colour */
function arrowHead(x, y, ux, uy, colour) {
  return `<path d="M${n(x)} ${n(y)}L${n(x - 9 * ux - 4 * uy)} ${n(y - 9 * uy + 4 * ux)}L${n(x - 9 * ux + 4 * uy)} ${n(y - 9 * uy - 4 * ux)}Z" fill="${colour}"/>`;
}

/** The box of a state nearest a point (CLOSED has two). @param {TcpState} state @param {number} x @param {number} y */
function boxOf(state, x, y) {
  const boxes = FSM_BOXES.filter((b) => b.state === state);
  boxes.sort((a, b) => Math.hypot(a.x - x, a.y - y) - Math.hypot(b.x - x, b.y - y));
  return /** @type {typeof FSM_BOXES[number]} */ (boxes[0]);
}

/**
 * RFC 9293's Figure 5: the eleven states where the figure has them, its arrows with their
 * event / action labels. The current state is lit; the transition just taken (`last`, as a
 * state record gives it) is drawn thick in orange. A move the figure leaves out (an RST or a
 * timeout to CLOSED, FIN-WAIT-1 -> TIME-WAIT of note 2) is drawn dashed between the two boxes
 * when it is the one just taken, with `last.event` as its label.
 * @param {TcpState | null} current
 * @param {{ from: TcpState, to: TcpState, event?: string } | null} last
 * @param {ChartOptions} [opts]
 */
export function stateDiagramSvg(current, last, opts = {}) {
  const W = 760;
  const H = 830;
  const w = opts.width ?? W;
  const h = opts.height ?? Math.round((w * H) / W);
  /** @type {string[]} */
  const out = [];
  out.push(text(16, 18, opts.title ?? 'TCP connection states (RFC 9293 3.3.2, Figure 5)', { size: 13, weight: 'bold', cls: 'title' }));
  const taken = last ? edgesShowing(last) : [];
  for (const e of STATE_DIAGRAM_EDGES) {
    const isTaken = taken.includes(e);
    const colour = isTaken ? COLOUR.taken : COLOUR.axis;
    const pts = e.path;
    const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x} ${y}`).join('');
    const [ax, ay] = /** @type {[number, number]} */ (pts[pts.length - 1]);
    const [bx, by] = /** @type {[number, number]} */ (pts[pts.length - 2]);
    const len = Math.hypot(ax - bx, ay - by);
    const [lx, ly, anchor] = e.label;
    const width = Math.max(e.event.length, e.action.length) * 5.4;
    const ruleX = anchor === 'start' ? lx : anchor === 'end' ? lx - width : lx - width / 2;
    const labelColour = isTaken ? COLOUR.taken : COLOUR.text;
    const weight = isTaken ? 'bold' : undefined;
    out.push(
      `<g class="fsm-edge${isTaken ? ' taken' : ''}" data-from="${e.from}" data-to="${e.to}"><path d="${d}" stroke="${colour}" stroke-width="${isTaken ? 3 : 1.2}" fill="none"/>` +
        arrowHead(ax, ay, (ax - bx) / len, (ay - by) / len, colour) +
        text(lx, ly, e.event, { anchor, size: 10, colour: labelColour, weight }) +
        (e.action ? `<path d="M${n(ruleX)} ${ly + 3}h${n(width)}" stroke="${labelColour}" stroke-width="0.7"/>` + text(lx, ly + 14, e.action, { anchor, size: 10, colour: labelColour, weight }) : '') +
        `<title>${escapeXml(`${e.from} -> ${e.to}: ${e.event}${e.action ? ' / ' + e.action : ''}${e.stack ? ` (tapstack: ${e.stack.why})` : ''}`)}</title></g>`,
    );
  }
  if (last && taken.length === 0) {
    // A move the figure omits (note 3: RSTs and aborts to CLOSED; note 2): a dashed arrow.
    const from = boxOf(last.from, 380, 400);
    const to = boxOf(last.to, from.x, from.y);
    const len = Math.hypot(to.x - from.x, to.y - from.y) || 1;
    const ux = (to.x - from.x) / len;
    const uy = (to.y - from.y) / len;
    // Leave and enter the boxes at their borders.
    const edgeAt = (/** @type {typeof from} */ b, /** @type {number} */ sign) => {
      const k = Math.min(BOX_W / 2 / Math.max(Math.abs(ux), 1e-9), b.h / 2 / Math.max(Math.abs(uy), 1e-9));
      return [b.x + sign * ux * k, b.y + sign * uy * k];
    };
    const [x0, y0] = /** @type {[number, number]} */ (edgeAt(from, 1));
    const [x1, y1] = /** @type {[number, number]} */ (edgeAt(to, -1));
    const words = last.event ?? `${last.from} -> ${last.to}`;
    out.push(
      `<g class="fsm-edge taken extra" data-from="${last.from}" data-to="${last.to}"><path d="M${n(x0)} ${n(y0)}L${n(x1)} ${n(y1)}" stroke="${COLOUR.taken}" stroke-width="3" stroke-dasharray="7 4" fill="none"/>` +
        arrowHead(x1, y1, ux, uy, COLOUR.taken) +
        text((x0 + x1) / 2 + 6, (y0 + y1) / 2 - 6, words, { size: 10, colour: COLOUR.taken, weight: 'bold' }) +
        '</g>',
    );
  }
  for (const b of FSM_BOXES) {
    const lit = b.state === current;
    out.push(
      `<g class="fsm-state${lit ? ' current' : ''}" data-state="${b.state}"><rect x="${b.x - BOX_W / 2}" y="${b.y - b.h / 2}" width="${BOX_W}" height="${b.h}" rx="4" fill="${lit ? COLOUR.lit : '#fff'}" stroke="${lit ? COLOUR.taken : COLOUR.axis}" stroke-width="${lit ? 2.5 : 1.2}"/>` +
        text(b.x, b.y + 4, b.state, { anchor: 'middle', size: 12, weight: lit ? 'bold' : undefined }) +
        '</g>',
    );
  }
  out.push(
    text(16, 790, 'note 1: SYN-RECEIVED -> LISTEN on RST only after a passive OPEN. Not drawn (RFC 9293 notes 2, 3): FIN-WAIT-1 -> TIME-WAIT', { size: 9, colour: '#666' }),
    text(16, 803, 'on a FIN that also acknowledges ours; RST or ABORT from any state to CLOSED. Lit: the current state; orange: the move just', { size: 9, colour: '#666' }),
    text(16, 816, 'taken (dashed when the figure omits it).', { size: 9, colour: '#666' }),
  );
  const svgText = svg(W, H, 'chart state-diagram', out);
  // Scaled by width/height, the figure's coordinates kept (viewBox).
  return svgText.replace(`width="${W}" height="${H}"`, `width="${w}" height="${h}"`);
}
