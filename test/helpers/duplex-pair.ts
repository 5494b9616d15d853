// Two stream.Duplex ends joined back to back, with real backpressure: a write on one end is
// acknowledged only once the other end's reader has taken it. Lets a service that speaks
// through Node's stream API be driven without any network.

import { Duplex } from 'node:stream';

export function duplexPair(highWaterMark = 16 * 1024): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  // Per end: the write callback held back because the peer's read buffer was full.
  const waiting: (null | (() => void))[] = [null, null];
  const make = (self: number): Duplex => {
    const peer = 1 - self;
    return new Duplex({
      highWaterMark,
      allowHalfOpen: true,
      write(chunk: Buffer, _encoding, callback) {
        if (ends[peer]!.push(chunk)) callback();
        else waiting[self] = callback;
      },
      final(callback) {
        ends[peer]!.push(null);
        callback();
      },
      read() {
        const resume = waiting[peer];
        waiting[peer] = null;
        resume?.();
      },
      destroy(err, callback) {
        // The other end sees the connection go away, like a reset.
        const other = ends[peer]!;
        if (!other.destroyed) other.destroy();
        callback(err);
      },
    });
  };
  ends.push(make(0), make(1));
  return [ends[0]!, ends[1]!];
}
