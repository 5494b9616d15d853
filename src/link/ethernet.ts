// Ethernet II frames (IEEE 802.3 with an EtherType): 6-byte destination and source MAC,
// a 2-byte EtherType, then the payload. The FCS is not seen on a TAP.

import { copyBytes, EMPTY_BUFFER } from '../util/bytes.ts';

export const ETH_HEADER_LEN = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;

export type Mac = Buffer; // always 6 bytes

export const BROADCAST_MAC: Mac = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export function parseMac(text: string): Mac | null {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(text);
  if (!m) return null;
  return Buffer.from(m.slice(1).map((h) => parseInt(h, 16)));
}

export function formatMac(mac: Uint8Array, off = 0): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push(mac[off + i]!.toString(16).padStart(2, '0'));
  return parts.join(':');
}

export function macEquals(a: Uint8Array, aOff: number, b: Uint8Array, bOff = 0): boolean {
  for (let i = 0; i < 6; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

export function isBroadcastMac(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 6; i++) if (buf[off + i] !== 0xff) return false;
  return true;
}

/** Group bit of the first octet: broadcast and multicast frames. */
export function isGroupMac(buf: Uint8Array, off: number): boolean {
  return (buf[off]! & 1) === 1;
}

/** The 48-bit MAC at buf[off] as a number (exact in a double): a map key without allocation. */
export function macKey(buf: Uint8Array, off: number): number {
  return buf[off]! * 2 ** 40 + buf[off + 1]! * 2 ** 32 + ((buf[off + 2]! << 24) >>> 0) + (buf[off + 3]! << 16) + (buf[off + 4]! << 8) + buf[off + 5]!;
}

export type EthernetDrop = 'eth-short';

export interface EthernetRepr {
  dst: Mac;
  src: Mac;
  etherType: number;
}

/** A reusable view over an Ethernet frame held in a larger buffer. */
export class EthernetFrame {
  buf: Buffer = EMPTY_BUFFER;
  off = 0;
  len = 0;

  /** Points the view at a frame; returns a drop reason, or null when the frame is usable. */
  parse(buf: Buffer, off: number, len: number): EthernetDrop | null {
    if (len < ETH_HEADER_LEN) return 'eth-short';
    this.buf = buf;
    this.off = off;
    this.len = len;
    return null;
  }

  get etherType(): number {
    return this.buf.readUInt16BE(this.off + 12);
  }
  get dstOffset(): number {
    return this.off;
  }
  get srcOffset(): number {
    return this.off + 6;
  }
  get payloadOffset(): number {
    return this.off + ETH_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.len - ETH_HEADER_LEN;
  }

  toRepr(): EthernetRepr {
    return {
      dst: Buffer.from(this.buf.subarray(this.off, this.off + 6)),
      src: Buffer.from(this.buf.subarray(this.off + 6, this.off + 12)),
      etherType: this.etherType,
    };
  }
}

/** Writes an Ethernet header at off; returns its length. */
export function emitEthernet(buf: Buffer, off: number, dst: Uint8Array, src: Uint8Array, etherType: number): number {
  copyBytes(dst, 0, buf, off, 6);
  copyBytes(src, 0, buf, off + 6, 6);
  buf.writeUInt16BE(etherType, off + 12);
  return ETH_HEADER_LEN;
}
