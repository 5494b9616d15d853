// Builders for frames to inject in tests, and a recording link that keeps what a stack sends.

import { ARP_LEN, ARP_REQUEST, ArpPacket, type ArpRepr, emitArp } from '../../src/arp/arp-packet.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { createStack } from '../../src/stack.ts';
import { emitIcmp } from '../../src/ipv4/icmp-packet.ts';
import { BROADCAST_MAC, emitEthernet, ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, parseMac } from '../../src/link/ethernet.ts';
import type { FrameReceiver, Link } from '../../src/link/link.ts';
import { emitIpv4, IPV4_MIN_HEADER, Ipv4Packet, type Ipv4Repr } from '../../src/ipv4/ipv4-packet.ts';

/** A Link that records every frame the stack sends and lets the test inject frames. */
export class RecordingLink implements Link {
  readonly mtu: number;
  readonly sent: Buffer[] = [];
  private receiver: FrameReceiver = () => {};
  private batchEnd: (() => void) | null = null;
  private inBatch = false;
  constructor(mtu = 1500) {
    this.mtu = mtu;
  }
  send(buf: Buffer, off: number, len: number): void {
    this.sent.push(Buffer.from(buf.subarray(off, off + len)));
  }
  setReceiver(r: FrameReceiver): void {
    this.receiver = r;
  }
  setBatchEndHandler(handler: () => void): void {
    this.batchEnd = handler;
  }
  /** One frame, a batch of its own (unless inside injectBatch). */
  inject(frame: Buffer): void {
    this.receiver(frame, 0, frame.length, null);
    if (!this.inBatch) this.batchEnd?.();
  }
  /** The frames fn injects arrive as one batch, like those one wake-up of a TAP reads. */
  injectBatch(fn: () => void): void {
    this.inBatch = true;
    try {
      fn();
    } finally {
      this.inBatch = false;
    }
    this.batchEnd?.();
  }
  take(): Buffer[] {
    return this.sent.splice(0);
  }
  close(): void {}
}

export function ipv4Repr(over: Partial<Ipv4Repr> & Pick<Ipv4Repr, 'src' | 'dst' | 'protocol'>): Ipv4Repr {
  return { tos: 0, id: 1, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64, ...over };
}

/** An Ethernet frame carrying an IPv4 datagram with the given payload. */
export function ipv4Frame(dstMac: Buffer, srcMac: Buffer, ip: Ipv4Repr, payload: Buffer): Buffer {
  const hl = IPV4_MIN_HEADER + (ip.options?.length ?? 0);
  const frame = Buffer.alloc(ETH_HEADER_LEN + hl + payload.length);
  emitEthernet(frame, 0, dstMac, srcMac, ETHERTYPE_IPV4);
  emitIpv4(frame, ETH_HEADER_LEN, ip, payload.length);
  payload.copy(frame, ETH_HEADER_LEN + hl);
  return frame;
}

/** An Ethernet frame carrying an ARP packet (RFC 826), padded to the 60-byte minimum. */
export function arpFrame(ethDst: Buffer, r: ArpRepr, ethSrc: Buffer = r.senderMac): Buffer {
  const frame = Buffer.alloc(60);
  emitEthernet(frame, 0, ethDst, ethSrc, ETHERTYPE_ARP);
  emitArp(frame, ETH_HEADER_LEN, r);
  return frame;
}

/** Parses a frame the stack sent as ARP; null if it is not one. */
export function parseArpFrame(frame: Buffer): (ArpRepr & { ethDst: Buffer; ethSrc: Buffer }) | null {
  if (frame.length < ETH_HEADER_LEN + ARP_LEN || frame.readUInt16BE(12) !== ETHERTYPE_ARP) return null;
  const v = new ArpPacket();
  if (v.parse(frame, ETH_HEADER_LEN, frame.length - ETH_HEADER_LEN)) return null;
  return { ...v.toRepr(), ethDst: Buffer.from(frame.subarray(0, 6)), ethSrc: Buffer.from(frame.subarray(6, 12)) };
}

/** Parses a frame the stack sent as IPv4; null if it is not one or does not validate. */
export function parseIpv4Frame(frame: Buffer): Ipv4Packet | null {
  if (frame.length < ETH_HEADER_LEN || frame.readUInt16BE(12) !== ETHERTYPE_IPV4) return null;
  const v = new Ipv4Packet();
  return v.parse(frame, ETH_HEADER_LEN, frame.length - ETH_HEADER_LEN) ? null : v;
}

/** An ICMP message (header and data, checksummed). */
export function icmpMessage(type: number, code: number, rest: number, data: Buffer): Buffer {
  const m = Buffer.alloc(8 + data.length);
  emitIcmp(m, 0, { type, code, rest, data });
  return m;
}

/**
 * A stack at 10.0.0.2 (02:00:00:00:00:02) on a RecordingLink in virtual time, which has
 * already been asked for its MAC by the host 10.0.0.1 (02:00:00:00:00:01), as the kernel does
 * first: it knows the host, so its answers leave at once. The sent frames so far are taken.
 */
export async function stackWithKnownHost() {
  const link = new RecordingLink();
  const clock = new VirtualClock();
  const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  const hostMac = parseMac('02:00:00:00:00:01')!;
  const request = { op: ARP_REQUEST, senderMac: hostMac, senderIp: parseIpv4('10.0.0.1')!, targetMac: Buffer.alloc(6), targetIp: parseIpv4('10.0.0.2')! };
  link.inject(arpFrame(BROADCAST_MAC, request));
  link.take();
  return { link, clock, stack };
}
