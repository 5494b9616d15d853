// @ts-check
// The trace's filter language: a small subset of tcpdump's (pcap-filter(7)), read by a
// recursive-descent parser into a predicate over what a record is about (a Subject).
//
//   expr    := and ( ('or' | '||') and )*
//   and     := unary ( ('and' | '&&') unary | primitive )*     (tcpdump's 'tcp port 7' is 'tcp and port 7')
//   unary   := ('not' | '!') unary | '(' expr ')' | primitive
//   primitive := 'tcp' | 'udp' | 'arp' | 'icmp' | 'igmp' | 'ip'
//              | ['src' | 'dst'] 'host' A.B.C.D | ['src' | 'dst'] 'port' N
//              | 'host' A.B.C.D | 'port' N | ('src' | 'dst') A.B.C.D
//
// A frame is about its own protocols, addresses and ports. An event follows its connection
// (a TCP event matches when a frame of its connection, either way, would), its address (ARP),
// or the datagram an ICMP error quotes; a drop, the frame being received when it happened.
//
// A plain ES module (JSDoc types, no imports at run time), like format-text.js: the live
// tracer, `tapstack show` and the live page filter with the same code.

/** @typedef {import('./schema.ts').TraceRecord} TraceRecord */

/** Protocol bits of a Subject. */
export const PROTO_BIT = /** @type {const} */ ({
  ethernet: 1,
  arp: 2,
  ip: 4,
  icmp: 8,
  igmp: 16,
  udp: 32,
  tcp: 64,
});

/** @typedef {keyof typeof PROTO_BIT} FilterProtocol */

/**
 * The protocols a frame of each layer (a record's `proto`, a drop's `layer`) is about.
 * @type {Readonly<Record<string, number>>}
 */
export const LAYER_PROTOS = {
  ethernet: PROTO_BIT.ethernet,
  arp: PROTO_BIT.arp | PROTO_BIT.ethernet,
  ipv4: PROTO_BIT.ip | PROTO_BIT.ethernet,
  icmp: PROTO_BIT.icmp | PROTO_BIT.ip | PROTO_BIT.ethernet,
  igmp: PROTO_BIT.igmp | PROTO_BIT.ip | PROTO_BIT.ethernet,
  udp: PROTO_BIT.udp | PROTO_BIT.ip | PROTO_BIT.ethernet,
  tcp: PROTO_BIT.tcp | PROTO_BIT.ip | PROTO_BIT.ethernet,
};

/**
 * What a record is about, for the filter. Addresses and ports are null when it has none;
 * `eitherWay`: matches when either direction does (a connection's events, an ICMP error's quote).
 * @typedef {{ protos: number, src: number | null, dst: number | null, sport: number | null, dport: number | null, eitherWay: boolean }} Subject
 */
/** @typedef {(s: Subject) => boolean} FilterPredicate */

/** A filter that does not parse: the message says what was expected where. */
export class TraceFilterError extends Error {
  /** @param {string} message @param {string} filter @param {number} position */
  constructor(message, filter, position) {
    super(`bad trace filter "${filter}": ${message} at position ${position}`);
    this.name = 'TraceFilterError';
    /** @readonly */
    this.filter = filter;
    /** @readonly */
    this.position = position;
  }
}

/**
 * A dotted quad as a number, or null. The same as src/ipv4/address.ts parseIpv4, which this
 * module cannot import: the browser loads it without a bundler.
 * @param {string} text
 */
export function ipv4Number(text) {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return parts.reduce((value, p) => value * 256 + Number(p), 0) >>> 0;
}

/** @typedef {{ text: string, at: number }} Token */

/** @param {string} filter @returns {Token[]} */
function tokenize(filter) {
  /** @type {Token[]} */
  const tokens = [];
  const re = /\s*(\(|\)|!|&&|\|\||[^\s()!&|]+|[&|])/y;
  /** @type {RegExpExecArray | null} */
  let m;
  while (re.lastIndex < filter.length && (m = re.exec(filter)) !== null) {
    if (m[1] === undefined) break;
    tokens.push({ text: m[1].toLowerCase(), at: m.index + m[0].length - m[1].length });
  }
  return tokens;
}

/** @typedef {(s: Subject, swapped: boolean) => boolean} Node */

const PROTOCOL_WORDS = new Set(Object.keys(PROTO_BIT).filter((p) => p !== 'ethernet'));

class Parser {
  /** @param {Token[]} tokens @param {string} filter */
  constructor(tokens, filter) {
    /** @private */
    this.tokens = tokens;
    /** @private */
    this.filter = filter;
    /** @private */
    this.i = 0;
  }

  /** @returns {Node} */
  parse() {
    if (this.tokens.length === 0) throw this.error('empty filter');
    const node = this.or();
    if (this.i < this.tokens.length) throw this.error(`unexpected "${this.tokens[this.i]?.text}"`);
    return node;
  }

  /** @private */
  peek() {
    return this.tokens[this.i]?.text;
  }

  /** @private @param {string} message */
  error(message) {
    const at = this.tokens[this.i]?.at ?? this.filter.length;
    return new TraceFilterError(message, this.filter, at);
  }

  /** @private @returns {Node} */
  or() {
    let left = this.and();
    while (this.peek() === 'or' || this.peek() === '||') {
      this.i++;
      const a = left;
      const b = this.and();
      left = (s, w) => a(s, w) || b(s, w);
    }
    return left;
  }

  /** @private @returns {Node} */
  and() {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t === 'and' || t === '&&') this.i++;
      else if (t === undefined || t === 'or' || t === '||' || t === ')') return left;
      // Juxtaposition is 'and' (tcpdump's 'tcp port 7').
      const a = left;
      const b = this.unary();
      left = (s, w) => a(s, w) && b(s, w);
    }
  }

  /** @private @returns {Node} */
  unary() {
    const t = this.peek();
    if (t === 'not' || t === '!') {
      this.i++;
      const a = this.unary();
      return (s, w) => !a(s, w);
    }
    if (t === '(') {
      this.i++;
      const inner = this.or();
      if (this.peek() !== ')') throw this.error('expected ")"');
      this.i++;
      return inner;
    }
    return this.primitive();
  }

  /** @private @returns {Node} */
  primitive() {
    const t = this.peek();
    if (t === undefined) throw this.error('expected a primitive (tcp, udp, arp, icmp, igmp, ip, host, port, src, dst)');
    if (PROTOCOL_WORDS.has(t)) {
      this.i++;
      const bit = PROTO_BIT[/** @type {FilterProtocol} */ (t)];
      return (s) => (s.protos & bit) !== 0;
    }
    /** @type {'src' | 'dst' | 'any'} */
    let which = 'any';
    if (t === 'src' || t === 'dst') {
      which = t;
      this.i++;
    }
    const kind = this.peek();
    if (kind === 'port') {
      this.i++;
      return portNode(which, this.number());
    }
    if (kind === 'host') {
      this.i++;
      return hostNode(which, this.address());
    }
    // tcpdump's 'src 10.0.0.1': host is the default qualifier.
    if (which !== 'any' && kind !== undefined && ipv4Number(kind) !== null) return hostNode(which, this.address());
    if (which !== 'any') throw this.error(`expected "host" or "port" after "${which}"`);
    throw this.error(`unknown primitive "${t}"`);
  }

  /** @private */
  number() {
    const t = this.peek();
    if (t === undefined || !/^\d+$/.test(t) || Number(t) > 65535) throw this.error('expected a port number (0-65535)');
    this.i++;
    return Number(t);
  }

  /** @private */
  address() {
    const t = this.peek();
    const a = t === undefined ? null : ipv4Number(t);
    if (a === null) throw this.error('expected an IPv4 address (A.B.C.D)');
    this.i++;
    return a;
  }
}

/** @param {'src' | 'dst' | 'any'} which @param {number} port @returns {Node} */
function portNode(which, port) {
  if (which === 'any') return (s) => s.sport === port || s.dport === port;
  const src = which === 'src';
  return (s, w) => (src !== w ? s.sport : s.dport) === port;
}

/** @param {'src' | 'dst' | 'any'} which @param {number} addr @returns {Node} */
function hostNode(which, addr) {
  if (which === 'any') return (s) => s.src === addr || s.dst === addr;
  const src = which === 'src';
  return (s, w) => (src !== w ? s.src : s.dst) === addr;
}

/**
 * Parses a filter; throws TraceFilterError when it does not parse.
 * @param {string} filter
 * @returns {FilterPredicate}
 */
export function compileFilter(filter) {
  const node = new Parser(tokenize(filter), filter).parse();
  return (s) => node(s, false) || (s.eitherWay && node(s, true));
}

const CONN_ID = /^(\d+\.\d+\.\d+\.\d+):(\d+)>(\d+\.\d+\.\d+\.\d+):(\d+)$/;
const QUOTED = /^(tcp|udp|icmp|proto \d+) (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))? > (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))?/;
/** @type {Readonly<Record<string, number>>} */
const QUOTED_PROTOS = { tcp: PROTO_BIT.tcp, udp: PROTO_BIT.udp, icmp: PROTO_BIT.icmp };

/** @param {string | null | undefined} text */
const address = (text) => (text == null ? null : ipv4Number(text));
/** @param {string | undefined} text */
const port = (text) => (text === undefined ? null : Number(text));

/**
 * A connection's events are about both its ends, either way (as the live tracer's connSubject).
 * @param {string} conn
 * @returns {Subject | null}
 */
function connSubject(conn) {
  const m = CONN_ID.exec(conn);
  if (!m) return null;
  return { protos: LAYER_PROTOS.tcp ?? 0, src: address(m[1]), sport: port(m[2]), dst: address(m[3]), dport: port(m[4]), eitherWay: true };
}

/**
 * What a saved record is about, for the filter, as the live tracer decides it (tracer.ts):
 * frames by their own headers, TCP events by their connection, ARP by its address, ICMP
 * errors by the datagram they quote. Null: the record has no subject of its own (meta, and a
 * drop, which belongs to the frame before it at the same time).
 * @param {TraceRecord} r
 * @returns {Subject | null}
 */
export function recordSubject(r) {
  switch (r.type) {
    case 'frame': {
      const ports = r.tcp ?? r.udp;
      return { protos: LAYER_PROTOS[r.proto] ?? PROTO_BIT.ethernet, src: address(r.src), dst: address(r.dst), sport: ports?.sport ?? null, dport: ports?.dport ?? null, eitherWay: false };
    }
    case 'state':
    case 'retransmit':
    case 'cc':
    case 'rtt':
    case 'probe':
      return connSubject(r.conn);
    case 'arp': {
      const ip = address(r.ip);
      return { protos: LAYER_PROTOS.arp ?? 0, src: ip, dst: ip, sport: null, dport: null, eitherWay: false };
    }
    case 'icmp-error': {
      const m = QUOTED.exec(r.about);
      const quoted = m ? (QUOTED_PROTOS[m[1] ?? ''] ?? 0) : 0;
      return { protos: (LAYER_PROTOS.icmp ?? 0) | quoted, src: address(m?.[2]), sport: port(m?.[3]), dst: address(m?.[4]), dport: port(m?.[5]), eitherWay: true };
    }
    default:
      return null;
  }
}

/**
 * A filter over saved records, in order: a record passes as the live tracer would have
 * passed it (a drop goes with the frame it interrupted, at the same time). Stateful: feed it
 * the records in their order. Throws TraceFilterError when the filter does not parse.
 * @param {string} filter
 * @returns {(r: TraceRecord) => boolean}
 */
export function recordFilter(filter) {
  if (filter.trim() === '') return () => true;
  const passes = compileFilter(filter);
  /** @type {{ t: number, passed: boolean } | null} */
  let lastFrame = null;
  return (r) => {
    if (r.type === 'drop') {
      if (lastFrame !== null && lastFrame.t === r.t) return lastFrame.passed;
      return passes({ protos: LAYER_PROTOS[r.layer] ?? PROTO_BIT.ethernet, src: null, dst: null, sport: null, dport: null, eitherWay: false });
    }
    const subject = recordSubject(r);
    const keep = subject === null || passes(subject);
    if (r.type === 'frame') lastFrame = { t: r.t, passed: keep };
    return keep;
  };
}

/**
 * The live page's filter box: the trace's filter language when the text parses as one
 * ('tcp port 80', 'not arp', 'host 10.0.0.1 and udp'), otherwise words that must all appear
 * in the line (a search: 'RACK', 'zero-window', 'TIME-WAIT'). An empty text passes all.
 * @param {string} text
 * @returns {(r: TraceRecord, line: string) => boolean}
 */
export function lineFilter(text) {
  if (text.trim() === '') return () => true;
  try {
    const passes = recordFilter(text);
    return (r) => passes(r);
  } catch (err) {
    if (!(err instanceof TraceFilterError)) throw err;
    const words = text.trim().toLowerCase().split(/\s+/);
    return (_r, line) => {
      const lower = line.toLowerCase();
      return words.every((w) => lower.includes(w));
    };
  }
}
