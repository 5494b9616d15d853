// SipHash-2-4 against the reference vectors of the paper's test.c (key 00..0f, message
// 00..n-1), and the ISN generator built on it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { IsnGenerator } from '../../src/tcp/isn.ts';
import { siphash24 } from '../../src/tcp/siphash.ts';

/** vectors_sip64[n] of the reference implementation, n = 0..16. */
const VECTORS = [
  '726fdb47dd0e0e31', '74f839c593dc67fd', '0d6c8009d9a94f5a', '85676696d7fb7e2d', 'cf2794e0277187b7', '18765564cd99a68d',
  'cbc9466e58fee3ce', 'ab0200f58b01d137', '93f5f5799a932462', '9e0082df0ba9e4b0', '7a5dbbc594ddb9f3', 'f4b32f46226bada7',
  '751e8fbc860ee5fb', '14ea5627c0843d90', 'f723ca908e7af2ee', 'a129ca6149be45e5', '3f2acc7f57c29bdb',
];

test('SipHash-2-4 matches the reference vectors for messages of 0 to 16 bytes', () => {
  const keyBytes = Buffer.from(Array.from({ length: 16 }, (_, i) => i));
  const key = new Uint32Array([keyBytes.readUInt32LE(0), keyBytes.readUInt32LE(4), keyBytes.readUInt32LE(8), keyBytes.readUInt32LE(12)]);
  // The message sits at an offset inside a larger buffer, as the ISN generator's input does.
  const data = Buffer.alloc(3 + 16, 0xee);
  for (let i = 0; i < 16; i++) data[3 + i] = i;
  const out = new Uint32Array(2);
  VECTORS.forEach((expected, n) => {
    const lo = siphash24(key, data, 3, n, out);
    const got = out[1]!.toString(16).padStart(8, '0') + out[0]!.toString(16).padStart(8, '0');
    assert.is(got, expected, `message of ${n} bytes`);
    assert.is(lo, out[0]);
  });
});

test('ISNs: keyed by the secret, different per 4-tuple, and rising with the 4 µs clock (RFC 6528 3)', () => {
  const clock = new VirtualClock(1000);
  const a = new IsnGenerator(clock, 1);
  const b = new IsnGenerator(clock, 2);
  const tuple = [0x0a000002, 80, 0x0a000001, 40000] as const;
  assert.is.not(a.next(...tuple), b.next(...tuple));
  assert.is.not(a.next(...tuple), a.next(0x0a000002, 80, 0x0a000001, 40001));
  assert.is(a.next(...tuple), new IsnGenerator(clock, 1).next(...tuple));
  const before = a.next(...tuple);
  clock.advance(1);
  assert.is((a.next(...tuple) - before) >>> 0, 250);
});

test.run();
