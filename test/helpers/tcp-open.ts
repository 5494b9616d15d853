// Opening connections in a TcpHarness, for tests that start from ESTABLISHED.

import * as assert from 'uvu/assert';
import type { Server } from '../../src/tcp/server.ts';
import type { Socket } from '../../src/tcp/socket.ts';
import { ACK, ack, expectSegment, flags, type Inject, SYN, seq, type TcpHarness } from './tcp-harness.ts';

export interface Opened {
  server: Server;
  socket: Socket;
  /** Our ISS: the stack's next sequence number is iss + 1. */
  iss: number;
  /** The peer's next sequence number. */
  peerSeq: number;
  port: number;
}

/** A passive open on `port`: SYN from the peer, SYN-ACK, ACK; returns the accepted socket. */
export async function acceptOne(
  h: TcpHarness,
  port = 80,
  irs = 1000,
  synOptions: Partial<Inject> = {},
  serverOptions = {},
  rttMs = 0,
): Promise<Opened> {
  let socket: Socket | null = null;
  const server = h.stack.createServer(serverOptions, (s) => (socket = s));
  server.listen(port);
  await h.advance(0);
  h.inject({ dstPort: port, seq: irs, flags: SYN, mss: 1460, ...synOptions });
  const synAck = expectSegment(h.one(), flags(SYN | ACK), ack(irs + 1));
  // The round trip the stack measures on its SYN-ACK.
  if (rttMs > 0) h.clock.advance(rttMs);
  h.inject({ dstPort: port, seq: irs + 1, ack: synAck.seq + 1, flags: ACK, ...(synOptions.ts ? { ts: synOptions.ts } : {}) });
  await h.advance(0);
  assert.ok(socket, 'the server emitted connection');
  h.none();
  return { server, socket: socket!, iss: synAck.seq, peerSeq: (irs + 1) >>> 0, port };
}

/** An active open to the peer's `port`: SYN, SYN-ACK from the peer, ACK. */
export async function connectOne(h: TcpHarness, port = 8080, peerIss = 5000, synAckOptions: Partial<Inject> = {}): Promise<Opened & { localPort: number }> {
  const socket = h.stack.connect(port, '10.0.0.1');
  let connected = false;
  socket.on('connect', () => (connected = true));
  const syn = expectSegment(h.one(), flags(SYN));
  h.inject({ srcPort: port, dstPort: syn.srcPort, seq: peerIss, ack: syn.seq + 1, flags: SYN | ACK, mss: 1460, ...synAckOptions });
  expectSegment(h.one(), flags(ACK), seq(syn.seq + 1), ack(peerIss + 1));
  await h.advance(0);
  assert.ok(connected, 'connect event');
  return { server: null as unknown as Server, socket, iss: syn.seq, peerSeq: (peerIss + 1) >>> 0, port, localPort: syn.srcPort };
}
