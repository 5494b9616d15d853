// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012): a keyed
// hash for short inputs, the one Linux uses for its ISNs and SYN cookies. RFC 6528 3 asks
// for a cryptographic hash with a secret key; this one costs a fraction of a microsecond in
// JavaScript where a crypto.createHash() object per SYN costs several.
//
// JavaScript has no 64-bit integers that are cheap, so every 64-bit word is a pair of 32-bit
// halves in a Uint32Array: state[2i] is the low half of v_i and state[2i + 1] the high half.

const state = new Uint32Array(8);

/** v_a += v_b (mod 2^64) on the halves in `state`. */
function add(a: number, b: number): void {
  const lo = (state[a]! + state[b]!) >>> 0;
  state[a + 1] = (state[a + 1]! + state[b + 1]! + (lo < state[a]! ? 1 : 0)) >>> 0;
  state[a] = lo;
}

/** v_a = v_a rotated left by n bits, 0 < n < 32. */
function rotate(a: number, n: number): void {
  const lo = state[a]!;
  const hi = state[a + 1]!;
  state[a] = ((lo << n) | (hi >>> (32 - n))) >>> 0;
  state[a + 1] = ((hi << n) | (lo >>> (32 - n))) >>> 0;
}

/** v_a = v_a rotated by 32 bits: its halves swap. */
function swapHalves(a: number): void {
  const lo = state[a]!;
  state[a] = state[a + 1]!;
  state[a + 1] = lo;
}

function xor(a: number, b: number): void {
  state[a] = (state[a]! ^ state[b]!) >>> 0;
  state[a + 1] = (state[a + 1]! ^ state[b + 1]!) >>> 0;
}

const V0 = 0;
const V1 = 2;
const V2 = 4;
const V3 = 6;

/** One SipRound (the paper's figure 2). */
function sipRound(): void {
  add(V0, V1);
  rotate(V1, 13);
  xor(V1, V0);
  swapHalves(V0);
  add(V2, V3);
  rotate(V3, 16);
  xor(V3, V2);
  add(V0, V3);
  rotate(V3, 21);
  xor(V3, V0);
  add(V2, V1);
  rotate(V1, 17);
  xor(V1, V2);
  swapHalves(V2);
}

/** Absorbs the 64-bit word (lo, hi): v3 ^= m, two rounds (c = 2), v0 ^= m. */
function compress(lo: number, hi: number): void {
  state[V3] = (state[V3]! ^ lo) >>> 0;
  state[V3 + 1] = (state[V3 + 1]! ^ hi) >>> 0;
  sipRound();
  sipRound();
  state[V0] = (state[V0]! ^ lo) >>> 0;
  state[V0 + 1] = (state[V0 + 1]! ^ hi) >>> 0;
}

function readLe32(data: Uint8Array, at: number): number {
  return (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
}

/**
 * SipHash-2-4 of data[off, off+len) under a 128-bit key given as four little-endian 32-bit
 * words (k0 low, k0 high, k1 low, k1 high). The 64-bit result goes to out (low half first);
 * the low half is also returned.
 */
export function siphash24(key: Uint32Array, data: Uint8Array, off: number, len: number, out?: Uint32Array): number {
  // Initialisation: the key XOR "somepseudorandomlygeneratedbytes".
  state[V0] = (key[0]! ^ 0x70736575) >>> 0;
  state[V0 + 1] = (key[1]! ^ 0x736f6d65) >>> 0;
  state[V1] = (key[2]! ^ 0x6e646f6d) >>> 0;
  state[V1 + 1] = (key[3]! ^ 0x646f7261) >>> 0;
  state[V2] = (key[0]! ^ 0x6e657261) >>> 0;
  state[V2 + 1] = (key[1]! ^ 0x6c796765) >>> 0;
  state[V3] = (key[2]! ^ 0x79746573) >>> 0;
  state[V3 + 1] = (key[3]! ^ 0x74656462) >>> 0;
  const whole = len - (len % 8);
  for (let i = 0; i < whole; i += 8) compress(readLe32(data, off + i), readLe32(data, off + i + 4));
  // The last word: the remaining 0..7 bytes, little-endian, and the length's low byte on top.
  let lo = 0;
  let hi = (len & 0xff) << 24;
  for (let i = whole; i < len; i++) {
    const byte = data[off + i]!;
    const shift = (i - whole) * 8;
    if (shift < 32) lo |= byte << shift;
    else hi |= byte << (shift - 32);
  }
  compress(lo >>> 0, hi >>> 0);
  // Finalisation: v2 ^= 0xff, four rounds (d = 4), v0 ^ v1 ^ v2 ^ v3.
  state[V2] = (state[V2]! ^ 0xff) >>> 0;
  sipRound();
  sipRound();
  sipRound();
  sipRound();
  const resultLo = (state[V0]! ^ state[V1]! ^ state[V2]! ^ state[V3]!) >>> 0;
  if (out) {
    out[0] = resultLo;
    out[1] = (state[V0 + 1]! ^ state[V1 + 1]! ^ state[V2 + 1]! ^ state[V3 + 1]!) >>> 0;
  }
  return resultLo;
}
