// Words for what the tracer reports: a TCP segment in tcpdump's notation with relative
// numbers, the datagram an ICMP error quotes, ICMP's type and code names, and the rule of
// each retransmission.

import { formatIpv4 } from '../ipv4/address.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../ipv4/ipv4-packet.ts';
import type { RetransmitRule } from '../tcp/tcb.ts';
import type { TcpSegment } from '../tcp/tcp-segment.ts';
import { PROTO_BIT } from './filter.js';

export { tcpFlagText } from '../probe-decode.ts';

/** tcpdump's option list without brackets; SACK blocks as given (relative). */
export function tcpOptionsText(seg: TcpSegment, sack: ReadonlyArray<readonly [number, number]>): string {
  const options: string[] = [];
  if (seg.mss >= 0) options.push(`mss ${seg.mss}`);
  if (seg.sackPermitted) options.push('sackOK');
  if (seg.hasTimestamp) options.push(`TS val ${seg.tsVal} ecr ${seg.tsEcr}`);
  if (seg.windowScale >= 0) options.push(`wscale ${seg.windowScale}`);
  if (sack.length > 0) options.push(`sack ${sack.length} ${sack.map(([l, r]) => `{${l}:${r}}`).join('')}`);
  return options.join(',');
}

/** `Flags [P.], seq 1:1449, ack 1, win 502, options [...], length 1448` with the given numbers. */
export function tcpSummary(flags: string, rseq: number, rack: number, hasAck: boolean, win: number, options: string, len: number): string {
  const seq = len > 0 ? `${rseq}:${(rseq + len) >>> 0}` : `${rseq}`;
  const ack = hasAck ? `, ack ${rack}` : '';
  const opts = options.length > 0 ? `, options [${options}]` : '';
  return `Flags [${flags}], seq ${seq}${ack}, win ${win}${opts}, length ${len}`;
}

const ICMP_ERROR_KINDS: Record<number, string> = { 3: 'destination unreachable', 11: 'time exceeded', 12: 'parameter problem' };
const UNREACHABLE_CODES = [
  'net unreachable',
  'host unreachable',
  'protocol unreachable',
  'port unreachable',
  'fragmentation needed',
  'source route failed',
  'net unknown',
  'host unknown',
  'source host isolated',
  'net prohibited',
  'host prohibited',
  'net unreachable for TOS',
  'host unreachable for TOS',
  'administratively prohibited',
  'host precedence violation',
  'precedence cutoff',
];
const TIME_EXCEEDED_CODES = ['TTL exceeded in transit', 'fragment reassembly time exceeded'];

/** RFC 792's names of an error's type and code. */
export function icmpErrorNames(type: number, code: number): { kind: string; codeName: string } {
  const kind = ICMP_ERROR_KINDS[type] ?? `type ${type}`;
  const names = type === 3 ? UNREACHABLE_CODES : type === 11 ? TIME_EXCEEDED_CODES : [];
  return { kind, codeName: names[code] ?? `code ${code}` };
}

/** What the quoted datagram (IPv4 header and at least 8 bytes) was: its protocol, addresses, ports. */
export interface QuotedDatagram {
  protocol: number;
  src: number;
  dst: number;
  sport: number | null;
  dport: number | null;
  /** The protocol's bit for the filter (0 for another protocol). */
  protoBit: number;
  /** One line, e.g. 'udp 10.0.0.2.5000 > 10.0.0.1.9'. */
  text: string;
}

export function readQuoted(buf: Buffer, off: number, len: number): QuotedDatagram | null {
  if (len < 20) return null;
  const headerLength = (buf[off]! & 0x0f) * 4;
  const protocol = buf[off + 9]!;
  const src = buf.readUInt32BE(off + 12);
  const dst = buf.readUInt32BE(off + 16);
  const ported = (protocol === PROTO_TCP || protocol === PROTO_UDP) && len >= headerLength + 4;
  const sport = ported ? buf.readUInt16BE(off + headerLength) : null;
  const dport = ported ? buf.readUInt16BE(off + headerLength + 2) : null;
  const name = protocol === PROTO_TCP ? 'tcp' : protocol === PROTO_UDP ? 'udp' : protocol === PROTO_ICMP ? 'icmp' : `proto ${protocol}`;
  const protoBit = protocol === PROTO_TCP ? PROTO_BIT.tcp : protocol === PROTO_UDP ? PROTO_BIT.udp : protocol === PROTO_ICMP ? PROTO_BIT.icmp : 0;
  const text = ported ? `${name} ${formatIpv4(src)}.${sport} > ${formatIpv4(dst)}.${dport}` : `${name} ${formatIpv4(src)} > ${formatIpv4(dst)}`;
  return { protocol, src, dst, sport, dport, protoBit, text };
}

/** The rule of a retransmission in words, with its RFC section. */
export function retransmitText(rule: RetransmitRule, backoff: number, dupAcks: number): string {
  switch (rule) {
    case 'rto':
      // After the timeout's first retransmission the rest follow as ACKs come, the backoff
      // already collapsed by a new RTT sample (RFC 6298 5.7).
      if (backoff === 0) return 'resent after a retransmission timeout (RFC 5681 3.1, RFC 6582 4)';
      return `retransmission timeout, backoff ${backoff} (RFC 6298 5.4-5.5)`;
    case 'syn':
      return `SYN not answered, backoff ${backoff} (RFC 6298 5.7, RFC 9293 3.8.1)`;
    case 'rack':
      return 'RACK marked it lost: a later segment was delivered and the reordering window passed (RFC 8985 6.2)';
    case 'dupacks':
      return `${dupAcks} duplicate ACKs: fast retransmit (RFC 5681 3.2)`;
    case 'sack':
      return 'a hole in the SACK scoreboard (RFC 6675 5 (C))';
    case 'partial-ack':
      return 'partial ACK during NewReno recovery (RFC 6582 3.2 step 5)';
    case 'tlp':
      return 'tail loss probe: no ACK within the probe timeout (RFC 8985 7.3)';
  }
}
