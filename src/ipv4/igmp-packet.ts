// IGMP messages (RFC 2236 version 2, RFC 3376 version 3; version 1 queries and reports of
// RFC 1112 as far as a v2/v3 host must understand them): a reusable view for what arrives,
// writers for what a host sends.

import { internetChecksum } from '../util/checksum.ts';
import { EMPTY_BUFFER } from '../util/bytes.ts';

export const PROTO_IGMP = 2;

export const IGMP_QUERY = 0x11;
export const IGMP_V1_REPORT = 0x12;
export const IGMP_V2_REPORT = 0x16;
export const IGMP_V2_LEAVE = 0x17;
export const IGMP_V3_REPORT = 0x22;

/** RFC 3376 4.2.12 group record types. */
export const MODE_IS_INCLUDE = 1;
export const MODE_IS_EXCLUDE = 2;
export const CHANGE_TO_INCLUDE = 3;
export const CHANGE_TO_EXCLUDE = 4;
export const ALLOW_NEW_SOURCES = 5;
export const BLOCK_OLD_SOURCES = 6;

/** 224.0.0.1: all systems; 224.0.0.2: all routers (v2 leaves); 224.0.0.22: v3 reports. */
export const ALL_HOSTS = 0xe0000001;
export const ALL_ROUTERS = 0xe0000002;
export const IGMPV3_ROUTERS = 0xe0000016;

/** The IP Router Alert option (RFC 2113) every IGMP message carries (RFC 2236 2, RFC 3376 4). */
export const ROUTER_ALERT = Buffer.from([0x94, 0x04, 0x00, 0x00]);

export type IgmpDrop = 'igmp-short' | 'igmp-bad-checksum';

/** A view over a received IGMP message. */
export class IgmpPacket {
  buf: Buffer = EMPTY_BUFFER;
  off = 0;
  len = 0;

  parse(buf: Buffer, off: number, len: number): IgmpDrop | null {
    if (len < 8) return 'igmp-short';
    if (internetChecksum(buf, off, len) !== 0) return 'igmp-bad-checksum';
    this.buf = buf;
    this.off = off;
    this.len = len;
    return null;
  }

  get type(): number {
    return this.buf[this.off]!;
  }
  get group(): number {
    return this.buf.readUInt32BE(this.off + 4);
  }
  /**
   * A query's version (RFC 3376 7.1): 1 (8 bytes, max response 0), 2 (8 bytes), 3 (12 bytes
   * or more); 0 for any other length, which the RFC says to ignore.
   */
  get queryVersion(): 0 | 1 | 2 | 3 {
    if (this.len >= 12) return 3;
    if (this.len !== 8) return 0;
    return this.buf[this.off + 1] === 0 ? 1 : 2;
  }
  /** The query's maximum response time in ms (v1: 10 s, RFC 2236 4; v3 code: RFC 3376 4.1.1). */
  get maxResponseMs(): number {
    const code = this.buf[this.off + 1]!;
    const v = this.queryVersion;
    if (v <= 1) return 10_000;
    if (v === 2 || code < 128) return code * 100;
    return (((code & 0x0f) | 0x10) << (((code >> 4) & 7) + 3)) * 100;
  }
  /** v3 query: its number of sources (bounded by the message's length). */
  get sourceCount(): number {
    if (this.len < 12) return 0;
    return Math.min(this.buf.readUInt16BE(this.off + 10), (this.len - 12) >> 2);
  }
  source(i: number): number {
    return this.buf.readUInt32BE(this.off + 12 + 4 * i);
  }
}

/** Writes a v1/v2 message (report or leave) at off; returns its length, 8. */
export function emitIgmpV2(buf: Buffer, off: number, type: number, group: number): number {
  buf[off] = type;
  buf[off + 1] = 0;
  buf.writeUInt16BE(0, off + 2);
  buf.writeUInt32BE(group >>> 0, off + 4);
  buf.writeUInt16BE(internetChecksum(buf, off, 8), off + 2);
  return 8;
}

export interface GroupRecord {
  type: number;
  group: number;
  sources: readonly number[];
}

/** Bytes a v3 report record takes. */
export function recordLength(r: GroupRecord): number {
  return 8 + 4 * r.sources.length;
}

/** Writes a v3 Membership Report with these records at off (RFC 3376 4.2); returns its length. */
export function emitIgmpV3Report(buf: Buffer, off: number, records: readonly GroupRecord[]): number {
  buf[off] = IGMP_V3_REPORT;
  buf[off + 1] = 0;
  buf.writeUInt32BE(0, off + 2);
  buf.writeUInt16BE(records.length, off + 6);
  let at = off + 8;
  for (const r of records) {
    buf[at] = r.type;
    buf[at + 1] = 0;
    buf.writeUInt16BE(r.sources.length, at + 2);
    buf.writeUInt32BE(r.group >>> 0, at + 4);
    at += 8;
    for (const s of r.sources) {
      buf.writeUInt32BE(s >>> 0, at);
      at += 4;
    }
  }
  buf.writeUInt16BE(internetChecksum(buf, off, at - off), off + 2);
  return at - off;
}

/** The Ethernet MAC of an IPv4 group (RFC 1112 6.4): 01:00:5e and the group's low 23 bits. */
export function groupMacKey(group: number): number {
  return group & 0x7fffff;
}
