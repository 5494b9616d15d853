// A frame as a probe sees it (src/probe.ts): its time and bytes, and the views of each layer
// that parsed it (Ethernet, then ARP or IPv4, then ICMP, UDP or TCP), through the layers' own
// wire views. One DecodedFrame is reused for every frame: nothing is allocated per frame, and
// it is valid only during the probe's call. Parsing never throws: the first layer that cannot
// read its header says why in `error` (the layers' own drop reasons).
//
// Transport checksums are not verified here: a frame going out with checksum offload, or a
// super-frame coming in, holds only a partial one (the stack verifies what it must). The IPv4
// header checksum is.

import { ARP_REQUEST, ArpPacket } from './arp/arp-packet.ts';
import { formatIpv4 } from './ipv4/address.ts';
import { ICMP_DEST_UNREACHABLE, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED, IcmpPacket } from './ipv4/icmp-packet.ts';
import { Ipv4Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from './ipv4/ipv4-packet.ts';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetFrame, formatMac } from './link/ethernet.ts';
import { ACK, CWR, ECE, FIN, PSH, RST, SYN, TcpSegment, URG } from './tcp/tcp-segment.ts';
import { UdpPacket } from './udp/udp-packet.ts';
import { EMPTY_BUFFER } from './util/bytes.ts';

/** tcpdump's flag letters, in its order. */
const TCP_FLAG_LETTERS: readonly (readonly [number, string])[] = [
  [FIN, 'F'],
  [SYN, 'S'],
  [RST, 'R'],
  [PSH, 'P'],
  [ACK, '.'],
  [URG, 'U'],
  [ECE, 'E'],
  [CWR, 'W'],
];

/** tcpdump's flags without brackets: 'S', 'S.', 'P.', 'F.', 'R' ...; 'none' without any. */
export function tcpFlagText(flags: number): string {
  let text = '';
  for (const [bit, letter] of TCP_FLAG_LETTERS) if ((flags & bit) !== 0) text += letter;
  return text || 'none';
}

const ICMP_TYPE_NAMES: Record<number, string> = {
  [ICMP_ECHO_REPLY]: 'echo reply',
  [ICMP_ECHO_REQUEST]: 'echo request',
  [ICMP_DEST_UNREACHABLE]: 'destination unreachable',
  [ICMP_TIME_EXCEEDED]: 'time exceeded',
};

export class DecodedFrame {
  /** The stack's clock (ms) when the frame went in or out. */
  time = 0;
  /** The frame's bytes at buf[off, off+len): valid only during the probe's call. */
  buf: Buffer = EMPTY_BUFFER;
  off = 0;
  len = 0;
  /** Why the frame could not be read further (a layer's drop reason), or null. */
  error: string | null = null;
  /** Each view is null when the frame does not hold that layer (or it did not parse). */
  ethernet: EthernetFrame | null = null;
  arp: ArpPacket | null = null;
  ipv4: Ipv4Packet | null = null;
  icmp: IcmpPacket | null = null;
  udp: UdpPacket | null = null;
  tcp: TcpSegment | null = null;
  /**
   * Whether a bad IPv4 header checksum stops decoding (as the stack drops it). The craft
   * dissector turns it off, to show a header crafted with a wrong checksum.
   */
  verifyIpChecksum = true;

  private readonly ethernetView = new EthernetFrame();
  private readonly arpView = new ArpPacket();
  private readonly ipv4View = new Ipv4Packet();
  private readonly icmpView = new IcmpPacket();
  private readonly udpView = new UdpPacket();
  private readonly tcpView = new TcpSegment();

  /** Reads the frame at buf[off, off+len) into the views. Never throws. */
  decode(buf: Buffer, off: number, len: number, time: number): this {
    this.time = time;
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.error = null;
    this.ethernet = this.arp = this.ipv4 = this.icmp = this.udp = this.tcp = null;
    const eth = this.ethernetView;
    const bad = eth.parse(buf, off, len);
    if (bad !== null) return this.fail(bad);
    this.ethernet = eth;
    const type = eth.etherType;
    if (type === ETHERTYPE_ARP) {
      const arp = this.arpView;
      const badArp = arp.parse(buf, eth.payloadOffset, eth.payloadLength);
      if (badArp !== null) return this.fail(badArp);
      this.arp = arp;
    } else if (type === ETHERTYPE_IPV4) {
      this.decodeIpv4(buf, eth.payloadOffset, eth.payloadLength);
    }
    return this;
  }

  /** Source and destination MAC ("02:00:00:00:00:01"), when the Ethernet header parsed. */
  get srcMac(): string | null {
    return this.ethernet === null ? null : formatMac(this.buf, this.ethernet.srcOffset);
  }
  get dstMac(): string | null {
    return this.ethernet === null ? null : formatMac(this.buf, this.ethernet.dstOffset);
  }

  /**
   * One line as tcpdump would print it (without the time), e.g.
   * `10.0.0.1.40000 > 10.0.0.2.80: Flags [S.], seq 1, ack 2, win 65535, options [mss 1460], length 0`.
   */
  describe(): string {
    const eth = this.ethernet;
    if (eth === null) return `frame, length ${this.len} [${this.error}]`;
    const ip = this.ipv4;
    const arp = this.arp;
    const type = eth.etherType;
    if (arp !== null) {
      const what =
        arp.op === ARP_REQUEST
          ? `Request who-has ${formatIpv4(arp.targetIp)} tell ${formatIpv4(arp.senderIp)}`
          : `Reply ${formatIpv4(arp.senderIp)} is-at ${formatMac(this.buf, arp.senderMacOffset)}`;
      return `ARP, ${what}, length ${eth.payloadLength}`;
    }
    if (ip === null) {
      const name = type === ETHERTYPE_ARP ? 'ARP' : type === ETHERTYPE_IPV4 ? 'IPv4' : `ethertype 0x${type.toString(16).padStart(4, '0')}`;
      const error = this.error !== null ? ` [${this.error}]` : '';
      return `${this.srcMac} > ${this.dstMac}, ${name}, length ${this.len}${error}`;
    }
    const src = formatIpv4(ip.src);
    const dst = formatIpv4(ip.dst);
    const error = this.error !== null ? ` [${this.error}]` : '';
    const tcp = this.tcp;
    if (tcp !== null) return `${src}.${tcp.srcPort} > ${dst}.${tcp.dstPort}: ${describeTcp(tcp)}${error}`;
    const udp = this.udp;
    if (udp !== null) return `${src}.${udp.srcPort} > ${dst}.${udp.dstPort}: UDP, length ${udp.dataLength}${error}`;
    const icmp = this.icmp;
    if (icmp !== null) {
      const name = ICMP_TYPE_NAMES[icmp.type] ?? `type ${icmp.type}`;
      const echo = icmp.type === ICMP_ECHO_REQUEST || icmp.type === ICMP_ECHO_REPLY ? `, id ${icmp.identifier}, seq ${icmp.sequence}` : `, code ${icmp.code}`;
      return `${src} > ${dst}: ICMP ${name}${echo}, length ${icmp.len}${error}`;
    }
    const frag = ip.isFragment ? `frag (id ${ip.id}, offset ${ip.fragmentOffset}${ip.moreFragments ? ', more' : ''}), ` : '';
    return `${src} > ${dst}: ${frag}proto ${ip.protocol}, length ${ip.payloadLength}${error}`;
  }

  private decodeIpv4(buf: Buffer, off: number, len: number): void {
    const ip = this.ipv4View;
    const bad = ip.parse(buf, off, len, this.verifyIpChecksum);
    if (bad !== null) return void this.fail(bad);
    this.ipv4 = ip;
    // Only a whole datagram (not a fragment) starts with a transport header we can read.
    if (ip.isFragment) return;
    const at = ip.payloadOffset;
    const n = ip.payloadLength;
    const protocol = ip.protocol;
    if (protocol === PROTO_TCP) {
      const tcp = this.tcpView;
      const badTcp = tcp.parse(buf, at, n, ip.src, ip.dst, false);
      if (badTcp !== null) return void this.fail(badTcp);
      this.tcp = tcp;
    } else if (protocol === PROTO_UDP) {
      const udp = this.udpView;
      const badUdp = udp.parse(buf, at, n, ip.src, ip.dst, false);
      if (badUdp !== null) return void this.fail(badUdp);
      this.udp = udp;
    } else if (protocol === PROTO_ICMP) {
      const icmp = this.icmpView;
      const badIcmp = icmp.parse(buf, at, n, false);
      if (badIcmp !== null) return void this.fail(badIcmp);
      this.icmp = icmp;
    }
  }

  private fail(reason: string): this {
    this.error = reason;
    return this;
  }
}

/** `Flags [S.], seq 1, ack 2, win 65535, options [mss 1460,...], length 0`, as tcpdump -S. */
function describeTcp(tcp: TcpSegment): string {
  const flags = tcpFlagText(tcp.flags);
  const n = tcp.payloadLength;
  const seq = n > 0 ? `${tcp.seq}:${(tcp.seq + n) >>> 0}` : `${tcp.seq}`;
  const ack = (tcp.flags & ACK) !== 0 ? `, ack ${tcp.ack}` : '';
  const options: string[] = [];
  if (tcp.mss >= 0) options.push(`mss ${tcp.mss}`);
  if (tcp.sackPermitted) options.push('sackOK');
  if (tcp.hasTimestamp) options.push(`TS val ${tcp.tsVal} ecr ${tcp.tsEcr}`);
  if (tcp.windowScale >= 0) options.push(`wscale ${tcp.windowScale}`);
  if (tcp.sackCount > 0) {
    const blocks: string[] = [];
    for (let i = 0; i < tcp.sackCount; i++) blocks.push(`{${tcp.sackBlocks[2 * i]}:${tcp.sackBlocks[2 * i + 1]}}`);
    options.push(`sack ${tcp.sackCount} ${blocks.join('')}`);
  }
  const opts = options.length > 0 ? `, options [${options.join(',')}]` : '';
  return `Flags [${flags}], seq ${seq}${ack}, win ${tcp.window}${opts}, length ${n}`;
}
