// @ts-check
// The trace as text: one line per record, tcpdump-like for frames (time, direction, then
// tcpdump's words with relative sequence numbers; a frame out ends with why it was sent) and
// one line per event between them, marked '*', in the words of the rule that made it.
// With colour, each kind of line has its ANSI colour (plain in a pipe, or with NO_COLOR).
//
// A plain ES module (`// @ts-check`, JSDoc types, no imports at run time), like
// src/teach/charts.js: the CLI's trace, `tapstack show` and the live page (which loads it as
// is) print the same lines from the same code.

/** @typedef {import('./schema.ts').TraceRecord} TraceRecord */
/** @typedef {import('./schema.ts').CongestionRecord} CongestionRecord */
/** @typedef {import('./schema.ts').RttRecord} RttRecord */

const RESET = '\x1b[0m';
/** @type {Record<TraceRecord['type'] | 'frame-in' | 'frame-out', string>} */
const COLOURS = {
  meta: '\x1b[1m',
  'frame-in': '\x1b[32m',
  'frame-out': '\x1b[36m',
  frame: '',
  state: '\x1b[1;35m',
  retransmit: '\x1b[1;31m',
  cc: '\x1b[33m',
  rtt: '\x1b[2m',
  probe: '\x1b[34m',
  arp: '\x1b[34m',
  'icmp-error': '\x1b[31m',
  drop: '\x1b[31m',
};

/** The stack's clock in ms, three decimals, right-aligned. @param {number} t */
function time(t) {
  return t.toFixed(3).padStart(10);
}

/**
 * Bytes as segments of mss, to two decimals at most: congestion avoidance grows cwnd by
 * fractions of a segment per ACK (RFC 5681 3.1), which one decimal would print as "10 -> 10.0".
 */
/** @param {number | null} bytes @param {number} mss */
function segments(bytes, mss) {
  if (bytes === null) return 'inf';
  return String(Number((bytes / mss).toFixed(2)));
}

/** @param {number} us */
const ms = (us) => `${(us / 1000).toFixed(us < 10_000 ? 3 : 1).replace(/\.?0+$/, '')} ms`;

/** @param {CongestionRecord} r */
function congestionText(r) {
  const parts = [r.prev.cwnd === 0 ? `cwnd ${segments(r.cwnd, r.mss)}` : `cwnd ${segments(r.prev.cwnd, r.mss)} -> ${segments(r.cwnd, r.mss)}`];
  if (r.ssthresh !== r.prev.ssthresh) parts.push(`ssthresh ${segments(r.prev.ssthresh, r.mss)} -> ${segments(r.ssthresh, r.mss)}`);
  if (r.phase !== r.prev.phase) parts.push(`${r.prev.phase} -> ${r.phase}`);
  return `${parts.join(', ')}: ${r.cause}`;
}

/** @param {RttRecord} r */
function rttText(r) {
  const estimate = `srtt ${ms(r.srttUs)}, rttvar ${ms(r.rttvarUs)}, rto ${ms(r.rtoUs)}`;
  if (r.cause === 'sample') return `rtt sample ${ms(r.sampleUs ?? 0)}: ${estimate}${r.minRttUs !== undefined ? `, min rtt ${ms(r.minRttUs)}` : ''}`;
  return `rto backoff ${r.backoff}: ${estimate} (RFC 6298 5.5)`;
}

/**
 * The body of an event's line (after time and '*').
 * @param {Exclude<TraceRecord, { type: 'meta' | 'frame' }>} r
 */
function eventText(r) {
  switch (r.type) {
    case 'state':
      return `${r.conn} ${r.from} -> ${r.to}: ${r.event} (${r.rfc})`;
    case 'retransmit':
      return `${r.conn} retransmit ${r.why === 'syn' ? 'SYN' : r.len > 0 ? `${r.rseq}:${r.rseq + r.len}` : `${r.rseq}`}: ${r.text}`;
    case 'cc':
      return `${r.conn} ${congestionText(r)}`;
    case 'rtt':
      return `${r.conn} ${rttText(r)}`;
    case 'probe':
      return `${r.conn} ${r.kind === 'zero-window' ? 'zero-window probe (RFC 9293 3.8.6.1)' : 'keepalive probe (RFC 1122 4.2.3.6)'} #${r.count}`;
    case 'arp':
      switch (r.event) {
        case 'request':
          return `arp who-has ${r.ip}`;
        case 'resolved':
          return `arp ${r.ip} is-at ${r.mac}${r.queued ? `, ${r.queued} waiting datagram${r.queued === 1 ? '' : 's'} sent` : ''}`;
        case 'failed':
          return `arp ${r.ip} failed: no reply${r.queued ? `, ${r.queued} waiting datagram${r.queued === 1 ? '' : 's'} dropped` : ''}`;
        case 'updated':
          return `arp ${r.ip} now at ${r.mac}`;
      }
      break;
    case 'icmp-error':
      return `icmp ${r.dir === 'in' ? 'received' : 'sent'}: ${r.kind}, ${r.codeName}, about ${r.about}${r.conn !== undefined ? ` (to ${r.conn})` : ''}`;
    case 'drop':
      return `drop ${r.layer}: ${r.reason}`;
  }
  return '';
}

/**
 * One record as one line of text (without newline).
 * @param {TraceRecord} r
 * @param {boolean} [colour]
 * @returns {string}
 */
export function formatRecord(r, colour = false) {
  /** @type {string} */
  let line;
  /** @type {keyof typeof COLOURS} */
  let kind = r.type;
  if (r.type === 'meta') {
    line = `${time(r.t)}   * trace of ${r.address} (${r.mac}, mtu ${r.mtu}), started ${r.startedAt}`;
  } else if (r.type === 'frame') {
    kind = r.dir === 'in' ? 'frame-in' : 'frame-out';
    const reason = r.tcp?.reason ? `  (${r.tcp.reason})` : '';
    line = `${time(r.t)} ${r.dir === 'in' ? ' in' : 'out'} ${r.summary}${reason}`;
  } else {
    line = `${time(r.t)}   * ${eventText(r)}`;
  }
  return colour ? `${COLOURS[kind]}${line}${RESET}` : line;
}
