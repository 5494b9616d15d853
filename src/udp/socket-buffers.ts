// A UDP socket's buffers as Linux sizes them (SO_RCVBUF, SO_SNDBUF) and its receive queue:
// datagrams received in a batch wait here for its end, charged to the receive buffer as Linux
// charges an skb, so that SO_RCVBUF bounds them.

/** Linux's net.core.rmem_default, rmem_max, wmem_default, wmem_max. */
export interface BufferLimits {
  rmemDefault: number;
  rmemMax: number;
  wmemDefault: number;
  wmemMax: number;
}

/** Linux SOCK_MIN_RCVBUF and SOCK_MIN_SNDBUF (include/net/sock.h). */
const SOCK_MIN_RCVBUF = 2304;
const SOCK_MIN_SNDBUF = 4608;
/**
 * What a queued datagram costs the receive buffer beyond its payload, as Linux charges an
 * skb's truesize: the sk_buff and shared info (576 bytes) and the frame's headers.
 */
const DATAGRAM_OVERHEAD = 576 + 42;

export class SocketBuffers {
  /** SO_RCVBUF / SO_SNDBUF as Linux keeps them (twice what was asked, bounded). */
  rcvbuf: number;
  sndbuf: number;
  /** The queue, as parallel arrays (no object per datagram). */
  private readonly msgs: Buffer[] = [];
  private readonly srcs: number[] = [];
  private readonly ports: number[] = [];
  private rmem = 0;

  constructor(private readonly limits: BufferLimits) {
    this.rcvbuf = limits.rmemDefault;
    this.sndbuf = limits.wmemDefault;
  }

  /**
   * Linux sock_setsockopt SO_RCVBUF/SO_SNDBUF: twice the value asked, bounded by
   * rmem_max/wmem_max, at least SOCK_MIN_RCVBUF/SOCK_MIN_SNDBUF (reads give that value).
   */
  set(size: number, recv: boolean): void {
    const b = this.limits;
    if (recv) this.rcvbuf = Math.max(Math.min(size, b.rmemMax) * 2, SOCK_MIN_RCVBUF);
    else this.sndbuf = Math.max(Math.min(size, b.wmemMax) * 2, SOCK_MIN_SNDBUF);
  }

  /**
   * Is there room for a datagram of len bytes? Linux __udp_enqueue_schedule_skb: full when
   * the bytes queued exceed SO_RCVBUF (one datagram past it is allowed).
   */
  admits(len: number): boolean {
    return !(this.rmem + len + DATAGRAM_OVERHEAD > this.rcvbuf && this.rmem > this.rcvbuf);
  }

  /** Queues a datagram; returns whether the queue was empty before. */
  push(msg: Buffer, src: number, srcPort: number): boolean {
    const wasEmpty = this.msgs.length === 0;
    this.msgs.push(msg);
    this.srcs.push(src);
    this.ports.push(srcPort);
    this.rmem += msg.length + DATAGRAM_OVERHEAD;
    return wasEmpty;
  }

  /** Hands each queued datagram to fn while `go()` holds, then empties the queue. */
  drain(fn: (msg: Buffer, src: number, srcPort: number) => void, go: () => boolean): void {
    const { msgs, srcs, ports } = this;
    for (let i = 0; i < msgs.length && go(); i++) {
      const msg = msgs[i]!;
      this.rmem -= msg.length + DATAGRAM_OVERHEAD;
      fn(msg, srcs[i]!, ports[i]!);
    }
    this.clear();
  }

  clear(): void {
    this.msgs.length = 0;
    this.srcs.length = 0;
    this.ports.length = 0;
    this.rmem = 0;
  }
}
