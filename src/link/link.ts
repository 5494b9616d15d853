// The Link is the only thing the stack needs from below: send a whole Ethernet frame, and
// receive whole Ethernet frames. A TAP device, an in-memory wire, a fault injector and a
// pcap tap all implement it, so everything above runs the same over any of them.

import type { RxFrameInfo, TxOffload } from './vnet.ts';

/**
 * Called for each received frame: its bytes at buf[off, off+len), and what the link learned
 * about it from offloads (a TAP's virtio-net header; vnet.ts), or null when it knows nothing.
 * Bytes and info are valid only during the call.
 */
export type FrameReceiver = (buf: Buffer, off: number, len: number, info: RxFrameInfo | null) => void;

export interface Link {
  /** Largest IP packet the link carries (Ethernet payload size). */
  readonly mtu: number;
  /**
   * Sends one Ethernet frame. The link must not keep a reference to buf after returning:
   * callers reuse their transmit buffers at once.
   */
  send(buf: Buffer, off: number, len: number): void;
  /**
   * Sets the function called for each received frame. The bytes are valid only during the
   * call: whoever needs them later copies them.
   */
  setReceiver(receiver: FrameReceiver): void;
  close(): Promise<void> | void;

  // Optional: offloads (a TAP with IFF_VNET_HDR; see vnet.ts) and batched receive.

  /**
   * Largest IPv4 packet the link takes for segmentation offload (TSO): a TCP sender may
   * build super-frames up to this size. Without offloads it is the mtu (or absent).
   */
  readonly gsoMaxSize?: number;
  /** Offload request for the next send(); IPv4 fills it in and clears it (see vnet.ts). */
  readonly txOffload?: TxOffload;
  /**
   * A link that delivers frames in batches calls `handler` after each batch, so layers above
   * can do once per batch what they would otherwise do per frame (coalesce ACKs, flush
   * output). Without this method the stack ends a batch after every frame.
   */
  setBatchEndHandler?(handler: () => void): void;
}

/**
 * Bytes before `off` that a Link may overwrite when sending (a TAP with IFF_VNET_HDR puts its
 * 10-byte virtio-net header there). Every transmit buffer reserves them.
 */
export const LINK_HEADROOM = 16;
