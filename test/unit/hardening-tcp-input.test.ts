// Hardening of TCP input (issue 10): SYN cookies, ACK storms, the SACK scoreboard, challenge
// ACK budgets, ephemeral ports, received chunks and the slab, and FIN ordering. Each test is
// named after the item of the attack review it guards against.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IsnGenerator } from '../../src/tcp/isn.ts';
import { DEFAULT_TCP_CONFIG } from '../../src/tcp/config.ts';
import { SynCookies } from '../../src/tcp/syn-cookies.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { ACK, ack, expectSegment, flags, PEER_IP, RST, SYN, seq, TcpHarness } from '../helpers/tcp-harness.ts';

/** A harness whose listener on 80 keeps one half-open connection: the next SYN overflows. */
async function fullListener(): Promise<TcpHarness> {
  const h = await TcpHarness.create({ tcp: { maxSynBacklog: 1 } });
  h.stack.createServer(() => {}).listen(80);
  await h.advance(0);
  h.inject({ srcPort: 20000, dstPort: 80, seq: 0, flags: SYN });
  h.one();
  return h;
}

test('item 11: a cookie whose MSS bits were flipped is refused', async () => {
  const h = await fullListener();
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5000, flags: SYN, mss: 536 });
  const cookie = expectSegment(h.one(), flags(SYN | ACK));
  // Bits 24-26 held the MSS index in the old layout; any flip in the top byte must fail.
  for (const flip of [1 << 24, 2 << 24, 3 << 24, 4 << 24]) {
    h.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: (cookie.seq ^ flip) + 1, flags: ACK });
    expectSegment(h.one(), flags(RST));
  }
  assert.is(h.stack.tcp.find(80, PEER_IP, 20001), undefined);
  assert.is(h.stack.tcp.counters.synCookiesFailed, 4);
  // The genuine cookie opens the connection with the MSS the SYN asked for.
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK });
  const conn = h.stack.tcp.find(80, PEER_IP, 20001)!;
  assert.is(conn.state, 'ESTABLISHED');
  assert.is(conn.snd.mss, 536);
  assert.is(h.stack.tcp.counters.synCookiesAccepted, 1);
});

test('item 11: the options a cookie carries in the timestamp are authenticated too', async () => {
  const h = await fullListener();
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5000, flags: SYN, mss: 1460, windowScale: 2, sackPermitted: true, ts: [777, 0] });
  const cookie = expectSegment(h.one(), flags(SYN | ACK));
  // The peer claims another window scale in the echoed TSval.
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK, ts: [778, cookie.tsVal ^ 0x7] });
  expectSegment(h.one(), flags(RST));
  assert.is(h.stack.tcp.find(80, PEER_IP, 20001), undefined);
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK, ts: [778, cookie.tsVal] });
  assert.is(h.stack.tcp.find(80, PEER_IP, 20001)!.snd.wscale, 2);
});

test('item 11: without a recent SYN-queue overflow an ACK to a listener is not checked as a cookie', async () => {
  // Two stacks with the same seed and clock make the same cookies: one overflows and sends
  // a cookie, the other has never overflowed and must answer the same ACK with a reset.
  const a = await fullListener();
  a.inject({ srcPort: 20001, dstPort: 80, seq: 5000, flags: SYN, mss: 1460 });
  const cookie = expectSegment(a.one(), flags(SYN | ACK));
  const b = await TcpHarness.create({ tcp: { maxSynBacklog: 1 } });
  b.stack.createServer(() => {}).listen(80);
  await b.advance(0);
  b.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK });
  expectSegment(b.one(), flags(RST), seq(cookie.seq + 1));
  assert.is(b.stack.tcp.find(80, PEER_IP, 20001), undefined);
  assert.is(b.stack.tcp.counters.synCookiesFailed, 0, 'not even checked');
  // The stack that overflowed accepts it (within TCP_SYNCOOKIE_VALID of the overflow) ...
  a.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK });
  assert.is(a.stack.tcp.find(80, PEER_IP, 20001)!.state, 'ESTABLISHED');
  // ... but no more once two minutes have passed without one.
  a.inject({ srcPort: 20002, dstPort: 80, seq: 6000, flags: SYN, mss: 1460 });
  const late = expectSegment(a.one(), flags(SYN | ACK));
  await a.advance(120_001, 10_000);
  a.sent();
  a.inject({ srcPort: 20002, dstPort: 80, seq: 6001, ack: late.seq + 1, flags: ACK });
  expectSegment(a.one(), flags(RST), ack(0));
  assert.is(a.stack.tcp.find(80, PEER_IP, 20002), undefined);
  assert.is(a.stack.tcp.counters.synCookiesFailed, 0, 'not checked after TCP_SYNCOOKIE_VALID');
});

test('item 11: ISNs and SYN cookies have separate secrets', () => {
  const clock = new VirtualClock(1);
  const isn = new IsnGenerator(clock, 7);
  const cookies = new SynCookies(7, clock, DEFAULT_TCP_CONFIG, 1, 1500);
  assert.not.equal(isn.secret, cookies.h0.secret);
  assert.not.equal(isn.secret, cookies.h1.secret);
  assert.not.equal(cookies.h0.secret, cookies.h1.secret);
  assert.is(new SynCookies(7, clock, DEFAULT_TCP_CONFIG, 1, 1500).h1.secret.toString('hex'), cookies.h1.secret.toString('hex'), 'reproducible per seed');
});

test.run();
