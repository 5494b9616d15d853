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

import { parseIpv4 } from '../ipv4/address.ts';

/** Protocol bits of a Subject. */
export const PROTO_BIT = {
  ethernet: 1,
  arp: 2,
  ip: 4,
  icmp: 8,
  igmp: 16,
  udp: 32,
  tcp: 64,
} as const;

export type FilterProtocol = keyof typeof PROTO_BIT;

/** What a record is about, for the filter. Addresses and ports are null when it has none. */
export interface Subject {
  protos: number;
  src: number | null;
  dst: number | null;
  sport: number | null;
  dport: number | null;
  /** Matches when either direction does (a connection's events, an ICMP error's quote). */
  eitherWay: boolean;
}

export type FilterPredicate = (s: Subject) => boolean;

/** A filter that does not parse: the message says what was expected where. */
export class TraceFilterError extends Error {
  constructor(
    message: string,
    readonly filter: string,
    readonly position: number,
  ) {
    super(`bad trace filter "${filter}": ${message} at position ${position}`);
    this.name = 'TraceFilterError';
  }
}

interface Token {
  text: string;
  at: number;
}

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(\(|\)|!|&&|\|\||[^\s()!&|]+|[&|])/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < filter.length && (m = re.exec(filter)) !== null) {
    if (m[1] === undefined) break;
    tokens.push({ text: m[1].toLowerCase(), at: m.index + m[0].length - m[1].length });
  }
  return tokens;
}

type Node = (s: Subject, swapped: boolean) => boolean;

const PROTOCOL_WORDS = new Set(Object.keys(PROTO_BIT).filter((p) => p !== 'ethernet'));

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly filter: string,
  ) {}

  parse(): Node {
    if (this.tokens.length === 0) throw this.error('empty filter');
    const node = this.or();
    if (this.i < this.tokens.length) throw this.error(`unexpected "${this.tokens[this.i]!.text}"`);
    return node;
  }

  private peek(): string | undefined {
    return this.tokens[this.i]?.text;
  }

  private error(message: string): TraceFilterError {
    const at = this.tokens[this.i]?.at ?? this.filter.length;
    return new TraceFilterError(message, this.filter, at);
  }

  private or(): Node {
    let left = this.and();
    while (this.peek() === 'or' || this.peek() === '||') {
      this.i++;
      const a = left;
      const b = this.and();
      left = (s, w) => a(s, w) || b(s, w);
    }
    return left;
  }

  private and(): Node {
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

  private unary(): Node {
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

  private primitive(): Node {
    const t = this.peek();
    if (t === undefined) throw this.error('expected a primitive (tcp, udp, arp, icmp, igmp, ip, host, port, src, dst)');
    if (PROTOCOL_WORDS.has(t)) {
      this.i++;
      const bit = PROTO_BIT[t as FilterProtocol];
      return (s) => (s.protos & bit) !== 0;
    }
    let which: 'src' | 'dst' | 'any' = 'any';
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
    if (which !== 'any' && kind !== undefined && parseIpv4(kind) !== null) return hostNode(which, this.address());
    if (which !== 'any') throw this.error(`expected "host" or "port" after "${which}"`);
    throw this.error(`unknown primitive "${t}"`);
  }

  private number(): number {
    const t = this.peek();
    if (t === undefined || !/^\d+$/.test(t) || Number(t) > 65535) throw this.error('expected a port number (0-65535)');
    this.i++;
    return Number(t);
  }

  private address(): number {
    const t = this.peek();
    const a = t === undefined ? null : parseIpv4(t);
    if (a === null) throw this.error('expected an IPv4 address (A.B.C.D)');
    this.i++;
    return a;
  }
}

function portNode(which: 'src' | 'dst' | 'any', port: number): Node {
  if (which === 'any') return (s) => s.sport === port || s.dport === port;
  const src = which === 'src';
  return (s, w) => ((src !== w ? s.sport : s.dport) === port);
}

function hostNode(which: 'src' | 'dst' | 'any', addr: number): Node {
  if (which === 'any') return (s) => s.src === addr || s.dst === addr;
  const src = which === 'src';
  return (s, w) => ((src !== w ? s.src : s.dst) === addr);
}

/** Parses a filter; throws TraceFilterError when it does not parse. */
export function compileFilter(filter: string): FilterPredicate {
  const node = new Parser(tokenize(filter), filter).parse();
  return (s) => node(s, false) || (s.eitherWay && node(s, true));
}
