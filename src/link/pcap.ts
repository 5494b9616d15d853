// pcap capture (libpcap's classic format, LINKTYPE_ETHERNET, nanosecond timestamps) of every
// frame in and out, readable by Wireshark and tshark.
//
// With offloads (vnet.ts) a frame may be a TCP super-frame of up to 64 KB and its transport
// checksum may be partial. The capture shows what the stack sent and received: super-frames
// as single IPv4 packets larger than the MTU (as tcpdump on the kernel's end of the TAP
// shows them too), each with its checksum completed in the captured copy, so every frame in
// the file is a valid one.

import fs from 'node:fs';
import { ETH_HEADER_LEN, ETHERTYPE_IPV4 } from './ethernet.ts';
import { LinkDecorator } from './decorator.ts';
import type { Link } from './link.ts';
import { completePartialChecksum, type RxFrameInfo } from './vnet.ts';

/** IP protocol number of UDP (RFC 768; ipv4/ipv4-packet.ts's PROTO_UDP): link/ imports nothing from the layers above. */
const IP_PROTO_UDP = 17;

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
export class CapturingLink extends LinkDecorator {
  private scratch: Buffer | null = null;

  constructor(
    inner: Link,
    private readonly writer: PcapWriter,
    private readonly epochMs: () => number = Date.now,
  ) {
    super(inner);
  }

  protected override receive(buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    if (info?.checksumPartial) this.writeCompleted(buf, off, len, info.checksumStart, info.checksumField);
    else this.writer.write(buf, off, len, this.epochMs());
    this.receiver(buf, off, len, info);
  }

  override send(buf: Buffer, off: number, len: number): void {
    const t = this.inner.txOffload;
    if (t !== undefined && t.checksumStart !== 0) this.writeCompleted(buf, off, len, off + t.checksumStart, off + t.checksumStart + t.checksumOffset);
    else this.writer.write(buf, off, len, this.epochMs());
    this.inner.send(buf, off, len);
  }

  /** Captures a copy of a frame whose transport checksum is partial, with it completed. */
  private writeCompleted(buf: Buffer, off: number, len: number, start: number, field: number): void {
    const copy = (this.scratch ??= Buffer.alloc(65536 + 64));
    const n = Math.min(len, copy.length);
    buf.copy(copy, 0, off, off + n);
    let end = n;
    if (n >= ETH_HEADER_LEN + 20 && copy.readUInt16BE(12) === ETHERTYPE_IPV4) end = Math.min(n, ETH_HEADER_LEN + copy.readUInt16BE(ETH_HEADER_LEN + 2));
    if (field - off + 2 <= end && start >= off) completePartialChecksum(copy, start - off, field - off, end, copy[ETH_HEADER_LEN + 9] === IP_PROTO_UDP);
    this.writer.write(copy, 0, n, this.epochMs());
  }

  override async close(): Promise<void> {
    await this.inner.close();
    this.writer.close();
  }
}
