// The layered frame builder: one function per protocol returns a plain description of that
// layer's header, `stack(...)` puts them in order (outermost first), and `build()` writes the
// frame with the project's own wire code (ethernet.ts, arp-packet.ts, ipv4-packet.ts,
// icmp-packet.ts, udp-packet.ts, tcp-segment.ts, util/checksum.ts).
//
//   stack(ether(), ipv4({ dst: '10.0.0.2' }), tcp({ dport: 80, flags: 'S' }), 'payload')
//
// Every field can be set. What is left out is filled in: EtherType and IP protocol from the
// next layer, lengths from what follows, checksums computed. A field that is given is written
// exactly as given, even when it is wrong (a bad checksum, a length that lies, a data offset
// past the segment): that is what crafting is for.

import { ARP_REPLY, ARP_REQUEST, emitArp } from '../arp/arp-packet.ts';
import { parseIpv4 } from '../ipv4/address.ts';
import { emitIcmpHeader, ICMP_ECHO_REQUEST } from '../ipv4/icmp-packet.ts';
import { emitIpv4, IPV4_MIN_HEADER, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../ipv4/ipv4-packet.ts';
import { emitEthernet, ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, parseMac } from '../link/ethernet.ts';
import {
  ACK,
  CWR,
  ECE,
  emitTcp,
  FIN,
  newTcpRepr,
  OPT_END,
  OPT_MSS,
  OPT_NOP,
  OPT_SACK,
  OPT_SACK_PERMITTED,
  OPT_TIMESTAMP,
  OPT_WSCALE,
  PSH,
  RST,
  SYN,
  TCP_MIN_HEADER,
  URG,
} from '../tcp/tcp-segment.ts';
import { emitUdpHeader, UDP_HEADER_LEN } from '../udp/udp-packet.ts';
import { finishChecksum, internetChecksum, pseudoHeaderSum, sumBytes } from '../util/checksum.ts';

/** A MAC as text ('02:00:00:00:00:01') or 6 bytes. */
export type MacInput = string | Uint8Array;
/** An IPv4 address as text ('10.0.0.1') or a 32-bit number. */
export type Ipv4Input = string | number;

export interface EtherFields {
  src?: MacInput;
  dst?: MacInput;
  /** EtherType; default from the next layer (0x0800 IPv4, 0x0806 ARP). */
  type?: number;
}

export interface ArpFields {
  /** 1 request (default), 2 reply, or any number; 'who-has' and 'is-at' as scapy names them. */
  op?: number | 'who-has' | 'is-at';
  hwsrc?: MacInput;
  psrc?: Ipv4Input;
  /** Default 00:00:00:00:00:00 (a request does not know it). */
  hwdst?: MacInput;
  pdst?: Ipv4Input;
}

/** IPv4 options (RFC 791 3.1) by name, or any type with its raw data. */
export type Ipv4Option =
  | { kind: 'eol' }
  | { kind: 'nop' }
  /** Record route (type 7): pointer defaults to 4 (the first free slot), then the slots. */
  | { kind: 'record-route'; pointer?: number; addresses: Ipv4Input[] }
  /** Internet timestamp (type 68): pointer default 5, flag (0 stamps only) and overflow default 0. */
  | { kind: 'timestamp'; pointer?: number; overflow?: number; flag?: number; stamps: number[] }
  | { kind: number; data: Uint8Array };

export interface Ipv4Fields {
  src?: Ipv4Input;
  dst?: Ipv4Input;
  ttl?: number;
  id?: number;
  tos?: number;
  flags?: { df?: boolean; mf?: boolean; /** The reserved ("evil", RFC 3514) bit. */ reserved?: boolean };
  /** Fragment offset in bytes (written in 8-byte units, RFC 791). */
  fragOffset?: number;
  /** Raw option bytes (padded with EOL to a multiple of 4), or a list of options. */
  options?: Uint8Array | Ipv4Option[];
  /** Protocol; default from the next layer (1 ICMP, 6 TCP, 17 UDP). */
  proto?: number;
  /** Header length in 32-bit words; default from the options. */
  ihl?: number;
  totalLength?: number;
  checksum?: number;
}

export interface IcmpFields {
  /** Default 8, echo request. */
  type?: number;
  code?: number;
  /** Echo identifier and sequence (the 4 bytes after the checksum). */
  id?: number;
  seq?: number;
  /** Those 4 bytes as one number (next-hop MTU for fragmentation needed); wins over id/seq. */
  rest?: number;
  /** An IP datagram quoted by an error message (RFC 792), placed before the payload. */
  quote?: Packet | Uint8Array;
  checksum?: number;
}

export interface UdpFields {
  sport?: number;
  dport?: number;
  length?: number;
  /** 0 means "no checksum" (RFC 768). */
  checksum?: number;
}

/** TCP options (RFC 9293 3.2, RFC 7323, RFC 2018) by name, or any kind with its raw data. */
export type TcpOption =
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; value: number }
  | { kind: 'sackOk' }
  | { kind: 'sack'; blocks: [number, number][] }
  | { kind: 'timestamp'; val: number; ecr: number }
  | { kind: 'nop' }
  | { kind: 'eol' }
  | { kind: number; data: Uint8Array };

export interface TcpFields {
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  /** scapy's letters (F S R P A U E C: 'S', 'SA', 'PA', 'FA', 'R'), or the flag bits. */
  flags?: string | number;
  window?: number;
  urg?: number;
  /** Data offset in 32-bit words; default from the options. */
  dataOffset?: number;
  /** In order, padded with EOL to a multiple of 4 bytes. */
  options?: TcpOption[];
  checksum?: number;
}

export type Layer =
  | ({ layer: 'ether' } & EtherFields)
  | ({ layer: 'arp' } & ArpFields)
  | ({ layer: 'ipv4' } & Ipv4Fields)
  | ({ layer: 'icmp' } & IcmpFields)
  | ({ layer: 'udp' } & UdpFields)
  | ({ layer: 'tcp' } & TcpFields)
  | { layer: 'raw'; data: Uint8Array };

export const ether = (f: EtherFields = {}): Layer => ({ layer: 'ether', ...f });
export const arp = (f: ArpFields = {}): Layer => ({ layer: 'arp', ...f });
export const ipv4 = (f: Ipv4Fields = {}): Layer => ({ layer: 'ipv4', ...f });
export const icmp = (f: IcmpFields = {}): Layer => ({ layer: 'icmp', ...f });
export const udp = (f: UdpFields = {}): Layer => ({ layer: 'udp', ...f });
export const tcp = (f: TcpFields = {}): Layer => ({ layer: 'tcp', ...f });
export const raw = (data: Uint8Array | string): Layer => ({ layer: 'raw', data: typeof data === 'string' ? Buffer.from(data) : data });

/** What fills the addresses a packet leaves out (a Wire gives its own and its peer's). */
export interface BuildDefaults {
  etherSrc?: MacInput;
  etherDst?: MacInput;
  ipSrc?: Ipv4Input;
  ipDst?: Ipv4Input;
}

/** Layers in order, outermost first. Immutable: `with` gives a changed copy. */
export class Packet {
  constructor(readonly layers: readonly Layer[]) {}

  /** The frame's bytes (a new Buffer). */
  build(defaults: BuildDefaults = {}): Buffer {
    return buildLayers(this.layers, 0, defaults);
  }

  /** A copy with the fields of the first layer of that kind changed. */
  with<K extends Layer['layer']>(kind: K, fields: Partial<Omit<Extract<Layer, { layer: K }>, 'layer'>>): Packet {
    let done = false;
    return new Packet(
      this.layers.map((l) => {
        if (done || l.layer !== kind) return l;
        done = true;
        return { ...l, ...fields } as Layer;
      }),
    );
  }

  /** The first layer of that kind, if any. */
  get<K extends Layer['layer']>(kind: K): Extract<Layer, { layer: K }> | undefined {
    return this.layers.find((l) => l.layer === kind) as Extract<Layer, { layer: K }> | undefined;
  }
}

/** Stacks layers, outermost first; a Buffer or string is a payload. */
export function stack(...layers: (Layer | Uint8Array | string)[]): Packet {
  return new Packet(layers.map((l) => (typeof l === 'string' || l instanceof Uint8Array ? raw(l) : l)));
}

// ---------------------------------------------------------------------------------------

export function toMac(m: MacInput, what: string): Buffer {
  if (typeof m !== 'string') {
    if (m.length !== 6) throw new Error(`${what}: a MAC has 6 bytes, not ${m.length}`);
    return Buffer.from(m);
  }
  const mac = parseMac(m);
  if (mac === null) throw new Error(`${what}: not a MAC address: ${m}`);
  return mac;
}

export function toIpv4(a: Ipv4Input, what: string): number {
  if (typeof a === 'number') return a >>> 0;
  const n = parseIpv4(a);
  if (n === null) throw new Error(`${what}: not an IPv4 address: ${a}`);
  return n;
}

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`craft: ${what} is required`);
  return value;
}

const FLAG_LETTERS: Record<string, number> = { F: FIN, S: SYN, R: RST, P: PSH, A: ACK, U: URG, E: ECE, C: CWR };

export function tcpFlagBits(flags: string | number): number {
  if (typeof flags === 'number') return flags & 0xff;
  let bits = 0;
  for (const ch of flags.toUpperCase()) {
    const bit = FLAG_LETTERS[ch];
    if (bit === undefined) throw new Error(`tcp flags: unknown letter ${ch} (F S R P A U E C)`);
    bits |= bit;
  }
  return bits;
}

/** scapy's letters for flag bits, in its order (F S R P A U E C). */
export function tcpFlagLetters(bits: number): string {
  let text = '';
  for (const [letter, bit] of Object.entries(FLAG_LETTERS)) if ((bits & bit) !== 0) text += letter;
  return text;
}

/** Pads option bytes with End of Option List to a multiple of 4 (RFC 791, RFC 9293 3.1). */
function padToWords(bytes: number[]): Buffer {
  while (bytes.length % 4 !== 0) bytes.push(OPT_END);
  return Buffer.from(bytes);
}

export const IPOPT_RR = 7;
export const IPOPT_TS = 68;

export function encodeIpv4Options(options: Uint8Array | Ipv4Option[]): Buffer {
  if (options instanceof Uint8Array) return padToWords([...options]);
  const out: number[] = [];
  for (const o of options) {
    if (o.kind === 'eol') out.push(0);
    else if (o.kind === 'nop') out.push(1);
    else if (o.kind === 'record-route') {
      out.push(IPOPT_RR, 3 + 4 * o.addresses.length, o.pointer ?? 4);
      for (const a of o.addresses) out.push(...u32(toIpv4(a, 'record-route')));
    } else if (o.kind === 'timestamp') {
      out.push(IPOPT_TS, 4 + 4 * o.stamps.length, o.pointer ?? 5, ((o.overflow ?? 0) << 4) | (o.flag ?? 0));
      for (const s of o.stamps) out.push(...u32(s));
    } else out.push(o.kind, 2 + o.data.length, ...o.data);
  }
  return padToWords(out);
}

export function encodeTcpOptions(options: TcpOption[]): Buffer {
  const out: number[] = [];
  for (const o of options) {
    switch (o.kind) {
      case 'eol':
        out.push(OPT_END);
        break;
      case 'nop':
        out.push(OPT_NOP);
        break;
      case 'mss':
        out.push(OPT_MSS, 4, (o.value >> 8) & 0xff, o.value & 0xff);
        break;
      case 'wscale':
        out.push(OPT_WSCALE, 3, o.value & 0xff);
        break;
      case 'sackOk':
        out.push(OPT_SACK_PERMITTED, 2);
        break;
      case 'sack':
        out.push(OPT_SACK, 2 + 8 * o.blocks.length);
        for (const [left, right] of o.blocks) out.push(...u32(left), ...u32(right));
        break;
      case 'timestamp':
        out.push(OPT_TIMESTAMP, 10, ...u32(o.val), ...u32(o.ecr));
        break;
      default:
        out.push(o.kind, 2 + o.data.length, ...o.data);
    }
  }
  return padToWords(out);
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function asBytes(p: Packet | Uint8Array, defaults: BuildDefaults): Buffer {
  return p instanceof Packet ? p.build(defaults) : Buffer.from(p);
}

/** The EtherType or IP protocol the layer after i stands for. */
function nextKind(layers: readonly Layer[], i: number): Layer['layer'] | undefined {
  return layers[i + 1]?.layer;
}

/** Writes layers[i..] into a new Buffer. `ipSum` carries the pseudo-header addresses down. */
function buildLayers(layers: readonly Layer[], i: number, d: BuildDefaults, ip?: { src: number; dst: number }): Buffer {
  const l = layers[i];
  if (l === undefined) return Buffer.alloc(0);
  switch (l.layer) {
    case 'raw':
      return Buffer.concat([Buffer.from(l.data), buildLayers(layers, i + 1, d, ip)]);
    case 'ether': {
      const inner = buildLayers(layers, i + 1, d, ip);
      const next = nextKind(layers, i);
      const type = l.type ?? (next === 'arp' ? ETHERTYPE_ARP : next === 'ipv4' ? ETHERTYPE_IPV4 : 0);
      const frame = Buffer.alloc(ETH_HEADER_LEN + inner.length);
      emitEthernet(frame, 0, toMac(need(l.dst ?? d.etherDst, 'ether dst'), 'ether dst'), toMac(need(l.src ?? d.etherSrc, 'ether src'), 'ether src'), type);
      inner.copy(frame, ETH_HEADER_LEN);
      return frame;
    }
    case 'arp': {
      const inner = buildLayers(layers, i + 1, d, ip);
      const op = l.op === 'who-has' || l.op === undefined ? ARP_REQUEST : l.op === 'is-at' ? ARP_REPLY : l.op;
      const out = Buffer.alloc(28 + inner.length);
      emitArp(out, 0, {
        op,
        senderMac: toMac(need(l.hwsrc ?? d.etherSrc, 'arp hwsrc'), 'arp hwsrc'),
        senderIp: toIpv4(need(l.psrc ?? d.ipSrc, 'arp psrc'), 'arp psrc'),
        targetMac: toMac(l.hwdst ?? Buffer.alloc(6), 'arp hwdst'),
        targetIp: toIpv4(need(l.pdst ?? d.ipDst, 'arp pdst'), 'arp pdst'),
      });
      inner.copy(out, 28);
      return out;
    }
    case 'ipv4': {
      const src = toIpv4(need(l.src ?? d.ipSrc, 'ipv4 src'), 'ipv4 src');
      const dst = toIpv4(need(l.dst ?? d.ipDst, 'ipv4 dst'), 'ipv4 dst');
      const inner = buildLayers(layers, i + 1, d, { src, dst });
      const options = l.options === undefined ? undefined : encodeIpv4Options(l.options);
      const next = nextKind(layers, i);
      const protocol = l.proto ?? (next === 'tcp' ? PROTO_TCP : next === 'udp' ? PROTO_UDP : next === 'icmp' ? PROTO_ICMP : 0);
      const headerLength = IPV4_MIN_HEADER + (options?.length ?? 0);
      if (headerLength > 60) throw new Error(`ipv4: ${headerLength - IPV4_MIN_HEADER} bytes of options, more than 40`);
      const out = Buffer.alloc(headerLength + inner.length);
      emitIpv4(
        out,
        0,
        {
          tos: l.tos ?? 0,
          id: l.id ?? 1,
          dontFragment: l.flags?.df ?? false,
          moreFragments: l.flags?.mf ?? false,
          fragmentOffset: l.fragOffset ?? 0,
          ttl: l.ttl ?? 64,
          protocol,
          src,
          dst,
          options: options && options.length > 0 ? options : undefined,
        },
        inner.length,
      );
      inner.copy(out, headerLength);
      // Fields emitIpv4 derives or does not know: rewritten, and the checksum done again over them.
      if (l.flags?.reserved) out[6] = out[6]! | 0x80;
      if (l.ihl !== undefined) out[0] = 0x40 | (l.ihl & 0x0f);
      if (l.totalLength !== undefined) out.writeUInt16BE(l.totalLength & 0xffff, 2);
      out.writeUInt16BE(0, 10);
      out.writeUInt16BE(l.checksum ?? internetChecksum(out, 0, headerLength), 10);
      return out;
    }
    case 'icmp': {
      const quote = l.quote === undefined ? Buffer.alloc(0) : asBytes(l.quote, d);
      const inner = Buffer.concat([quote, buildLayers(layers, i + 1, d, ip)]);
      const out = Buffer.alloc(8 + inner.length);
      inner.copy(out, 8);
      const rest = l.rest ?? (((l.id ?? 0) & 0xffff) << 16) | ((l.seq ?? 0) & 0xffff);
      emitIcmpHeader(out, 0, l.type ?? ICMP_ECHO_REQUEST, l.code ?? 0, rest, inner.length);
      if (l.checksum !== undefined) out.writeUInt16BE(l.checksum, 2);
      return out;
    }
    case 'udp': {
      const inner = buildLayers(layers, i + 1, d, ip);
      const out = Buffer.alloc(UDP_HEADER_LEN + inner.length);
      inner.copy(out, UDP_HEADER_LEN);
      const { src, dst } = ip ?? { src: 0, dst: 0 };
      const sport = l.sport ?? 1024;
      const dport = l.dport ?? 1024;
      if (l.length === undefined) {
        emitUdpHeader(out, 0, src, dst, sport, dport, inner.length);
      } else {
        // A length that is not the datagram's: the checksum still covers the bytes sent.
        emitUdpHeader(out, 0, src, dst, sport, dport, inner.length, false);
        out.writeUInt16BE(l.length & 0xffff, 4);
        const sum = finishChecksum(sumBytes(out, 0, out.length, pseudoHeaderSum(src, dst, PROTO_UDP, out.length)));
        out.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
      }
      if (l.checksum !== undefined) out.writeUInt16BE(l.checksum, 6);
      return out;
    }
    case 'tcp': {
      const inner = buildLayers(layers, i + 1, d, ip);
      const options = encodeTcpOptions(l.options ?? []);
      const headerLength = TCP_MIN_HEADER + options.length;
      if (headerLength > 60) throw new Error(`tcp: ${options.length} bytes of options, more than 40`);
      const out = Buffer.alloc(headerLength + inner.length);
      const { src, dst } = ip ?? { src: 0, dst: 0 };
      const r = newTcpRepr();
      r.srcPort = l.sport ?? 1024;
      r.dstPort = l.dport ?? 80;
      r.seq = l.seq ?? 0;
      r.ack = l.ack ?? 0;
      r.flags = tcpFlagBits(l.flags ?? 'S');
      r.window = l.window ?? 65535;
      r.urgentPointer = l.urg ?? 0;
      // emitTcp writes the fixed header; the options are ours, in the order given.
      emitTcp(out, 0, r, 0, src, dst, false);
      options.copy(out, TCP_MIN_HEADER);
      inner.copy(out, headerLength);
      out[12] = ((l.dataOffset ?? headerLength / 4) & 0x0f) << 4;
      const sum = finishChecksum(sumBytes(out, 0, out.length, pseudoHeaderSum(src, dst, PROTO_TCP, out.length)));
      out.writeUInt16BE(l.checksum ?? sum, 16);
      return out;
    }
  }
}
