// Reads a frame back into a plain object of every layer's fields, through the probe's decoder
// (src/probe-decode.ts, which uses each layer's own wire view). Unlike the stack, it keeps
// going past a bad checksum: it says whether each checksum is right instead, so a frame
// crafted wrong on purpose can be read back. It never throws: where a layer cannot be read,
// `error` holds that layer's drop reason and the layers below stay absent.

import { formatIpv4 } from '../ipv4/address.ts';
import { PROTO_TCP, PROTO_UDP } from '../ipv4/ipv4-packet.ts';
import { formatMac } from '../link/ethernet.ts';
import { DecodedFrame } from '../probe-decode.ts';
import { OPT_END, OPT_MSS, OPT_NOP, OPT_SACK, OPT_SACK_PERMITTED, OPT_TIMESTAMP, OPT_WSCALE } from '../tcp/tcp-segment.ts';
import { finishChecksum, internetChecksum, pseudoHeaderSum, sumBytes } from '../util/checksum.ts';
import { IPOPT_RR, IPOPT_TS, type Ipv4Option, tcpFlagLetters, type TcpOption } from './layers.ts';

export interface Dissected {
  /** The frame's bytes (a copy). */
  bytes: Buffer;
  /** tcpdump's one line for the frame. */
  summary: string;
  /** The first layer's drop reason when one could not be read, else null. */
  error: string | null;
  ether?: { src: string; dst: string; type: number };
  arp?: { op: number; hwsrc: string; psrc: string; hwdst: string; pdst: string };
  ipv4?: {
    src: string;
    dst: string;
    ttl: number;
    id: number;
    tos: number;
    flags: { df: boolean; mf: boolean; reserved: boolean };
    fragOffset: number;
    /** The option bytes as sent (padding included), and as a list (up to End of List). */
    options: Buffer;
    optionList: Ipv4Option[];
    proto: number;
    ihl: number;
    totalLength: number;
    checksum: number;
    checksumOk: boolean;
  };
  icmp?: { type: number; code: number; id: number; seq: number; rest: number; checksum: number; checksumOk: boolean };
  udp?: { sport: number; dport: number; length: number; checksum: number; checksumOk: boolean };
  tcp?: {
    sport: number;
    dport: number;
    seq: number;
    ack: number;
    flags: number;
    /** scapy's letters: 'SA', 'PA'. */
    flagText: string;
    window: number;
    urg: number;
    dataOffset: number;
    /** The options in order, up to End of List (the padding after it is left out). */
    options: TcpOption[];
    checksum: number;
    checksumOk: boolean;
  };
  /** What follows the last header read (TCP or UDP data, ICMP data, a fragment's bytes). */
  payload: Buffer;
}

const decoder = new DecodedFrame();
decoder.verifyIpChecksum = false;

export function dissect(frame: Uint8Array, time = 0): Dissected {
  const bytes = Buffer.from(frame);
  const f = decoder.decode(bytes, 0, bytes.length, time);
  const out: Dissected = { bytes, summary: f.describe(), error: f.error, payload: Buffer.alloc(0) };
  const eth = f.ethernet;
  if (eth === null) return out;
  out.ether = { src: f.srcMac!, dst: f.dstMac!, type: eth.etherType };
  out.payload = bytes.subarray(eth.payloadOffset);
  const a = f.arp;
  if (a !== null) {
    out.arp = { op: a.op, hwsrc: formatMac(bytes, a.senderMacOffset), psrc: formatIpv4(a.senderIp), hwdst: formatMac(bytes, a.targetMacOffset), pdst: formatIpv4(a.targetIp) };
    out.payload = bytes.subarray(a.off + 28, eth.off + eth.len);
    return out;
  }
  const ip = f.ipv4;
  if (ip === null) return out;
  const options = Buffer.from(bytes.subarray(ip.off + 20, ip.off + ip.headerLength));
  out.ipv4 = {
    src: formatIpv4(ip.src),
    dst: formatIpv4(ip.dst),
    ttl: ip.ttl,
    id: ip.id,
    tos: ip.tos,
    flags: { df: ip.dontFragment, mf: ip.moreFragments, reserved: (ip.flagsAndOffset & 0x8000) !== 0 },
    fragOffset: ip.fragmentOffset,
    options,
    optionList: decodeIpv4Options(options),
    proto: ip.protocol,
    ihl: ip.headerLength / 4,
    totalLength: ip.totalLength,
    checksum: ip.checksum,
    checksumOk: internetChecksum(bytes, ip.off, ip.headerLength) === 0,
  };
  out.payload = bytes.subarray(ip.payloadOffset, ip.off + ip.totalLength);
  const transportOk = (protocol: number, off: number, len: number): boolean =>
    finishChecksum(sumBytes(bytes, off, len, pseudoHeaderSum(ip.src, ip.dst, protocol, len))) === 0;
  const t = f.tcp;
  if (t !== null) {
    out.tcp = {
      sport: t.srcPort,
      dport: t.dstPort,
      seq: t.seq,
      ack: t.ack,
      flags: t.flags,
      flagText: tcpFlagLetters(t.flags),
      window: t.window,
      urg: t.urgentPointer,
      dataOffset: t.headerLength / 4,
      options: decodeTcpOptions(bytes.subarray(t.off + 20, t.off + t.headerLength)),
      checksum: t.checksum,
      checksumOk: transportOk(PROTO_TCP, t.off, t.length),
    };
    out.payload = bytes.subarray(t.payloadOffset, t.off + t.length);
  }
  const u = f.udp;
  if (u !== null) {
    // RFC 768: zero means the sender computed none.
    const ok = u.checksum === 0 || transportOk(PROTO_UDP, u.off, u.length);
    out.udp = { sport: u.srcPort, dport: u.dstPort, length: u.length, checksum: u.checksum, checksumOk: ok };
    out.payload = bytes.subarray(u.dataOffset, u.off + u.length);
  }
  const c = f.icmp;
  if (c !== null) {
    out.icmp = { type: c.type, code: c.code, id: c.identifier, seq: c.sequence, rest: c.rest, checksum: c.checksum, checksumOk: internetChecksum(bytes, c.off, c.len) === 0 };
    out.payload = bytes.subarray(c.dataOffset, c.off + c.len);
  }
  return out;
}

/**
 * Walks kind-length-value options with single-byte End (0) and No-op (1), laid out alike in
 * IPv4 (RFC 791 3.1) and TCP (RFC 9293 3.2): `named` reads a known kind (null: not one it
 * knows at that length), anything else is given raw. A length that is too short or runs
 * past the header ends the list, with that option raw (its kind and the bytes that are there).
 */
function walkOptions<T extends { kind: string | number }>(b: Uint8Array, named: (kind: number, value: Buffer) => T | null): (T | { kind: 'nop' } | { kind: number; data: Buffer })[] {
  const out: (T | { kind: 'nop' } | { kind: number; data: Buffer })[] = [];
  let i = 0;
  while (i < b.length) {
    const kind = b[i]!;
    if (kind === OPT_END) break;
    if (kind === OPT_NOP) {
      out.push({ kind: 'nop' });
      i++;
      continue;
    }
    const len = b[i + 1] ?? 0;
    if (len < 2 || i + len > b.length) {
      out.push({ kind, data: Buffer.from(b.subarray(i + 2)) });
      break;
    }
    const value = Buffer.from(b.subarray(i + 2, i + len));
    out.push(named(kind, value) ?? { kind, data: value });
    i += len;
  }
  return out;
}

export function decodeTcpOptions(b: Uint8Array): TcpOption[] {
  return walkOptions<TcpOption>(b, (kind, v) => {
    if (kind === OPT_MSS && v.length === 2) return { kind: 'mss', value: v.readUInt16BE(0) };
    if (kind === OPT_WSCALE && v.length === 1) return { kind: 'wscale', value: v[0]! };
    if (kind === OPT_SACK_PERMITTED && v.length === 0) return { kind: 'sackOk' };
    if (kind === OPT_TIMESTAMP && v.length === 8) return { kind: 'timestamp', val: v.readUInt32BE(0), ecr: v.readUInt32BE(4) };
    if (kind === OPT_SACK && v.length % 8 === 0) {
      const blocks: [number, number][] = [];
      for (let k = 0; k < v.length; k += 8) blocks.push([v.readUInt32BE(k), v.readUInt32BE(k + 4)]);
      return { kind: 'sack', blocks };
    }
    return null;
  });
}

/** RFC 791 3.1 options, decoded as the builder writes them (record route, timestamp by name). */
export function decodeIpv4Options(b: Uint8Array): Ipv4Option[] {
  return walkOptions<Ipv4Option>(b, (kind, v) => {
    if (kind === IPOPT_RR && v.length >= 1 && (v.length - 1) % 4 === 0) {
      const addresses: string[] = [];
      for (let k = 1; k < v.length; k += 4) addresses.push(formatIpv4(v.readUInt32BE(k)));
      return { kind: 'record-route', pointer: v[0]!, addresses };
    }
    if (kind === IPOPT_TS && v.length >= 2 && (v.length - 2) % 4 === 0) {
      const stamps: number[] = [];
      for (let k = 2; k < v.length; k += 4) stamps.push(v.readUInt32BE(k));
      return { kind: 'timestamp', pointer: v[0]!, overflow: v[1]! >> 4, flag: v[1]! & 0x0f, stamps };
    }
    return null;
  });
}
