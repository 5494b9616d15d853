// ARP for IPv4 over Ethernet (RFC 826): a fixed 28-byte packet.
import { EMPTY_BUFFER } from '../util/bytes.ts';

export const ARP_LEN = 28;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
const HTYPE_ETHERNET = 1;
const PTYPE_IPV4 = 0x0800;

export type ArpDrop = 'arp-short' | 'arp-unsupported';

export interface ArpRepr {
  op: number;
  senderMac: Buffer;
  senderIp: number;
  targetMac: Buffer;
  targetIp: number;
}

export class ArpPacket {
  buf: Buffer = EMPTY_BUFFER;
  off = 0;

  parse(buf: Buffer, off: number, len: number): ArpDrop | null {
    if (len < ARP_LEN) return 'arp-short';
    if (
      buf.readUInt16BE(off) !== HTYPE_ETHERNET ||
      buf.readUInt16BE(off + 2) !== PTYPE_IPV4 ||
      buf[off + 4] !== 6 ||
      buf[off + 5] !== 4
    )
      return 'arp-unsupported';
    this.buf = buf;
    this.off = off;
    return null;
  }

  get op(): number {
    return this.buf.readUInt16BE(this.off + 6);
  }
  get senderMacOffset(): number {
    return this.off + 8;
  }
  get senderIp(): number {
    return this.buf.readUInt32BE(this.off + 14);
  }
  get targetMacOffset(): number {
    return this.off + 18;
  }
  get targetIp(): number {
    return this.buf.readUInt32BE(this.off + 24);
  }

  toRepr(): ArpRepr {
    return {
      op: this.op,
      senderMac: Buffer.from(this.buf.subarray(this.off + 8, this.off + 14)),
      senderIp: this.senderIp,
      targetMac: Buffer.from(this.buf.subarray(this.off + 18, this.off + 24)),
      targetIp: this.targetIp,
    };
  }
}

/** Writes an ARP packet at off; returns its length. */
export function emitArp(buf: Buffer, off: number, r: ArpRepr): number {
  buf.writeUInt16BE(HTYPE_ETHERNET, off);
  buf.writeUInt16BE(PTYPE_IPV4, off + 2);
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  buf.writeUInt16BE(r.op, off + 6);
  buf.set(r.senderMac.subarray(0, 6), off + 8);
  buf.writeUInt32BE(r.senderIp >>> 0, off + 14);
  buf.set(r.targetMac.subarray(0, 6), off + 18);
  buf.writeUInt32BE(r.targetIp >>> 0, off + 24);
  return ARP_LEN;
}
