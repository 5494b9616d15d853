// A Link that wraps another Link (fault injection, capture, ...). By default it is
// transparent: it forwards the inner link's mtu, offloads (gsoMaxSize, txOffload), batched
// receive, close, and every frame both ways with its offload facts, so wrapping a link
// changes nothing the stack sees. Subclasses override `send` and/or `receive` only.

import type { FrameReceiver, Link } from './link.ts';
import type { RxFrameInfo, TxOffload } from './vnet.ts';

export class LinkDecorator implements Link {
  /**
   * Present exactly when the inner link batches: a link without batches has none, so that
   * the stack ends a batch after every frame (see Link.setBatchEndHandler).
   */
  readonly setBatchEndHandler?: (handler: () => void) => void;
  /** The stack's receiver; subclasses pass frames to it (or through receiveAlone). */
  protected receiver: FrameReceiver = () => {};
  private batchEnd: (() => void) | null = null;

  constructor(protected readonly inner: Link) {
    inner.setReceiver((buf, off, len, info) => this.receive(buf, off, len, info));
    if (typeof inner.setBatchEndHandler === 'function') {
      this.setBatchEndHandler = (handler) => {
        this.batchEnd = handler;
        inner.setBatchEndHandler!(handler);
      };
    }
  }

  get mtu(): number {
    return this.inner.mtu;
  }

  get gsoMaxSize(): number | undefined {
    return this.inner.gsoMaxSize;
  }

  get txOffload(): TxOffload | undefined {
    return this.inner.txOffload;
  }

  /** A frame to send; by default handed to the inner link as it is. */
  send(buf: Buffer, off: number, len: number): void {
    this.inner.send(buf, off, len);
  }

  setReceiver(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  close(): Promise<void> | void {
    return this.inner.close();
  }

  /** A frame from the inner link (during its receive, in its batch); by default passed up. */
  protected receive(buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    this.receiver(buf, off, len, info);
  }

  /**
   * Passes up a frame that arrives outside the inner link's receive (from a timer, say a
   * delayed copy): on a batching link it is a batch of its own, ended here.
   */
  protected receiveAlone(buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    this.receiver(buf, off, len, info);
    if (this.batchEnd !== null) this.batchEnd();
  }
}
