// One Ethernet segment shared by many devices over one link (a TAP): what the host's kernel
// sees as one cable with many neighbours behind it. Frames from the link go to the device
// whose MAC they are for, in place (no copy, no timer: the link's receive buffer, valid for
// the call, as any Link's). A device's frame for another device of the segment stays on the
// segment (delivered on the next turn, as a switch's would be); every other frame goes
// straight out on the link. A TAP read batch ends with one batch end per device that got
// frames in it, not one per device of the fleet.
//
// Broadcasts, with thousands of devices, cannot reach every device:
// - an ARP request goes only to the device that holds the address asked for (the segment
//   learns each device's address from the ARP it sends, as a bridge with ARP suppression
//   does, Linux's neigh_suppress); a gratuitous ARP goes to none;
// - a DHCP reply a server broadcasts (RFC 2131 4.1: to a client that cannot take unicast
//   yet) goes only to the device whose MAC is its chaddr, as DHCP snooping would;
// - an ARP request for an address not learned and other group frames from the link go to
//   every device, each on a copy (a stack may write into what it receives);
// - group frames from a device go out on the link only (and an ARP request also to the
//   device it asks for).

import type { Clock } from '../util/clock.ts';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, isGroupMac, macKey } from '../link/ethernet.ts';
import type { FrameReceiver, Link } from '../link/link.ts';
import type { RxFrameInfo, TxOffload } from '../link/vnet.ts';

/** An Ethernet frame long enough for an ARP packet (14 + 28), and ARP's request opcode. */
const ARP_FRAME = 42;
const ARP_OP_REQUEST = 1;
/** A DHCP reply in a frame: IPv4 without options (20), UDP (8), then chaddr at 28 into BOOTP. */
const DHCP_CLIENT_PORT = 68;
const UDP_PROTOCOL = 17;
const DHCP_CHADDR_AT = 14 + 20 + 8 + 28;

export interface SegmentCounters {
  /** Frames from the link delivered to one device, to every device (group), or to none (no such MAC). */
  unicastIn: number;
  groupIn: number;
  unknownIn: number;
  /**
   * Frames from the link whose source MAC is one of this segment's devices: another host uses
   * it (two fleets with one --name on a bridge) or the network loops. Dropped, as the Linux
   * bridge will not learn its own address from a port ("received packet ... with own address
   * as source address").
   */
  ownMacIn: number;
  /** Group frames from the link that went to every device (the rest went to one or none). */
  floodedIn: number;
  /** Frames devices sent: out on the link, or kept on the segment for another device. */
  out: number;
  local: number;
}

/** A device's end of the segment: the Link its stack runs on. */
export class SegmentPort implements Link {
  receiver: FrameReceiver = () => {};
  batchEnd: (() => void) | null = null;
  /** Got frames in the link's current batch (its batch end is due). */
  inBatch = false;
  closed = false;
  /** The device's IPv4 address as the segment learned it (0: none yet). */
  ip = 0;

  constructor(
    private readonly segment: Segment,
    readonly mac: Uint8Array,
  ) {}

  get mtu(): number {
    return this.segment.link.mtu;
  }
  get gsoMaxSize(): number | undefined {
    return this.segment.link.gsoMaxSize;
  }
  get txOffload(): TxOffload | undefined {
    return this.segment.link.txOffload;
  }
  send(buf: Buffer, off: number, len: number): void {
    if (!this.closed) this.segment.fromDevice(this, buf, off, len);
  }
  setReceiver(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }
  setBatchEndHandler(handler: () => void): void {
    this.batchEnd = handler;
  }
  close(): void {
    this.closed = true;
    this.segment.remove(this);
  }
}

export class Segment {
  readonly counters: SegmentCounters = { unicastIn: 0, groupIn: 0, unknownIn: 0, ownMacIn: 0, floodedIn: 0, out: 0, local: 0 };
  /** Told the first time a frame from the link carries one of our devices' MACs as its source (a conflict); at most once per MAC. */
  onOwnMac: ((mac: Uint8Array) => void) | null = null;
  private readonly reportedOwnMacs = new Set<number>();
  private readonly ports = new Map<number, SegmentPort>();
  private readonly touched: SegmentPort[] = [];
  /** Each device's address, learned from its frames (for ARP requests). */
  private readonly byIp = new Map<number, SegmentPort>();
  private groupCopy: Buffer;

  constructor(
    readonly link: Link,
    private readonly clock: Clock,
  ) {
    this.groupCopy = Buffer.alloc(link.mtu + 64);
    link.setReceiver((buf, off, len, info) => this.fromLink(buf, off, len, info));
    link.setBatchEndHandler?.(() => this.endBatch());
  }

  get size(): number {
    return this.ports.size;
  }

  has(mac: Uint8Array): boolean {
    return this.ports.has(macKey(mac, 0));
  }

  /** A port for a device with this MAC (one per MAC). */
  attach(mac: Uint8Array): SegmentPort {
    const key = macKey(mac, 0);
    if (this.ports.has(key)) throw new Error('a device with this MAC is already on the segment');
    const port = new SegmentPort(this, mac);
    this.ports.set(key, port);
    return port;
  }

  remove(port: SegmentPort): void {
    const key = macKey(port.mac, 0);
    if (this.ports.get(key) === port) this.ports.delete(key);
    if (port.ip !== 0 && this.byIp.get(port.ip) === port) this.byIp.delete(port.ip);
  }

  private deliver(port: SegmentPort, buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    port.receiver(buf, off, len, info);
    if (port.batchEnd !== null && !port.inBatch) {
      port.inBatch = true;
      this.touched.push(port);
    }
  }

  private fromLink(buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    if (len < 14) return;
    const source = macKey(buf, off + 6);
    if (this.ports.has(source)) return this.ownMac(source, buf, off);
    if (!isGroupMac(buf, off)) {
      const port = this.ports.get(macKey(buf, off));
      if (port === undefined) {
        this.counters.unknownIn++;
        return;
      }
      this.counters.unicastIn++;
      this.deliver(port, buf, off, len, info);
      if (this.link.setBatchEndHandler === undefined) this.endBatch();
      return;
    }
    this.counters.groupIn++;
    const target = this.arpTarget(buf, off, len) ?? this.dhcpClient(buf, off, len);
    if (target !== null) {
      if (target !== 'none') this.deliverCopy(target, buf, off, len, info);
    } else {
      this.counters.floodedIn++;
      for (const port of this.ports.values()) this.deliverCopy(port, buf, off, len, info);
    }
    if (this.link.setBatchEndHandler === undefined) this.endBatch();
  }

  private ownMac(key: number, buf: Buffer, off: number): void {
    this.counters.ownMacIn++;
    // Bounded: a report per MAC, for at most as many MACs as the segment has devices.
    if (this.onOwnMac === null || this.reportedOwnMacs.has(key)) return;
    this.reportedOwnMacs.add(key);
    this.onOwnMac(Uint8Array.from(buf.subarray(off + 6, off + 12)));
  }

  private deliverCopy(port: SegmentPort, buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    if (this.groupCopy.length < len) this.groupCopy = Buffer.alloc(len);
    buf.copy(this.groupCopy, 0, off, off + len);
    this.deliver(port, this.groupCopy, 0, len, info);
  }

  /**
   * For an ARP request: the one device that holds the address asked for, 'none' for a
   * gratuitous one (its sender asks for itself) or one for no device of ours that we know
   * of... null: not an ARP request, or an address not learned (the caller floods).
   */
  private arpTarget(buf: Buffer, off: number, len: number): SegmentPort | 'none' | null {
    if (len < ARP_FRAME || buf.readUInt16BE(off + 12) !== ETHERTYPE_ARP || buf.readUInt16BE(off + 20) !== ARP_OP_REQUEST) return null;
    const senderIp = buf.readUInt32BE(off + 28);
    const targetIp = buf.readUInt32BE(off + 38);
    if (senderIp === targetIp) return 'none';
    return this.byIp.get(targetIp) ?? null;
  }

  /**
   * For a broadcast DHCP reply (UDP to port 68, IPv4 without options): the device whose MAC
   * is its chaddr, or 'none'; null for any other frame.
   */
  private dhcpClient(buf: Buffer, off: number, len: number): SegmentPort | 'none' | null {
    if (len < DHCP_CHADDR_AT + 6 || buf.readUInt16BE(off + 12) !== ETHERTYPE_IPV4) return null;
    if (buf[off + 14] !== 0x45 || buf[off + 23] !== UDP_PROTOCOL || buf.readUInt16BE(off + 36) !== DHCP_CLIENT_PORT) return null;
    return this.ports.get(macKey(buf, off + DHCP_CHADDR_AT)) ?? 'none';
  }

  /**
   * Learns a device's address from the ARP it sends (its announcements, requests and
   * replies): not from IPv4 sources, which a router device forwards for others.
   */
  private learnIp(port: SegmentPort, buf: Buffer, off: number, len: number): void {
    if (len < ARP_FRAME || buf.readUInt16BE(off + 12) !== ETHERTYPE_ARP) return;
    const ip = buf.readUInt32BE(off + 28);
    if (ip === 0 || port.ip === ip) return;
    if (port.ip !== 0 && this.byIp.get(port.ip) === port) this.byIp.delete(port.ip);
    port.ip = ip;
    this.byIp.set(ip, port);
  }

  private endBatch(): void {
    const ports = this.touched;
    for (let i = 0; i < ports.length; i++) {
      const p = ports[i]!;
      p.inBatch = false;
      p.batchEnd?.();
    }
    ports.length = 0;
  }

  fromDevice(from: SegmentPort, buf: Buffer, off: number, len: number): void {
    if (len < 14) return;
    this.learnIp(from, buf, off, len);
    if (!isGroupMac(buf, off)) {
      const local = this.ports.get(macKey(buf, off));
      if (local === undefined) {
        this.counters.out++;
        this.link.send(buf, off, len);
        return;
      }
      this.keepLocal(local, buf, off, len);
      return;
    }
    this.counters.out++;
    this.link.send(buf, off, len);
    const target = this.arpTarget(buf, off, len);
    if (target !== null && target !== 'none' && target !== from) this.keepLocal(target, buf, off, len);
  }

  /** A copy for another device here, delivered on the next turn: a send never re-enters a stack. */
  private keepLocal(to: SegmentPort, buf: Buffer, off: number, len: number): void {
    this.counters.local++;
    const copy = Buffer.from(buf.subarray(off, off + len));
    this.clock.setTimer(0, () => {
      if (to.closed) return;
      this.deliver(to, copy, 0, copy.length, null);
      this.endBatch();
    });
  }
}
