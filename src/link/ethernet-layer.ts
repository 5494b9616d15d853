// The Ethernet layer of one interface: parse each received frame, keep those for our MAC, the
// broadcast address or a multicast address the IPv4 layer joined, and hand the payload to the handler registered for
// its EtherType (ARP, IPv4: the stack registers them); count every frame in and out.

import { LayerCounters } from '../util/counters.ts';
import { EthernetFrame, isBroadcastMac, isGroupMac, type Mac, macEquals } from './ethernet.ts';
import type { Link } from './link.ts';
import type { RxFrameInfo } from './vnet.ts';

/** Receives the payload of a frame of one EtherType, with the link's offload facts. */
export type EtherTypeHandler = (buf: Buffer, off: number, len: number, info: RxFrameInfo | null) => void;

/** A layer above (ARP, IPv4) registered as itself: no closure per stack, as a fleet has thousands. */
export interface EtherTypeReceiver {
  receive(buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void;
}

/** The all-systems group's MAC bits (224.0.0.1 -> 01:00:5e:00:00:01). */
const ALL_SYSTEMS_MAC_KEY = 1;

/**
 * Sees every frame, in as received (before any check) and out as handed to the link. The
 * bytes are valid only during the call.
 */
export type FrameObserver = (direction: 'in' | 'out', buf: Buffer, off: number, len: number) => void;

export class EthernetLayer {
  readonly counters = new LayerCounters();
  /** One optional observer (the stack's probe); unset, one null check per frame. */
  observer: FrameObserver | null = null;
  private readonly view = new EthernetFrame();
  // EtherTypes and their receivers, side by side; exact-size arrays (replaced on register).
  private types: number[] = [];
  private receivers: EtherTypeReceiver[] = [];
  /**
   * The multicast filter: IPv4 group MACs (01:00:5e + 23 bits, by those bits) with how many
   * groups map to each. Linux dev_mc_add/dev_mc_del program the NIC's filter the same way
   * (ip_mc_filter_add, via arp_mc_map): frames to other group MACs never reach IP. The
   * all-systems group's MAC, which every IPv4 host joins, is counted apart, so that the table
   * is made only when a socket joins a group.
   */
  private multicastMacs: Map<number, number> | null = null;
  private allSystemsRefs = 0;

  constructor(
    private readonly link: Pick<Link, 'send'>,
    readonly mac: Mac,
  ) {}

  /**
   * Sets the receiver of frames of one EtherType (ETHERTYPE_ARP, ETHERTYPE_IPV4, ...): an
   * object with receive(), or a function (as addEventListener takes either).
   */
  register(etherType: number, receiver: EtherTypeReceiver | EtherTypeHandler): void {
    const r = typeof receiver === 'function' ? { receive: receiver } : receiver;
    const i = this.types.indexOf(etherType);
    if (i >= 0) this.receivers[i] = r;
    else {
      this.types = this.types.concat(etherType);
      this.receivers = this.receivers.concat(r);
    }
  }

  /** Handles a received frame. Bad or foreign frames are dropped and counted. */
  receive(buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    const c = this.counters;
    c.rx++;
    const o = this.observer;
    if (o !== null) o('in', buf, off, len);
    const eth = this.view;
    const bad = eth.parse(buf, off, len);
    if (bad) return c.drop(bad);
    if (isGroupMac(buf, off)) {
      if (!isBroadcastMac(buf, off) && !this.acceptsMulticast(buf, off)) return c.drop('eth-multicast-filtered');
    } else if (!macEquals(buf, off, this.mac)) return c.drop('eth-not-for-us');
    const i = this.types.indexOf(eth.etherType);
    if (i < 0) return c.drop('eth-unknown-type');
    this.receivers[i]!.receive(buf, eth.payloadOffset, eth.payloadLength, info);
  }

  /** Accepts frames to the MAC of this IPv4 group (23 low bits) until as many removes. */
  addMulticast(group: number): void {
    const key = group & 0x7fffff;
    if (key === ALL_SYSTEMS_MAC_KEY) this.allSystemsRefs++;
    else (this.multicastMacs ??= new Map()).set(key, (this.multicastMacs.get(key) ?? 0) + 1);
  }

  removeMulticast(group: number): void {
    const key = group & 0x7fffff;
    if (key === ALL_SYSTEMS_MAC_KEY) {
      this.allSystemsRefs = Math.max(0, this.allSystemsRefs - 1);
      return;
    }
    const n = this.multicastMacs?.get(key) ?? 0;
    if (n <= 1) this.multicastMacs?.delete(key);
    else this.multicastMacs!.set(key, n - 1);
  }

  private acceptsMulticast(buf: Buffer, off: number): boolean {
    if (buf[off] !== 0x01 || buf[off + 1] !== 0x00 || buf[off + 2] !== 0x5e || (buf[off + 3]! & 0x80) !== 0) return false;
    const key = (buf[off + 3]! << 16) | (buf[off + 4]! << 8) | buf[off + 5]!;
    if (key === ALL_SYSTEMS_MAC_KEY) return this.allSystemsRefs > 0;
    return this.multicastMacs?.has(key) ?? false;
  }

  /** Sends a whole frame (its Ethernet header written by the caller) on the link. */
  send(buf: Buffer, off: number, len: number): void {
    this.counters.tx++;
    const o = this.observer;
    if (o !== null) o('out', buf, off, len);
    this.link.send(buf, off, len);
  }
}
