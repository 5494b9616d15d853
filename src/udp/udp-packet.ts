// UDP header (RFC 768): source port, destination port, length (header and data), checksum
// over a pseudo-header of the IPv4 addresses, the protocol and the UDP length. A view with a
// validated parse, and an emit into a caller's buffer.

import { finishChecksum, pseudoHeaderSum, sumBytes } from '../util/checksum.ts';
import { PROTO_UDP } from '../ipv4/ipv4-packet.ts';
import { EMPTY_BUFFER } from '../util/bytes.ts';

export const UDP_HEADER_LEN = 8;
/** Offset of the checksum field in the header. */
export const UDP_CHECKSUM_FIELD = 6;
/** The largest UDP payload IPv4 can carry: 65535 - 20 (IPv4 header) - 8 (UDP header). */
export const UDP_MAX_PAYLOAD = 65507;

export type UdpDrop = 'udp-short' | 'udp-bad-length' | 'udp-bad-checksum';

export class UdpPacket {
  buf: Buffer = EMPTY_BUFFER;
  off = 0;
  /** The length field: header plus data. */
  length = 0;

  /**
   * Validates the datagram at off with `avail` bytes present (the IPv4 payload). The length
   * field may be less than avail (RFC 768 leaves trailing bytes out; Linux trims them), never
   * more. A zero checksum means the sender computed none (RFC 768); anything else must verify
   * against the pseudo-header (RFC 1122 4.1.3.4).
   */
  parse(buf: Buffer, off: number, avail: number, src: number, dst: number, verifyChecksum = true): UdpDrop | null {
    if (avail < UDP_HEADER_LEN) return 'udp-short';
    const length = buf.readUInt16BE(off + 4);
    if (length < UDP_HEADER_LEN || length > avail) return 'udp-bad-length';
    // verifyChecksum false: the kernel verified it or it is a partial one (offloads).
    if (verifyChecksum && buf.readUInt16BE(off + 6) !== 0) {
      const sum = sumBytes(buf, off, length, pseudoHeaderSum(src, dst, PROTO_UDP, length));
      if (finishChecksum(sum) !== 0) return 'udp-bad-checksum';
    }
    this.buf = buf;
    this.off = off;
    this.length = length;
    return null;
  }

  get srcPort(): number {
    return this.buf.readUInt16BE(this.off);
  }
  get dstPort(): number {
    return this.buf.readUInt16BE(this.off + 2);
  }
  get checksum(): number {
    return this.buf.readUInt16BE(this.off + 6);
  }
  get dataOffset(): number {
    return this.off + UDP_HEADER_LEN;
  }
  get dataLength(): number {
    return this.length - UDP_HEADER_LEN;
  }
}

/**
 * Writes a UDP header at off over `dataLength` bytes of data already placed right after it,
 * and fills in the checksum: a computed 0 goes out as 0xffff, since 0 would mean "no
 * checksum" (RFC 768). With withChecksum false the field is left 0 for IPv4 to complete
 * (SendOptions.checksumField), which it always does. Returns the datagram length.
 */
export function emitUdpHeader(
  buf: Buffer,
  off: number,
  src: number,
  dst: number,
  srcPort: number,
  dstPort: number,
  dataLength: number,
  withChecksum = true,
): number {
  const length = UDP_HEADER_LEN + dataLength;
  buf.writeUInt16BE(srcPort, off);
  buf.writeUInt16BE(dstPort, off + 2);
  buf.writeUInt16BE(length, off + 4);
  buf.writeUInt16BE(0, off + 6);
  if (!withChecksum) return length;
  const checksum = finishChecksum(sumBytes(buf, off, length, pseudoHeaderSum(src, dst, PROTO_UDP, length)));
  buf.writeUInt16BE(checksum === 0 ? 0xffff : checksum, off + 6);
  return length;
}
