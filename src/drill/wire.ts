// The runner's side of the wire: inbound packets built from script lines with the project's
// wire views (Ethernet, IPv4, TCP checksum), outbound frames decoded into what a script line
// states (flags, sequence numbers, window, options in their order), and both written out in
// the script's notation for FAIL messages.

import { ETH_HEADER_LEN, ETHERTYPE_IPV4, emitEthernet } from '../link/ethernet.ts';
import { emitIpv4, Ipv4Packet, PROTO_TCP } from '../ipv4/ipv4-packet.ts';
import { finishChecksum, pseudoHeaderSum, sumBytes } from '../util/checksum.ts';
import { ACK, CWR, ECE, FIN, OPT_END, OPT_MSS, OPT_NOP, OPT_SACK, OPT_SACK_PERMITTED, OPT_TIMESTAMP, OPT_WSCALE, PSH, RST, SYN, TcpSegment, URG } from '../tcp/tcp-segment.ts';
import type { TcpOption } from './parse.ts';
import { DrillUnsupported } from './sysctl.ts';

/** packetdrill's flag letters (its tcp_flags_to_string order is S F R P . E W U). */
const FLAG_LETTERS: [string, number][] = [
  ['S', SYN],
  ['F', FIN],
  ['R', RST],
  ['P', PSH],
  ['.', ACK],
  ['E', ECE],
  ['W', CWR],
  ['U', URG],
];

export function flagsFromLetters(letters: string): number {
  let f = 0;
  for (const ch of letters) f |= FLAG_LETTERS.find(([l]) => l === ch)![1];
  return f;
}

export function lettersFromFlags(flags: number): string {
  const s = FLAG_LETTERS.filter(([, bit]) => flags & bit)
    .map(([l]) => l)
    .join('');
  return s === '' ? '-' : s;
}

/** An outbound TCP segment, as the stack sent it (absolute numbers). */
export interface WireSegment {
  /** Virtual time it was sent, in ms. */
  at: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgentPointer: number;
  payloadLength: number;
  options: TcpOption[];
}

/** Reads the options area in order, NOPs included, as a script lists them. */
export function decodeOptions(buf: Buffer, off: number, len: number): TcpOption[] {
  const out: TcpOption[] = [];
  let i = 0;
  while (i < len) {
    const kind = buf[off + i]!;
    if (kind === OPT_END) {
      out.push({ kind: 'eol' });
      break;
    }
    if (kind === OPT_NOP) {
      out.push({ kind: 'nop' });
      i++;
      continue;
    }
    const optLen = buf[off + i + 1] ?? 0;
    if (optLen < 2 || i + optLen > len) break;
    const at = off + i + 2;
    if (kind === OPT_MSS && optLen === 4) out.push({ kind: 'mss', value: buf.readUInt16BE(at) });
    else if (kind === OPT_WSCALE && optLen === 3) out.push({ kind: 'wscale', value: buf[at]! });
    else if (kind === OPT_SACK_PERMITTED) out.push({ kind: 'sackOK' });
    else if (kind === OPT_TIMESTAMP && optLen === 10) out.push({ kind: 'TS', val: buf.readUInt32BE(at), ecr: buf.readUInt32BE(at + 4) });
    else if (kind === OPT_SACK) {
      const blocks: [number, number][] = [];
      for (let b = 0; b + 8 <= optLen - 2; b += 8) blocks.push([buf.readUInt32BE(at + b), buf.readUInt32BE(at + b + 4)]);
      out.push({ kind: 'sack', blocks });
    } else out.push({ kind: 'other', name: `kind ${kind}` });
    i += optLen;
  }
  return out;
}

/** Decodes a frame the stack sent; null if it is not IPv4 TCP. */
export function decodeOutbound(frame: Buffer, at: number): WireSegment | null {
  if (frame.length < ETH_HEADER_LEN || frame.readUInt16BE(12) !== ETHERTYPE_IPV4) return null;
  const ip = new Ipv4Packet();
  if (ip.parse(frame, ETH_HEADER_LEN, frame.length - ETH_HEADER_LEN) || ip.protocol !== PROTO_TCP) return null;
  const tcp = new TcpSegment();
  if (tcp.parse(ip.buf, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst)) return null;
  return {
    at,
    srcPort: tcp.srcPort,
    dstPort: tcp.dstPort,
    seq: tcp.seq,
    ack: tcp.ack,
    flags: tcp.flags,
    window: tcp.window,
    urgentPointer: tcp.urgentPointer,
    payloadLength: tcp.payloadLength,
    options: decodeOptions(ip.buf, tcp.off + 20, tcp.headerLength - 20),
  };
}

/** The option bytes for a script's list, in its order, padded with EOL to 4 bytes. */
export function encodeOptions(options: TcpOption[]): Buffer {
  const bytes: number[] = [];
  const u16 = (v: number) => bytes.push((v >>> 8) & 0xff, v & 0xff);
  const u32 = (v: number) => bytes.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  for (const o of options) {
    switch (o.kind) {
      case 'nop':
        bytes.push(OPT_NOP);
        break;
      case 'eol':
        bytes.push(OPT_END);
        break;
      case 'mss':
        bytes.push(OPT_MSS, 4);
        u16(o.value);
        break;
      case 'wscale':
        bytes.push(OPT_WSCALE, 3, o.value);
        break;
      case 'sackOK':
        bytes.push(OPT_SACK_PERMITTED, 2);
        break;
      case 'sack':
        bytes.push(OPT_SACK, 2 + 8 * o.blocks.length);
        for (const [l, r] of o.blocks) {
          u32(l);
          u32(r);
        }
        break;
      case 'TS':
        bytes.push(OPT_TIMESTAMP, 10);
        u32(o.val);
        u32(o.ecr);
        break;
      case 'other':
        throw new DrillUnsupported(`TCP option ${o.name}`);
    }
  }
  while (bytes.length % 4 !== 0) bytes.push(OPT_END);
  if (bytes.length > 40) throw new DrillUnsupported('more than 40 bytes of TCP options');
  return Buffer.from(bytes);
}

export interface InboundSegment {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgentPointer: number;
  options: Buffer;
  payloadLength: number;
}

/** An Ethernet frame with the IPv4 TCP segment (zero payload bytes, as packetdrill sends). */
export function buildInboundFrame(dstMac: Uint8Array, srcMac: Uint8Array, s: InboundSegment, ipId: number): Buffer {
  const tcpLen = 20 + s.options.length + s.payloadLength;
  const frame = Buffer.alloc(ETH_HEADER_LEN + 20 + tcpLen);
  emitEthernet(frame, 0, dstMac, srcMac, ETHERTYPE_IPV4);
  emitIpv4(frame, ETH_HEADER_LEN, { src: s.src, dst: s.dst, protocol: PROTO_TCP, tos: 0, id: ipId, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64 }, tcpLen);
  const off = ETH_HEADER_LEN + 20;
  frame.writeUInt16BE(s.srcPort, off);
  frame.writeUInt16BE(s.dstPort, off + 2);
  frame.writeUInt32BE(s.seq >>> 0, off + 4);
  frame.writeUInt32BE(s.ack >>> 0, off + 8);
  frame[off + 12] = ((20 + s.options.length) / 4) << 4;
  frame[off + 13] = s.flags;
  frame.writeUInt16BE(s.window & 0xffff, off + 14);
  frame.writeUInt16BE(s.urgentPointer & 0xffff, off + 18);
  s.options.copy(frame, off + 20);
  frame.writeUInt16BE(finishChecksum(sumBytes(frame, off, tcpLen, pseudoHeaderSum(s.src, s.dst, PROTO_TCP, tcpLen))), off + 16);
  return frame;
}

/** Options in the script's notation: <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>. */
export function formatOptions(options: TcpOption[] | 'any' | null): string {
  if (options === null || (options !== 'any' && options.length === 0)) return '';
  if (options === 'any') return ' <...>';
  const items = options.map((o) => {
    switch (o.kind) {
      case 'mss':
        return `mss ${o.value}`;
      case 'wscale':
        return `wscale ${o.value}`;
      case 'sack':
        return `sack ${o.blocks.map(([l, r]) => `${l}:${r}`).join(' ')}`;
      case 'TS':
        return `TS val ${o.val} ecr ${o.ecr}`;
      case 'other':
        return o.name;
      default:
        return o.kind;
    }
  });
  return ` <${items.join(',')}>`;
}
