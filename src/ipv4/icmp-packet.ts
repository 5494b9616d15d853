// ICMPv4 (RFC 792): type, code, checksum over the whole message, then a 4-byte field whose
// meaning depends on the type (identifier and sequence for echo, next-hop MTU for
// fragmentation needed), then data.

import { internetChecksum } from '../util/checksum.ts';
import { EMPTY_BUFFER } from '../util/bytes.ts';

export const ICMP_HEADER_LEN = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETER_PROBLEM = 12;

export const UNREACH_NET = 0;
export const UNREACH_HOST = 1;
export const UNREACH_PROTOCOL = 2;
export const UNREACH_PORT = 3;
export const UNREACH_FRAG_NEEDED = 4;
export const TIME_EXCEEDED_REASSEMBLY = 1;

export type IcmpDrop = 'icmp-short' | 'icmp-bad-checksum';

export interface IcmpRepr {
  type: number;
  code: number;
  /** The 4 bytes after the checksum, as one number (identifier << 16 | sequence for echo). */
  rest: number;
  data: Buffer;
}

export class IcmpPacket {
  buf: Buffer = EMPTY_BUFFER;
  off = 0;
  len = 0;

  /** verifyChecksum false: the checksum is known good (offloads; see ProtocolHandler's checksumTrusted). */
  parse(buf: Buffer, off: number, len: number, verifyChecksum = true): IcmpDrop | null {
    if (len < ICMP_HEADER_LEN) return 'icmp-short';
    if (verifyChecksum && internetChecksum(buf, off, len) !== 0) return 'icmp-bad-checksum';
    this.buf = buf;
    this.off = off;
    this.len = len;
    return null;
  }

  get type(): number {
    return this.buf[this.off]!;
  }
  get checksum(): number {
    return this.buf.readUInt16BE(this.off + 2);
  }
  get code(): number {
    return this.buf[this.off + 1]!;
  }
  get rest(): number {
    return this.buf.readUInt32BE(this.off + 4);
  }
  get identifier(): number {
    return this.buf.readUInt16BE(this.off + 4);
  }
  get sequence(): number {
    return this.buf.readUInt16BE(this.off + 6);
  }
  get dataOffset(): number {
    return this.off + ICMP_HEADER_LEN;
  }
  get dataLength(): number {
    return this.len - ICMP_HEADER_LEN;
  }

  toRepr(): IcmpRepr {
    return {
      type: this.type,
      code: this.code,
      rest: this.rest,
      data: Buffer.from(this.buf.subarray(this.dataOffset, this.off + this.len)),
    };
  }
}

/**
 * Writes the ICMP header at off over `dataLength` bytes of data that already sit right after
 * it, and fills in the checksum. Returns the message length.
 */
export function emitIcmpHeader(buf: Buffer, off: number, type: number, code: number, rest: number, dataLength: number): number {
  buf[off] = type;
  buf[off + 1] = code;
  buf.writeUInt16BE(0, off + 2);
  buf.writeUInt32BE(rest >>> 0, off + 4);
  const len = ICMP_HEADER_LEN + dataLength;
  buf.writeUInt16BE(internetChecksum(buf, off, len), off + 2);
  return len;
}

/** An echo reply header over data already in place, with a checksum the caller worked out. */
export function emitEchoReplyHeader(buf: Buffer, off: number, rest: number, dataLength: number, checksum: number): number {
  buf[off] = ICMP_ECHO_REPLY;
  buf[off + 1] = 0;
  buf.writeUInt16BE(checksum, off + 2);
  buf.writeUInt32BE(rest >>> 0, off + 4);
  return ICMP_HEADER_LEN + dataLength;
}

export function emitIcmp(buf: Buffer, off: number, r: IcmpRepr): number {
  r.data.copy(buf, off + ICMP_HEADER_LEN);
  return emitIcmpHeader(buf, off, r.type, r.code, r.rest, r.data.length);
}
