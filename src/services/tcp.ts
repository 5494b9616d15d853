// The classic small TCP services on the stack: echo (RFC 862, port 7), discard (RFC 863,
// port 9) and character generator (RFC 864, port 19). They use only the Node-net-like API
// (stack.createServer, stream.Duplex sockets), so they are also examples of that API.

import type { Duplex } from 'node:stream';
import { registerService } from './index.ts';

export const ECHO_PORT = 7;
export const DISCARD_PORT = 9;
export const CHARGEN_PORT = 19;

function endSocket(this: Duplex): void {
  this.end();
}

/** Echo: what came in goes back out; reading pauses while our send side is full. */
function echoData(this: Duplex, chunk: Buffer): void {
  if (!this.write(chunk)) this.pause();
}

function resumeSocket(this: Duplex): void {
  this.resume();
}

/**
 * RFC 862: everything received is sent back; our FIN follows the peer's, after the data.
 * What socket.pipe(socket) does, with listeners shared by all connections instead of the
 * nine closures pipe() makes for each.
 */
export function echoConnection(socket: Duplex): void {
  socket.on('data', echoData);
  socket.on('drain', resumeSocket);
  socket.on('end', endSocket);
}

/** Discard: each chunk is dropped as it arrives (one listener shared by all connections). */
function discardData(): void {}

/** RFC 863: everything received is thrown away; our FIN follows the peer's. */
export function discardConnection(socket: Duplex): void {
  socket.on('end', endSocket);
  // A 'data' listener takes each chunk as it arrives (resume() alone would buffer it until
  // the next tick), so the window we advertise stays fully open.
  socket.on('data', discardData);
}

/** Characters RFC 864 cycles through: the 95 printable ASCII characters, space to '~'. */
const CHARGEN_FIRST = 0x20;
const CHARGEN_CHARACTERS = 95;
const CHARGEN_LINE_CHARS = 72;

/**
 * The RFC 864 pattern: line k holds 72 characters starting at printable character k mod 95,
 * then CR LF. The pattern repeats every 95 lines; the block holds several whole periods so
 * that each write continues the pattern exactly where the previous one stopped.
 */
export function chargenPattern(periods: number): Buffer {
  const lineLength = CHARGEN_LINE_CHARS + 2;
  const block = Buffer.allocUnsafe(periods * CHARGEN_CHARACTERS * lineLength);
  for (let line = 0; line < periods * CHARGEN_CHARACTERS; line++) {
    const at = line * lineLength;
    for (let i = 0; i < CHARGEN_LINE_CHARS; i++) {
      block[at + i] = CHARGEN_FIRST + ((line + i) % CHARGEN_CHARACTERS);
    }
    block[at + CHARGEN_LINE_CHARS] = 0x0d;
    block[at + CHARGEN_LINE_CHARS + 1] = 0x0a;
  }
  return block;
}

/** 8 periods: 56,240 bytes per write. Shared by every connection and never modified. */
const CHARGEN_BLOCK = chargenPattern(8);

/**
 * RFC 864: send the pattern until the peer closes; what it sends is thrown away. Writes
 * stop as soon as write() reports a full send buffer and resume on 'drain', so a slow
 * reader holds at most one send buffer of pattern in memory. With `limitBytes` (the CLI's
 * --chargen-bytes, for benchmarks) exactly that much of the pattern is sent, then our FIN.
 */
export function chargenConnection(socket: Duplex, limitBytes = Infinity): void {
  let stopped = false;
  let sent = 0;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    socket.end();
  };
  const pump = (): void => {
    while (!stopped && !socket.destroyed) {
      if (sent >= limitBytes) return stop();
      // Every write starts at a block boundary, so a shorter last write continues the pattern.
      const length = Math.min(CHARGEN_BLOCK.length, limitBytes - sent);
      sent += length;
      if (!socket.write(length === CHARGEN_BLOCK.length ? CHARGEN_BLOCK : CHARGEN_BLOCK.subarray(0, length))) {
        socket.once('drain', pump);
        return;
      }
    }
  };
  // The peer's FIN means it is done listening: finish with ours.
  socket.on('end', stop);
  socket.on('close', () => (stopped = true));
  socket.resume();
  pump();
}

// Each takes its port through the stack's ServiceSet (src/services/index.ts), which destroys
// the connections still open when the services stop.
registerService('echo', (_stack, _options, services) => services.tcp(ECHO_PORT, echoConnection));
registerService('discard', (_stack, _options, services) => services.tcp(DISCARD_PORT, discardConnection));
registerService('chargen', (_stack, options, services) => {
  const limit = options.chargenBytes;
  services.tcp(CHARGEN_PORT, limit === undefined ? chargenConnection : (socket) => chargenConnection(socket, limit));
});
