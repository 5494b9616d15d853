// The virtio-net header (struct virtio_net_hdr, Virtio 1.2 5.1.6; include/uapi/linux/
// virtio_net.h) that a TAP opened with IFF_VNET_HDR puts before every frame in both
// directions. It carries checksum and segmentation offload metadata: the kernel hands us TCP
// super-frames of up to 64 KB whose checksum is only partial, and takes super-frames from us
// that it cuts into MSS-sized segments (or delivers whole, when the destination is local).
//
// Layout (10 bytes; little-endian on the hosts we run on, the legacy "native endian" rule):
//   u8 flags, u8 gso_type, u16 hdr_len, u16 gso_size, u16 csum_start, u16 csum_offset

import { finishChecksum, sumBytes } from '../util/checksum.ts';

export const VNET_HDR_LEN = 10;

/** flags: the checksum at csum_start + csum_offset holds only the pseudo-header sum. */
export const VNET_F_NEEDS_CSUM = 1;
/** flags: the kernel already verified the transport checksum. */
export const VNET_F_DATA_VALID = 2;

export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_UDP_L4 = 5;
export const VNET_GSO_ECN = 0x80;

/** TUNSETOFFLOAD flags (include/uapi/linux/if_tun.h). */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;

/**
 * What the link learned about the frame being received, from its virtio-net header. The
 * object is reused for every frame: it is valid only during the receiver call. Offsets are
 * absolute offsets into the receive buffer.
 */
export interface RxFrameInfo {
  /** The transport checksum holds only the pseudo-header sum (NEEDS_CSUM): not to verify. */
  checksumPartial: boolean;
  /** The kernel verified the transport checksum (DATA_VALID). */
  checksumValid: boolean;
  /** With checksumPartial: where the checksummed bytes start, and the checksum field. */
  checksumStart: number;
  checksumField: number;
  /** A TCP super-frame made of segments of this size; 0 for an ordinary frame. */
  segmentSize: number;
}

export function emptyRxFrameInfo(): RxFrameInfo {
  return { checksumPartial: false, checksumValid: false, checksumStart: 0, checksumField: 0, segmentSize: 0 };
}

/**
 * A transmit offload request for the next frame the link sends, filled in by IPv4 just
 * before the send and cleared right after it. Offsets are from the start of the frame.
 */
export interface TxOffload {
  /** 0: no checksum offload. Else the start of the bytes to checksum (the transport header). */
  checksumStart: number;
  /** The checksum field's offset from checksumStart (16 for TCP, 6 for UDP). */
  checksumOffset: number;
  /** VNET_GSO_* type; VNET_GSO_NONE for no segmentation. */
  gsoType: number;
  /** Segment payload size (the MSS) for segmentation. */
  segmentSize: number;
  /** Length of all headers (Ethernet + IPv4 + transport): a hint for the kernel. */
  headerLength: number;
}

export function emptyTxOffload(): TxOffload {
  return { checksumStart: 0, checksumOffset: 0, gsoType: VNET_GSO_NONE, segmentSize: 0, headerLength: 0 };
}

export function clearTxOffload(t: TxOffload): void {
  t.checksumStart = 0;
  t.checksumOffset = 0;
  t.gsoType = VNET_GSO_NONE;
  t.segmentSize = 0;
  t.headerLength = 0;
}

export type VnetDrop = 'vnet-short' | 'vnet-bad-checksum-offsets';

/**
 * Reads the header at buf[off] for a frame of frameLen bytes that follows it, into `info`
 * (offsets made absolute). Returns a drop reason when the header cannot be right.
 */
export function parseVnetHeader(buf: Buffer, off: number, frameLen: number, info: RxFrameInfo): VnetDrop | null {
  if (frameLen < 0 || off + VNET_HDR_LEN > buf.length) return 'vnet-short';
  const flags = buf[off]!;
  const frameOff = off + VNET_HDR_LEN;
  info.checksumPartial = (flags & VNET_F_NEEDS_CSUM) !== 0;
  info.checksumValid = (flags & VNET_F_DATA_VALID) !== 0;
  const gsoType = buf[off + 1]! & ~VNET_GSO_ECN;
  info.segmentSize = gsoType === VNET_GSO_NONE ? 0 : buf.readUInt16LE(off + 4);
  if (info.checksumPartial) {
    const start = buf.readUInt16LE(off + 6);
    const field = start + buf.readUInt16LE(off + 8);
    if (field + 2 > frameLen) return 'vnet-bad-checksum-offsets';
    info.checksumStart = frameOff + start;
    info.checksumField = frameOff + field;
  } else {
    info.checksumStart = 0;
    info.checksumField = 0;
  }
  return null;
}

/** Writes the header for `t` at buf[off] (all zero when t asks for nothing). */
export function emitVnetHeader(buf: Buffer, off: number, t: TxOffload): void {
  const csum = t.checksumStart !== 0;
  buf[off] = csum ? VNET_F_NEEDS_CSUM : 0;
  buf[off + 1] = t.gsoType;
  buf.writeUInt16LE(t.gsoType !== VNET_GSO_NONE ? t.headerLength : 0, off + 2);
  buf.writeUInt16LE(t.gsoType !== VNET_GSO_NONE ? t.segmentSize : 0, off + 4);
  buf.writeUInt16LE(csum ? t.checksumStart : 0, off + 6);
  buf.writeUInt16LE(csum ? t.checksumOffset : 0, off + 8);
}

/**
 * Completes a partial checksum in place, as the device would: the field holds the
 * pseudo-header sum; the result is the complement of the sum from `start` to `end`
 * (RFC 1071). A UDP checksum that comes out 0 is sent as 0xffff (RFC 768).
 */
export function completePartialChecksum(buf: Buffer, start: number, field: number, end: number, udp = false): void {
  let c = finishChecksum(sumBytes(buf, start, end - start));
  if (c === 0 && udp) c = 0xffff;
  buf.writeUInt16BE(c, field);
}
