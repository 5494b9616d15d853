// TCP header (RFC 9293 3.1) and options (RFC 9293 3.2, RFC 7323, RFC 2018): a view with a
// validated parse that allocates nothing, and an emit into a caller's buffer.

import { finishChecksum, pseudoHeaderSum, sumBytes } from '../util/checksum.ts';
import { PROTO_TCP } from '../ipv4/ipv4-packet.ts';
import { EMPTY_BUFFER } from '../util/bytes.ts';

export const TCP_MIN_HEADER = 20;
export const TCP_MAX_HEADER = 60;

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;
export const ECE = 0x40;
export const CWR = 0x80;

export const OPT_END = 0;
export const OPT_NOP = 1;
export const OPT_MSS = 2;
export const OPT_WSCALE = 3;
export const OPT_SACK_PERMITTED = 4;
export const OPT_SACK = 5;
export const OPT_TIMESTAMP = 8;

/** RFC 2018 3: at most four SACK blocks fit in 40 bytes of options. */
export const MAX_SACK_BLOCKS = 4;

export type TcpDrop = 'tcp-short' | 'tcp-bad-data-offset' | 'tcp-bad-checksum';

export class TcpSegment {
  buf: Buffer = EMPTY_BUFFER;
  off = 0;
  /** Segment length (header and payload). */
  length = 0;
  headerLength = 0;

  // Options, filled by parse(). -1 means "absent".
  mss = -1;
  windowScale = -1;
  sackPermitted = false;
  hasTimestamp = false;
  tsVal = 0;
  tsEcr = 0;
  sackCount = 0;
  /** Left and right edges of the SACK blocks, pairwise: [l0, r0, l1, r1, ...]. */
  readonly sackBlocks = new Uint32Array(MAX_SACK_BLOCKS * 2);
  /** The options area did not parse cleanly; the options before the fault are kept. */
  malformedOptions = false;

  /**
   * Validates a segment of `len` bytes at off, carried from src to dst. The checksum covers
   * the IPv4 pseudo-header (RFC 9293 3.1).
   */
  parse(buf: Buffer, off: number, len: number, src: number, dst: number, verifyChecksum = true): TcpDrop | null {
    if (len < TCP_MIN_HEADER) return 'tcp-short';
    const headerLength = (buf[off + 12]! >> 4) * 4;
    if (headerLength < TCP_MIN_HEADER || headerLength > len) return 'tcp-bad-data-offset';
    if (verifyChecksum && finishChecksum(sumBytes(buf, off, len, pseudoHeaderSum(src, dst, PROTO_TCP, len))) !== 0)
      return 'tcp-bad-checksum';
    this.buf = buf;
    this.off = off;
    this.length = len;
    this.headerLength = headerLength;
    this.parseOptions(buf, off + TCP_MIN_HEADER, headerLength - TCP_MIN_HEADER);
    return null;
  }

  /**
   * RFC 9293 3.2: options are kind, length, value, except End and No-op. A length that is
   * too short or runs past the header ends parsing (Linux does the same: what was read is
   * kept). An option with the wrong length for its kind is ignored.
   */
  private parseOptions(buf: Buffer, off: number, len: number): void {
    this.mss = -1;
    this.windowScale = -1;
    this.sackPermitted = false;
    this.hasTimestamp = false;
    this.tsVal = 0;
    this.tsEcr = 0;
    this.sackCount = 0;
    this.malformedOptions = false;
    let i = 0;
    while (i < len) {
      const kind = buf[off + i]!;
      if (kind === OPT_END) return;
      if (kind === OPT_NOP) {
        i++;
        continue;
      }
      if (i + 1 >= len) {
        this.malformedOptions = true;
        return;
      }
      const optLen = buf[off + i + 1]!;
      if (optLen < 2 || i + optLen > len) {
        this.malformedOptions = true;
        return;
      }
      const at = off + i + 2;
      switch (kind) {
        case OPT_MSS:
          if (optLen === 4) this.mss = buf.readUInt16BE(at);
          break;
        case OPT_WSCALE:
          // RFC 7323 2.3: a shift above 14 is treated as 14.
          if (optLen === 3) this.windowScale = Math.min(buf[at]!, 14);
          break;
        case OPT_SACK_PERMITTED:
          if (optLen === 2) this.sackPermitted = true;
          break;
        case OPT_TIMESTAMP:
          if (optLen === 10) {
            this.hasTimestamp = true;
            this.tsVal = buf.readUInt32BE(at);
            this.tsEcr = buf.readUInt32BE(at + 4);
          }
          break;
        case OPT_SACK:
          if (optLen >= 10 && (optLen - 2) % 8 === 0) {
            const n = Math.min((optLen - 2) / 8, MAX_SACK_BLOCKS);
            for (let b = 0; b < n; b++) {
              this.sackBlocks[2 * b] = buf.readUInt32BE(at + 8 * b);
              this.sackBlocks[2 * b + 1] = buf.readUInt32BE(at + 8 * b + 4);
            }
            this.sackCount = n;
          }
          break;
        default:
          break; // unknown options are skipped (RFC 9293 3.2, RFC 1122 4.2.2.5)
      }
      i += optLen;
    }
  }

  get srcPort(): number {
    return this.buf.readUInt16BE(this.off);
  }
  get dstPort(): number {
    return this.buf.readUInt16BE(this.off + 2);
  }
  get seq(): number {
    return this.buf.readUInt32BE(this.off + 4);
  }
  get ack(): number {
    return this.buf.readUInt32BE(this.off + 8);
  }
  get flags(): number {
    return this.buf[this.off + 13]!;
  }
  get window(): number {
    return this.buf.readUInt16BE(this.off + 14);
  }
  get checksum(): number {
    return this.buf.readUInt16BE(this.off + 16);
  }
  get urgentPointer(): number {
    return this.buf.readUInt16BE(this.off + 18);
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  get payloadLength(): number {
    return this.length - this.headerLength;
  }
  /** SEG.LEN of RFC 9293 3.4: payload plus one for SYN and one for FIN. */
  get segmentLength(): number {
    const f = this.flags;
    return this.length - this.headerLength + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0);
  }
}

/** What to write into a TCP header. Reused by the sender: options absent are -1 / false. */
export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgentPointer: number;
  mss: number;
  windowScale: number;
  sackPermitted: boolean;
  hasTimestamp: boolean;
  tsVal: number;
  tsEcr: number;
  /** SACK blocks to send, pairwise edges like TcpSegment.sackBlocks. */
  sackCount: number;
  sackBlocks: Uint32Array;
}

export function newTcpRepr(): TcpRepr {
  return {
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    urgentPointer: 0,
    mss: -1,
    windowScale: -1,
    sackPermitted: false,
    hasTimestamp: false,
    tsVal: 0,
    tsEcr: 0,
    sackCount: 0,
    sackBlocks: new Uint32Array(MAX_SACK_BLOCKS * 2),
  };
}

/** Clears the options of a reused repr. */
export function clearTcpOptions(r: TcpRepr): void {
  r.mss = -1;
  r.windowScale = -1;
  r.sackPermitted = false;
  r.hasTimestamp = false;
  r.sackCount = 0;
}

/** Header length for r's options, padded to a multiple of 4 (at most 60). */
export function tcpHeaderLength(r: TcpRepr): number {
  let n = 0;
  if (r.mss >= 0) n += 4;
  // Laid out as Linux does: NOP-padded so that 4-byte fields stay aligned.
  if (r.windowScale >= 0) n += 4;
  if (r.hasTimestamp) n += 12; // NOP NOP TS, or SACK-permitted + TS
  else if (r.sackPermitted) n += 4;
  const blocks = Math.min(r.sackCount, Math.floor((TCP_MAX_HEADER - TCP_MIN_HEADER - n - 4) / 8));
  if (blocks > 0) n += 4 + 8 * blocks;
  return TCP_MIN_HEADER + n;
}

/**
 * Writes the header for r at off; the payload (payloadLength bytes) must already be at
 * off + tcpHeaderLength(r). Computes the checksum with the pseudo-header for src -> dst,
 * unless `checksum` is false: the field is then left zero for IPv4 to complete (its
 * checksumField option, which offloads it when the link can). Returns the header length.
 */
export function emitTcp(buf: Buffer, off: number, r: TcpRepr, payloadLength: number, src: number, dst: number, checksum = true): number {
  const headerLength = tcpHeaderLength(r);
  buf.writeUInt16BE(r.srcPort, off);
  buf.writeUInt16BE(r.dstPort, off + 2);
  buf.writeUInt32BE(r.seq >>> 0, off + 4);
  buf.writeUInt32BE(r.ack >>> 0, off + 8);
  buf[off + 12] = (headerLength / 4) << 4;
  buf[off + 13] = r.flags;
  buf.writeUInt16BE(r.window, off + 14);
  buf.writeUInt16BE(0, off + 16);
  buf.writeUInt16BE(r.urgentPointer, off + 18);
  let i = off + TCP_MIN_HEADER;
  const end = off + headerLength;
  if (r.mss >= 0) {
    buf[i] = OPT_MSS;
    buf[i + 1] = 4;
    buf.writeUInt16BE(r.mss, i + 2);
    i += 4;
  }
  if (r.hasTimestamp) {
    if (r.sackPermitted) {
      buf[i] = OPT_SACK_PERMITTED;
      buf[i + 1] = 2;
    } else {
      buf[i] = OPT_NOP;
      buf[i + 1] = OPT_NOP;
    }
    buf[i + 2] = OPT_TIMESTAMP;
    buf[i + 3] = 10;
    buf.writeUInt32BE(r.tsVal >>> 0, i + 4);
    buf.writeUInt32BE(r.tsEcr >>> 0, i + 8);
    i += 12;
  } else if (r.sackPermitted) {
    buf[i] = OPT_NOP;
    buf[i + 1] = OPT_NOP;
    buf[i + 2] = OPT_SACK_PERMITTED;
    buf[i + 3] = 2;
    i += 4;
  }
  if (r.windowScale >= 0) {
    buf[i] = OPT_NOP;
    buf[i + 1] = OPT_WSCALE;
    buf[i + 2] = 3;
    buf[i + 3] = r.windowScale;
    i += 4;
  }
  if (r.sackCount > 0) {
    // Only as many blocks as fit after the other options.
    const room = Math.floor((end - i - 4) / 8);
    const n = Math.min(r.sackCount, room);
    if (n > 0) {
      buf[i] = OPT_NOP;
      buf[i + 1] = OPT_NOP;
      buf[i + 2] = OPT_SACK;
      buf[i + 3] = 2 + 8 * n;
      i += 4;
      for (let b = 0; b < n; b++) {
        buf.writeUInt32BE(r.sackBlocks[2 * b]! >>> 0, i);
        buf.writeUInt32BE(r.sackBlocks[2 * b + 1]! >>> 0, i + 4);
        i += 8;
      }
    }
  }
  while (i < end) buf[i++] = OPT_NOP;
  if (checksum) {
    const len = headerLength + payloadLength;
    const sum = sumBytes(buf, off, len, pseudoHeaderSum(src, dst, PROTO_TCP, len));
    buf.writeUInt16BE(finishChecksum(sum), off + 16);
  }
  return headerLength;
}
