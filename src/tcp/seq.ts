// Sequence number arithmetic modulo 2^32 (RFC 9293 3.4). Sequence numbers wrap, so "a is
// before b" means that the signed 32-bit distance from b to a is negative; this holds while
// the two are less than 2^31 apart, which window sizes guarantee.

/** a < b in sequence space. */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** a + n, wrapped to an unsigned 32-bit sequence number. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** The distance from b forward to a, as an unsigned number in [0, 2^32). */
export function seqSub(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** start <= x < start + len, in sequence space (len may be 0: then always false). */
export function seqInWindow(x: number, start: number, len: number): boolean {
  return (x - start) >>> 0 < len;
}

/** lo <= x <= hi, in sequence space (lo not after hi). */
export function seqBetween(lo: number, x: number, hi: number): boolean {
  return (x - lo) >>> 0 <= (hi - lo) >>> 0;
}

export function seqMax(a: number, b: number): number {
  return seqGt(a, b) ? a : b;
}

export function seqMin(a: number, b: number): number {
  return seqLt(a, b) ? a : b;
}
