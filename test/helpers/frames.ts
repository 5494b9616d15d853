// Builders for frames to inject in tests, and a recording link that keeps what a stack sends.

import { emitEthernet, ETH_HEADER_LEN, ETHERTYPE_IPV4 } from '../../src/link/ethernet.ts';
import type { FrameReceiver, Link } from '../../src/link/link.ts';
import { emitIpv4, IPV4_MIN_HEADER, type Ipv4Repr } from '../../src/ipv4/ipv4-packet.ts';

/** A Link that records every frame the stack sends and lets the test inject frames. */
export class RecordingLink implements Link {
  readonly mtu: number;
  readonly sent: Buffer[] = [];
  private receiver: FrameReceiver = () => {};
  constructor(mtu = 1500) {
    this.mtu = mtu;
  }
  send(buf: Buffer, off: number, len: number): void {
    this.sent.push(Buffer.from(buf.subarray(off, off + len)));
  }
  setReceiver(r: FrameReceiver): void {
    this.receiver = r;
  }
  inject(frame: Buffer): void {
    this.receiver(frame, 0, frame.length);
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
