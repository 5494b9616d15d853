// The Internet checksum (RFC 1071): one's complement of the one's complement sum of
// 16-bit big-endian words. Used by IPv4, ICMP, UDP and TCP.

/** Adds bytes [off, off+len) to a running 32-bit sum (not yet folded). */
export function sumBytes(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + len;
  let i = off;
  // Four bytes a step keeps the loop short; carries are folded often enough not to overflow.
  for (; i + 3 < end; i += 4) {
    sum += ((buf[i]! << 8) | buf[i + 1]!) + ((buf[i + 2]! << 8) | buf[i + 3]!);
    if (sum > 0x3fffffff) sum = (sum & 0xffff) + (sum >>> 16);
  }
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8; // an odd byte is padded with zero (RFC 1071 4.1)
  return sum;
}

/** Folds carries and complements: the value to put in a checksum field. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Folds carries without complementing: a partial checksum (the pseudo-header sum for offloads). */
export function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export function internetChecksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return finishChecksum(sumBytes(buf, off, len, initial));
}

/** Sum of the IPv4 pseudo-header used by UDP and TCP (RFC 768, RFC 9293 3.1). */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/**
 * Incremental update when one 16-bit word changes from oldWord to newWord
 * (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
 */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  let sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Incremental update for a 32-bit field (an address or a sequence number). */
export function updateChecksum32(checksum: number, oldValue: number, newValue: number): number {
  const c = updateChecksum16(checksum, oldValue >>> 16, newValue >>> 16);
  return updateChecksum16(c, oldValue & 0xffff, newValue & 0xffff);
}
