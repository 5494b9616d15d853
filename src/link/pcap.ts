// pcap capture (libpcap's classic format, LINKTYPE_ETHERNET, nanosecond timestamps) of every
// frame in and out, readable by Wireshark and tshark.

import fs from 'node:fs';
import type { FrameReceiver, Link } from './link.ts';

const PCAP_MAGIC_NANOS = 0xa1b23c4d;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;

export class PcapWriter {
  private readonly fd: number;
  private readonly record = Buffer.alloc(16);

  constructor(path: string) {
    this.fd = fs.openSync(path, 'w');
    const header = Buffer.alloc(24);
    header.writeUInt32LE(PCAP_MAGIC_NANOS, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(SNAPLEN, 16);
    header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    fs.writeSync(this.fd, header);
  }

  /** Appends one frame stamped with wall-clock time (pcap readers expect epoch times). */
  write(buf: Buffer, off: number, len: number, epochMs: number = Date.now()): void {
    const seconds = Math.floor(epochMs / 1000);
    const nanos = Math.floor((epochMs - seconds * 1000) * 1e6);
    const captured = Math.min(len, SNAPLEN);
    this.record.writeUInt32LE(seconds, 0);
    this.record.writeUInt32LE(nanos, 4);
    this.record.writeUInt32LE(captured, 8);
    this.record.writeUInt32LE(len, 12);
    fs.writeSync(this.fd, this.record);
    fs.writeSync(this.fd, buf, off, captured);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** A Link that records every frame in and out to a pcap file, then passes it on. */
export class CapturingLink implements Link {
  private receiver: FrameReceiver = () => {};

  constructor(
    private readonly inner: Link,
    private readonly writer: PcapWriter,
    private readonly epochMs: () => number = Date.now,
  ) {
    inner.setReceiver((buf, off, len) => {
      this.writer.write(buf, off, len, this.epochMs());
      this.receiver(buf, off, len);
    });
  }

  get mtu(): number {
    return this.inner.mtu;
  }

  send(buf: Buffer, off: number, len: number): void {
    this.writer.write(buf, off, len, this.epochMs());
    this.inner.send(buf, off, len);
  }

  setReceiver(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  async close(): Promise<void> {
    await this.inner.close();
    this.writer.close();
  }
}
