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
import { LayerCounters } from '../util/counters.ts';
import { completePartialChecksum, type RxFrameInfo } from './vnet.ts';

/** IP protocol number of UDP (RFC 768; ipv4/ipv4-packet.ts's PROTO_UDP): link/ imports nothing from the layers above. */
const IP_PROTO_UDP = 17;

const PCAP_MAGIC_NANOS = 0xa1b23c4d;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;

/** Where the capture's bytes go: a file, or anything else (a test's sink). */
export interface PcapSink {
  write(buf: Uint8Array, off: number, len: number): void;
  close(): void;
}

/** A file opened for writing (truncated); a failure to open throws at once. */
class FileSink implements PcapSink {
  private readonly fd: number;
  constructor(path: string) {
    this.fd = fs.openSync(path, 'w');
  }
  write(buf: Uint8Array, off: number, len: number): void {
    fs.writeSync(this.fd, buf, off, len);
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

export interface PcapOptions {
  /**
   * The capture stops (and says so once) before it would grow past this many bytes; default
   * unlimited. Like tcpdump -C, but without rotation.
   */
  maxBytes?: number;
  /** Told once why the capture stopped (a write error, or maxBytes). */
  onStop?: (message: string) => void;
}

/**
 * Writes the capture. A write error (a full disk: ENOSPC) or the size limit stops it: the
 * error is reported once and counted, the sink closed, and every later frame only counted
 * as not captured, so the capture can never break the stack that it watches.
 */
export class PcapWriter {
  /** tx: frames written; drops: why the capture stopped, then the frames not captured. */
  readonly counters = new LayerCounters();
  private readonly sink: PcapSink;
  private readonly record = Buffer.alloc(16);
  private readonly maxBytes: number;
  private readonly onStop: (message: string) => void;
  private bytes = 0;
  private stopped = false;
  private closed = false;

  constructor(target: string | PcapSink, options: PcapOptions = {}) {
    this.sink = typeof target === 'string' ? new FileSink(target) : target;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.onStop = options.onStop ?? (() => {});
    const header = Buffer.alloc(24);
    header.writeUInt32LE(PCAP_MAGIC_NANOS, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(SNAPLEN, 16);
    header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    this.put(header, 0, 24);
  }

  /** Whether frames are still being captured. */
  get capturing(): boolean {
    return !this.stopped;
  }

  /** Appends one frame stamped with wall-clock time (pcap readers expect epoch times). Never throws. */
  write(buf: Buffer, off: number, len: number, epochMs: number = Date.now()): void {
    if (this.stopped) return this.counters.drop('pcap-not-captured');
    const captured = Math.min(len, SNAPLEN);
    if (this.bytes + 16 + captured > this.maxBytes) {
      this.stop('pcap-max-bytes', `pcap capture stopped at ${this.bytes} bytes (limit ${this.maxBytes})`);
      return this.counters.drop('pcap-not-captured');
    }
    const seconds = Math.floor(epochMs / 1000);
    const nanos = Math.floor((epochMs - seconds * 1000) * 1e6);
    this.record.writeUInt32LE(seconds, 0);
    this.record.writeUInt32LE(nanos, 4);
    this.record.writeUInt32LE(captured, 8);
    this.record.writeUInt32LE(len, 12);
    if (this.put(this.record, 0, 16) && this.put(buf, off, captured)) this.counters.tx++;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.stopped) return;
    this.stopped = true;
    try {
      this.sink.close();
    } catch (err) {
      this.counters.drop(`pcap-error: ${errorCode(err)}`);
    }
  }

  private put(buf: Uint8Array, off: number, len: number): boolean {
    try {
      this.sink.write(buf, off, len);
      this.bytes += len;
      return true;
    } catch (err) {
      this.stop(`pcap-error: ${errorCode(err)}`, `pcap capture stopped: ${(err as Error).message}`);
      return false;
    }
  }

  private stop(reason: string, message: string): void {
    this.stopped = true;
    this.counters.drop(reason);
    try {
      this.sink.close();
    } catch {
      // Closing a sink that failed may fail too; the capture is over either way.
    }
    this.closed = true;
    this.onStop(message);
  }
}

function errorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : (err as Error)?.message ?? String(err);
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
    if (!this.writer.capturing) return this.writer.write(buf, off, len);
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

/** One frame of a capture: its time (ms since the epoch) and its bytes. */
export interface PcapRecord {
  epochMs: number;
  frame: Buffer;
}

/**
 * Reads a classic pcap file (microsecond or nanosecond timestamps, either byte order) with
 * Ethernet frames, as the writer above makes and tcpdump -w does. Throws on anything else.
 */
export function readPcap(input: string | Buffer): PcapRecord[] {
  const data = typeof input === 'string' ? fs.readFileSync(input) : input;
  if (data.length < 24) throw new Error('pcap: shorter than its 24-byte header');
  const magicLE = data.readUInt32LE(0);
  const magicBE = data.readUInt32BE(0);
  const micro = 0xa1b2c3d4;
  const little = magicLE === micro || magicLE === PCAP_MAGIC_NANOS;
  if (!little && magicBE !== micro && magicBE !== PCAP_MAGIC_NANOS) throw new Error('pcap: not a pcap file (bad magic)');
  const nanos = (little ? magicLE : magicBE) === PCAP_MAGIC_NANOS;
  const u32 = (at: number): number => (little ? data.readUInt32LE(at) : data.readUInt32BE(at));
  if (u32(20) !== LINKTYPE_ETHERNET) throw new Error(`pcap: link type ${u32(20)}, not Ethernet`);
  const records: PcapRecord[] = [];
  // A record cut off at the end (a capture still being written) is left out, as tcpdump -r does.
  for (let at = 24; at + 16 <= data.length; ) {
    const captured = u32(at + 8);
    if (at + 16 + captured > data.length) break;
    const epochMs = u32(at) * 1000 + u32(at + 4) / (nanos ? 1e6 : 1e3);
    records.push({ epochMs, frame: Buffer.from(data.subarray(at + 16, at + 16 + captured)) });
    at += 16 + captured;
  }
  return records;
}
