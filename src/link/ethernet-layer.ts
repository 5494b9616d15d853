// The Ethernet layer of one interface: parse each received frame, keep those for our MAC or a
// group address (broadcast, multicast), and hand the payload to the handler registered for
// its EtherType (ARP, IPv4: the stack registers them); count every frame in and out.

import { LayerCounters } from '../util/counters.ts';
import { EthernetFrame, isGroupMac, type Mac, macEquals } from './ethernet.ts';
import type { Link } from './link.ts';
import type { RxFrameInfo } from './vnet.ts';

/** Receives the payload of a frame of one EtherType, with the link's offload facts. */
export type EtherTypeHandler = (buf: Buffer, off: number, len: number, info: RxFrameInfo | null) => void;

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
  private readonly types: number[] = [];
  private readonly handlers: EtherTypeHandler[] = [];

  constructor(
    private readonly link: Pick<Link, 'send'>,
    readonly mac: Mac,
  ) {}

  /** Sets the handler for frames of one EtherType (ETHERTYPE_ARP, ETHERTYPE_IPV4, ...). */
  register(etherType: number, handler: EtherTypeHandler): void {
    const i = this.types.indexOf(etherType);
    if (i >= 0) this.handlers[i] = handler;
    else {
      this.types.push(etherType);
      this.handlers.push(handler);
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
    if (!isGroupMac(buf, off) && !macEquals(buf, off, this.mac)) return c.drop('eth-not-for-us');
    const i = this.types.indexOf(eth.etherType);
    if (i < 0) return c.drop('eth-unknown-type');
    this.handlers[i]!(buf, eth.payloadOffset, eth.payloadLength, info);
  }

  /** Sends a whole frame (its Ethernet header written by the caller) on the link. */
  send(buf: Buffer, off: number, len: number): void {
    this.counters.tx++;
    const o = this.observer;
    if (o !== null) o('out', buf, off, len);
    this.link.send(buf, off, len);
  }
}
