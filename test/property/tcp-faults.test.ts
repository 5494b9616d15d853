// Two stacks over an in-memory link with seeded loss, duplication, reordering and corruption,
// in virtual time: for random write patterns and random close orders, every byte arrives, in
// order, both ways, and both sockets close cleanly. A failure prints fast-check's seed and
// counterexample; failing cases found so far are kept below as regression cases.

import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TcpEvent, TcpState } from '../../src/tcp/state.ts';
import type { TcpSocket } from '../../src/index.ts';
import { stackPair } from '../helpers/tcp-pair.ts';

interface Case {
  seed: number;
  drop: number;
  duplicate: number;
  reorder: number;
  corrupt: number;
  /** Sizes of the client's writes, and of the server's. */
  clientWrites: number[];
  serverWrites: number[];
  closeOrder: 'client-first' | 'server-first' | 'both';
  noDelay: boolean;
  congestion: 'newreno' | 'cubic';
}

/** Byte i of a direction's stream: recognisable and position-dependent. */
function pattern(direction: number, offset: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = ((offset + i) * 31 + direction * 7 + ((offset + i) >> 8)) & 255;
  return b;
}

function describeConnections(stack: { tcp: { all(): IterableIterator<import('../../src/tcp/connection.ts').Connection> } }): string {
  return [...stack.tcp.all()]
    .map(
      (c) =>
        `${c.state} una=${c.snd.una - c.snd.iss} nxt=${c.snd.nxt - c.snd.iss} max=${c.snd.max - c.snd.iss} wnd=${c.snd.wnd} cwnd=${c.cc.cwnd} buf=${c.sendBuffer.length} ` +
        `rcvNxt=${c.rcv.nxt - c.rcv.irs} rcvWnd=${c.rcv.adv - c.rcv.nxt} retries=${c.retries} srtt=${c.rtt.srtt.toFixed(0)} var=${c.rtt.rttvar.toFixed(0)} boff=${c.rtt.backoffs} rec=${c.recovery.inRecovery} ooo=${c.reassembly.count} ${JSON.stringify((c as unknown as { debugTimers(): unknown }).debugTimers())}`,
    )
    .join(' | ');
}

function firstDifference(a: Buffer, b: Buffer): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}

function total(sizes: number[]): number {
  return sizes.reduce((a, b) => a + b, 0);
}

async function runCase(c: Case): Promise<void> {
  const { clock, a, b, faultsA, faultsB } = await stackPair({
    faults: { seed: c.seed, drop: c.drop, duplicate: c.duplicate, reorder: c.reorder, corrupt: c.corrupt, maxDelayMs: 20 },
    tcp: { timeWaitMs: 2000, congestion: c.congestion },
  });
  // Every state change follows the state x event table (src/tcp/state.ts), as a probe sees it.
  const offTable: string[] = [];
  const checkTransition = { tcpState: (_conn: unknown, from: TcpState, to: TcpState, event: TcpEvent) => void (event.next[from] !== to && offTable.push(`${from} -> ${to} on "${event.name}"`)) };
  a.setProbe(checkTransition);
  b.setProbe(checkTransition);
  const clientTotal = total(c.clientWrites);
  const serverTotal = total(c.serverWrites);
  const atServer: Buffer[] = [];
  const atClient: Buffer[] = [];
  let serverReceived = 0;
  let clientReceived = 0;
  const closed: string[] = [];
  const errors: string[] = [];

  const writeAll = (socket: TcpSocket, sizes: number[], direction: number) => {
    let offset = 0;
    for (const n of sizes) {
      socket.write(pattern(direction, offset, n));
      offset += n;
    }
  };

  b.createServer({ allowHalfOpen: true, noDelay: c.noDelay }, (s) => {
    s.on('data', (d: Buffer) => {
      atServer.push(d);
      serverReceived += d.length;
    });
    // client-first: the server closes its side once the client's FIN arrived.
    s.on('end', () => {
      if (c.closeOrder === 'client-first') s.end();
    });
    s.on('error', (e: Error) => errors.push(`server: ${e.message}`));
    s.on('close', () => closed.push('server'));
    writeAll(s, c.serverWrites, 1);
    if (c.closeOrder !== 'client-first') s.end();
  }).listen(7);

  const client = a.connect({ port: 7, host: '10.0.0.2', allowHalfOpen: true, noDelay: c.noDelay });
  client.on('data', (d: Buffer) => {
    atClient.push(d);
    clientReceived += d.length;
  });
  client.on('end', () => {
    if (c.closeOrder === 'server-first') client.end();
  });
  client.on('error', (e: Error) => errors.push(`client: ${e.message}`));
  client.on('close', () => closed.push('client'));
  writeAll(client, c.clientWrites, 0);
  if (c.closeOrder !== 'server-first') client.end();

  const done = () => closed.length === 2 || errors.length > 0;
  const limit = clock.now() + 600_000;
  while (!done() && clock.now() < limit) {
    clock.advance(2);
    await new Promise((r) => setImmediate(r));
  }
  const where = `faults a ${JSON.stringify(faultsA!.counters)} b ${JSON.stringify(faultsB!.counters)}; a: ${describeConnections(a)} ${JSON.stringify(a.counters())}; b: ${describeConnections(b)} ${JSON.stringify(b.counters())}`;
  assert.equal(errors, [], where);
  assert.equal(offTable, [], 'state changes outside the table');
  assert.ok(done(), `not closed after 600 s of virtual time: ${closed} ${serverReceived}/${clientTotal} ${clientReceived}/${serverTotal} ${where}`);
  assert.is(serverReceived, clientTotal);
  assert.is(clientReceived, serverTotal);
  assert.ok(Buffer.concat(atServer).equals(pattern(0, 0, clientTotal)), `client -> server bytes in order (first difference at ${firstDifference(Buffer.concat(atServer), pattern(0, 0, clientTotal))})`);
  assert.ok(Buffer.concat(atClient).equals(pattern(1, 0, serverTotal)), `server -> client bytes in order (first difference at ${firstDifference(Buffer.concat(atClient), pattern(1, 0, serverTotal))})`);
  // Eventually nothing is left: TIME-WAIT expires, lost final ACKs are settled.
  faultsA!.enabled = false;
  faultsB!.enabled = false;
  for (let i = 0; i < 200 && a.tcp.size + b.tcp.size > 0; i++) {
    clock.advance(1000);
    await new Promise((r) => setImmediate(r));
  }
  assert.is(a.tcp.size + b.tcp.size, 0, 'connections left behind');
  await a.close();
  await b.close();
  stats.runs++;
  stats.bytes += clientTotal + serverTotal;
  stats.dropped += faultsA!.counters.dropped + faultsB!.counters.dropped;
  stats.corrupted += faultsA!.counters.corrupted + faultsB!.counters.corrupted;
  stats.retransmits += a.tcp.counters.retransmits + b.tcp.counters.retransmits;
  stats.fastRetransmits += a.tcp.counters.fastRetransmits + b.tcp.counters.fastRetransmits;
  stats.tailLossProbes += a.tcp.counters.tailLossProbes + b.tcp.counters.tailLossProbes;
  stats.timeouts += a.tcp.counters.timeouts + b.tcp.counters.timeouts;
}

const stats = { runs: 0, bytes: 0, dropped: 0, corrupted: 0, retransmits: 0, fastRetransmits: 0, tailLossProbes: 0, timeouts: 0 };

function perMille(max: number): fc.Arbitrary<number> {
  return fc.integer({ min: 0, max }).map((n) => n / 1000);
}

const caseArbitrary: fc.Arbitrary<Case> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  // Rates in steps of 0.1% (fc.double would mostly pick vanishingly small rates).
  drop: perMille(100),
  duplicate: perMille(50),
  reorder: perMille(100),
  corrupt: perMille(30),
  clientWrites: fc.array(fc.integer({ min: 1, max: 30_000 }), { maxLength: 12 }),
  serverWrites: fc.array(fc.integer({ min: 1, max: 30_000 }), { maxLength: 12 }),
  closeOrder: fc.constantFrom('client-first' as const, 'server-first' as const, 'both' as const),
  noDelay: fc.boolean(),
  congestion: fc.constantFrom('newreno' as const, 'cubic' as const),
});

// TCP_FAULT_CASE='{"seed":...}' runs one counterexample on its own, with its failure message.
const single = process.env.TCP_FAULT_CASE;
if (single) test('the case from TCP_FAULT_CASE', async () => runCase(JSON.parse(single) as Case));

(single ? test.skip : test)('every byte arrives in order both ways under loss, duplication, reordering and corruption', async () => {
  await fc.assert(fc.asyncProperty(caseArbitrary, runCase), {
    numRuns: Number(process.env.TCP_FAULT_RUNS ?? 40),
    seed: Number(process.env.TCP_FAULT_SEED ?? 20261126),
    endOnFailure: true,
  });
  // The faults really happened and were repaired (guards against a property that tests nothing).
  console.log(`tcp-faults: ${JSON.stringify(stats)}`);
  assert.ok(stats.bytes > 1_000_000 && stats.dropped > 100 && stats.corrupted > 20 && stats.retransmits > 100, JSON.stringify(stats));
});

/** Cases that failed once (seed and counterexample from fast-check), kept as regressions. */
const regressions: Case[] = [
  // Go-back-N after a timeout left SND.NXT below what the peer had seen; bare ACKs carried it
  // and were unacceptable to the peer, ACK field and all: both sides waited for each other.
  {
    seed: 2147483640,
    drop: 0.09999999999999988,
    duplicate: 2e-323,
    reorder: 9.827212850225346e-276,
    corrupt: 5.115427816816048e-95,
    clientWrites: [21652, 15114, 248, 18147, 13205, 7443],
    serverWrites: [10299, 27129, 1937, 4985],
    closeOrder: 'both',
    noDelay: false,
    congestion: 'cubic',
  },
  // ACKs echoing timestamps from before a retransmission gave RTT samples of many seconds,
  // and an RTO of a minute or more.
  {
    seed: 128761971,
    drop: 0.09999999999999981,
    duplicate: 3.1134720673476554e-143,
    reorder: 9e-323,
    corrupt: 4.3665350348980457e-218,
    clientWrites: [7719, 18170, 1981, 27470, 23501, 26103, 20801, 3682],
    serverWrites: [23101, 6987, 4102],
    closeOrder: 'client-first',
    noDelay: true,
    congestion: 'newreno',
  },
  {
    seed: 29,
    drop: 0.09999999999999984,
    duplicate: 5e-323,
    reorder: 2.5e-323,
    corrupt: 0.029999999999999975,
    clientWrites: [22169, 26885, 4611, 11201, 12552],
    serverWrites: [3760],
    closeOrder: 'both',
    noDelay: false,
    congestion: 'cubic',
  },
];

(single ? test.skip : test)('regression cases', async () => {
  for (const c of regressions) await runCase(c);
});

test.run();
