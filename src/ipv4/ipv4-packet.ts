// IPv4 header (RFC 791 3.1): a view with validated parse, and an emit into a caller's buffer.

import { internetChecksum } from '../util/checksum.ts';
import { EMPTY_BUFFER } from '../util/bytes.ts';

export const IPV4_MIN_HEADER = 20;
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export const FLAG_DF = 0x4000;
export const FLAG_MF = 0x2000;
const OFFSET_MASK = 0x1fff;

export type Ipv4Drop =
  | 'ip-short'
  | 'ip-version'
  | 'ip-bad-ihl'
  | 'ip-bad-length'
  | 'ip-bad-checksum'
  | 'ip-bad-options';

export interface Ipv4Repr {
  tos: number;
  id: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  src: number;
  dst: number;
  /** Raw option bytes (a multiple of 4 long, at most 40). */
  options?: Buffer;
}

export class Ipv4Packet {
  buf: Buffer = EMPTY_BUFFER;
  off = 0;
  headerLength = 0;
  totalLength = 0;

  /**
   * Validates the header at off, with `avail` bytes present (the link may pad short frames,
   * so totalLength may be less than avail, never more).
   */
  parse(buf: Buffer, off: number, avail: number, verifyChecksum = true): Ipv4Drop | null {
    if (avail < IPV4_MIN_HEADER) return 'ip-short';
    const vihl = buf[off]!;
    if (vihl >> 4 !== 4) return 'ip-version';
    const headerLength = (vihl & 0x0f) * 4;
    if (headerLength < IPV4_MIN_HEADER || headerLength > avail) return 'ip-bad-ihl';
    const totalLength = buf.readUInt16BE(off + 2);
    if (totalLength < headerLength || totalLength > avail) return 'ip-bad-length';
    if (verifyChecksum && internetChecksum(buf, off, headerLength) !== 0) return 'ip-bad-checksum';
    if (headerLength > IPV4_MIN_HEADER && !optionsWellFormed(buf, off + IPV4_MIN_HEADER, headerLength - IPV4_MIN_HEADER))
      return 'ip-bad-options';
    this.buf = buf;
    this.off = off;
    this.headerLength = headerLength;
    this.totalLength = totalLength;
    return null;
  }

  get tos(): number {
    return this.buf[this.off + 1]!;
  }
  get id(): number {
    return this.buf.readUInt16BE(this.off + 4);
  }
  get flagsAndOffset(): number {
    return this.buf.readUInt16BE(this.off + 6);
  }
  get dontFragment(): boolean {
    return (this.flagsAndOffset & FLAG_DF) !== 0;
  }
  get moreFragments(): boolean {
    return (this.flagsAndOffset & FLAG_MF) !== 0;
  }
  /** In bytes. */
  get fragmentOffset(): number {
    return (this.flagsAndOffset & OFFSET_MASK) * 8;
  }
  get isFragment(): boolean {
    return (this.flagsAndOffset & (FLAG_MF | OFFSET_MASK)) !== 0;
  }
  get ttl(): number {
    return this.buf[this.off + 8]!;
  }
  get protocol(): number {
    return this.buf[this.off + 9]!;
  }
  get checksum(): number {
    return this.buf.readUInt16BE(this.off + 10);
  }
  get src(): number {
    return this.buf.readUInt32BE(this.off + 12);
  }
  get dst(): number {
    return this.buf.readUInt32BE(this.off + 16);
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  get payloadLength(): number {
    return this.totalLength - this.headerLength;
  }

  toRepr(): Ipv4Repr {
    const r: Ipv4Repr = {
      tos: this.tos,
      id: this.id,
      dontFragment: this.dontFragment,
      moreFragments: this.moreFragments,
      fragmentOffset: this.fragmentOffset,
      ttl: this.ttl,
      protocol: this.protocol,
      src: this.src,
      dst: this.dst,
    };
    if (this.headerLength > IPV4_MIN_HEADER)
      r.options = Buffer.from(this.buf.subarray(this.off + IPV4_MIN_HEADER, this.off + this.headerLength));
    return r;
  }
}

/**
 * Options are type-length-value except End (0) and No-op (1) (RFC 791 3.1). We act on none
 * of them, but a length that runs past the header means the header is corrupt.
 */
function optionsWellFormed(buf: Buffer, off: number, len: number): boolean {
  let i = 0;
  while (i < len) {
    const type = buf[off + i]!;
    if (type === 0) return true;
    if (type === 1) {
      i++;
      continue;
    }
    if (i + 1 >= len) return false;
    const optLen = buf[off + i + 1]!;
    if (optLen < 2 || i + optLen > len) return false;
    i += optLen;
  }
  return true;
}

export function ipv4HeaderLength(r: Ipv4Repr): number {
  return IPV4_MIN_HEADER + (r.options?.length ?? 0);
}

/** Writes a header at off for a payload of payloadLength bytes; returns the header length. */
export function emitIpv4(buf: Buffer, off: number, r: Ipv4Repr, payloadLength: number): number {
  const headerLength = ipv4HeaderLength(r);
  buf[off] = 0x40 | (headerLength >> 2);
  buf[off + 1] = r.tos;
  buf.writeUInt16BE(headerLength + payloadLength, off + 2);
  buf.writeUInt16BE(r.id & 0xffff, off + 4);
  const flags = (r.dontFragment ? FLAG_DF : 0) | (r.moreFragments ? FLAG_MF : 0) | ((r.fragmentOffset >> 3) & OFFSET_MASK);
  buf.writeUInt16BE(flags, off + 6);
  buf[off + 8] = r.ttl;
  buf[off + 9] = r.protocol;
  buf.writeUInt16BE(0, off + 10);
  buf.writeUInt32BE(r.src >>> 0, off + 12);
  buf.writeUInt32BE(r.dst >>> 0, off + 16);
  if (r.options) r.options.copy(buf, off + IPV4_MIN_HEADER);
  buf.writeUInt16BE(internetChecksum(buf, off, headerLength), off + 10);
  return headerLength;
}
