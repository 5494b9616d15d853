// IPv4 fragmentation done by hand (RFC 791 3.2), with the shapes a reassembler must survive:
// overlapping fragments (each starting `overlap` bytes before the previous one ended), fragments
// sent in reverse, and, from an ipv4 layer whose fragOffset is already high, a datagram that
// would reassemble past 65535 bytes (the "ping of death").

import { ETH_HEADER_LEN, ETHERTYPE_IPV4 } from '../link/ethernet.ts';
import { internetChecksum } from '../util/checksum.ts';
import { type BuildDefaults, Packet } from './layers.ts';

export interface FragmentOptions {
  /** Bytes of the datagram's payload per fragment: a multiple of 8 (RFC 791: offsets count in 8-byte units). */
  size: number;
  /** Bytes each fragment repeats of the one before (a multiple of 8, less than size); default 0. */
  overlap?: number;
  /** Send the last fragment first (Linux itself sends in order; some stacks do not). */
  reverse?: boolean;
  /**
   * Changes the bytes of fragment `index` (its share of the payload), e.g. to make an
   * overlapping part differ from what the earlier fragment said.
   */
  rewrite?: (data: Buffer, index: number) => Buffer;
}

/**
 * Cuts an Ethernet frame holding an IPv4 datagram (built from `packet`) into fragment frames.
 * Every fragment repeats the IP header (options included), with its own length, offset, MF
 * and checksum; the last keeps the datagram's own MF.
 */
export function fragments(packet: Packet | Uint8Array, options: FragmentOptions, defaults: BuildDefaults = {}): Buffer[] {
  const frame = packet instanceof Packet ? packet.build(defaults) : Buffer.from(packet);
  const overlap = options.overlap ?? 0;
  if (options.size <= 0 || options.size % 8 !== 0) throw new Error('fragments: size must be a positive multiple of 8');
  if (overlap < 0 || overlap % 8 !== 0 || overlap >= options.size) throw new Error('fragments: overlap must be a multiple of 8 below size');
  if (frame.length < ETH_HEADER_LEN + 20 || frame.readUInt16BE(12) !== ETHERTYPE_IPV4) throw new Error('fragments: not an IPv4 frame');
  const ipOff = ETH_HEADER_LEN;
  const headerLength = (frame[ipOff]! & 0x0f) * 4;
  const totalLength = Math.min(frame.readUInt16BE(ipOff + 2), frame.length - ipOff);
  const payload = frame.subarray(ipOff + headerLength, ipOff + totalLength);
  const flagsAndOffset = frame.readUInt16BE(ipOff + 6);
  const baseOffset = (flagsAndOffset & 0x1fff) * 8;
  const keptFlags = flagsAndOffset & 0xc000; // reserved and DF
  const lastMf = flagsAndOffset & 0x2000;
  const out: Buffer[] = [];
  for (let start = 0, index = 0; start < payload.length || index === 0; start += options.size - overlap, index++) {
    const end = Math.min(start + options.size, payload.length);
    let data: Buffer = Buffer.from(payload.subarray(start, end));
    if (options.rewrite) data = options.rewrite(data, index);
    const last = end === payload.length;
    const f = Buffer.alloc(ipOff + headerLength + data.length);
    frame.copy(f, 0, 0, ipOff + headerLength);
    data.copy(f, ipOff + headerLength);
    f.writeUInt16BE(headerLength + data.length, ipOff + 2);
    f.writeUInt16BE(keptFlags | (last ? lastMf : 0x2000) | (((baseOffset + start) >> 3) & 0x1fff), ipOff + 6);
    f.writeUInt16BE(0, ipOff + 10);
    f.writeUInt16BE(internetChecksum(f, ipOff, headerLength), ipOff + 10);
    out.push(f);
    if (last) break;
  }
  return options.reverse ? out.reverse() : out;
}
