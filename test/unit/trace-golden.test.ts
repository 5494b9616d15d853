// The trace of scripted exchanges in virtual time, as text lines and as JSON lines, compared
// with test/golden/trace-<name>.txt and trace-<name>.jsonl. Stack A (10.0.0.1) is traced by
// two traces at once, one text and one JSON, which must say the same things. Chosen frames
// are lost on the way (a LoseRule, as tcp-golden.test.ts's), so that each rule of loss
// recovery shows. Then: every record type, retransmission rule, ARP event and probe kind
// appears in some scenario.
//
//   npx tsx test/unit/trace-golden.test.ts                    compare
//   GOLDEN_UPDATE=1 npx tsx test/unit/trace-golden.test.ts    rewrite test/golden/trace-*
//
// A golden file changes only in a commit that says why (a change of the trace's words or of
// the stack's behaviour).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Stack, TcpSocket, TraceRecord } from '../../src/index.ts';
import { TRACE_RECORD_TYPES } from '../../src/index.ts';
import { ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { BROADCAST_MAC } from '../../src/link/ethernet.ts';
import type { TcpConfig } from '../../src/tcp/config.ts';
import { SYN } from '../../src/tcp/tcp-segment.ts';
import { arpFrame } from '../helpers/frames.ts';
import { describeFrame, diffLines, pattern, run, runUntil, type TcpInfo } from '../helpers/golden.ts';
import { type StackPair, stackPair } from '../helpers/tcp-pair.ts';

const GOLDEN_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../golden');
const UPDATE = process.env.GOLDEN_UPDATE === '1';
const KB = 1024;
/** The meta record's wall-clock start, made constant for the comparison. */
const STARTED_AT = '2000-01-01T00:00:00.000Z';

interface Traced {
  text: string[];
  json: string[];
  records: TraceRecord[];
}

/** Loses frames `stack` sends for which lose(tcp fields or null) is true (decided in order). */
function loseOnSend(stack: Stack, lose: (tcp: TcpInfo | null, frame: Buffer) => boolean): void {
  const link = stack.link;
  const send = link.send.bind(link);
  link.send = (buf: Buffer, off: number, len: number): void => {
    const frame = buf.subarray(off, off + len);
    if (!lose(describeFrame(frame).tcp, frame)) send(buf, off, len);
  };
}

/** The n-th (1-based) data segments A sends carrying new bytes to port 7 are lost, once each. */
function loseDataSegments(numbers: number[], alsoLose: (tcp: TcpInfo) => boolean = () => false): (tcp: TcpInfo | null) => boolean {
  let highest = -1;
  let n = 0;
  return (tcp) => {
    if (tcp === null || tcp.dstPort !== 7) return false;
    if (alsoLose(tcp)) return true;
    if (tcp.payloadLength === 0) return false;
    // New data: beyond the highest sequence number sent so far (the ISN is far from wrapping here).
    const end = tcp.seq + tcp.payloadLength;
    if (highest !== -1 && end <= highest) return false;
    highest = end;
    return numbers.includes(++n);
  };
}

async function tracedPair(tcp: Partial<TcpConfig>): Promise<{ p: StackPair; traced: Traced; stop: () => void }> {
  const p = await stackPair({ tcp: { timeWaitMs: 2000, ...tcp } });
  const traced: Traced = { text: [], json: [], records: [] };
  const t1 = p.a.trace({ output: (l) => traced.text.push(l), colour: false });
  const t2 = p.a.trace({ format: 'json', output: (l) => traced.json.push(l), onRecord: (r) => traced.records.push(r) });
  return {
    p,
    traced,
    stop: () => {
      t1.stop();
      t2.stop();
    },
  };
}

/** B listens on 7 and echoes nothing; `onServer` gets the accepted socket. */
function listen(p: StackPair, onServer: (s: TcpSocket) => void = (s) => s.resume()): void {
  p.b
    .createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.on('end', () => s.end());
      onServer(s);
    })
    .listen(7);
}

const closed = (s: TcpSocket) => () => s.destroyed && s.readyState === 'closed';

interface Scenario {
  name: string;
  run: () => Promise<Traced>;
}
const scenarios: Scenario[] = [];
function scenario(name: string, fn: () => Promise<Traced>): void {
  scenarios.push({ name, run: fn });
}

// ARP, a handshake whose first SYN is lost, data with two losses in a window (RACK, then a
// SACK hole), a tail loss whose probe is lost too (TLP, then the RTO), a zero window with
// persist probes, ICMP port unreachable both ways, a drop with the reset it causes,
// keepalive probes while the peer is silent, the close and TIME-WAIT.
scenario('exchange', async () => {
  const { p, traced, stop } = await tracedPair({ receiveBufferSize: 16 * KB, keepAliveIntervalMs: 1000, keepAliveProbes: 5 });
  let server: TcpSocket | null = null;
  listen(p, (s) => {
    server = s;
    s.resume();
  });
  let synsLost = 0;
  let tailLoss = false;
  let silentB = false;
  const dataLoss = loseDataSegments([3, 5]);
  loseOnSend(p.a, (tcp) => {
    if (tcp !== null && tcp.flags === SYN && synsLost++ === 0) return true;
    // The last segment of the second write, and its tail loss probe.
    if (tailLoss && tcp !== null && tcp.payloadLength > 0 && tcp.payloadLength < 1000) return true;
    return dataLoss(tcp);
  });
  loseOnSend(p.b, () => silentB);
  const c = p.a.connect({ port: 7, host: '10.0.0.2' });
  c.on('error', () => {});
  c.resume();
  c.write(pattern(0, 0, 20 * KB));
  await run(p.clock, 2000);
  // Tail loss: 5000 bytes at once (no Nagle) whose last, short segment is lost, then its
  // tail loss probe and the first retransmission by timeout.
  c.setNoDelay(true);
  tailLoss = true;
  c.write(pattern(0, 0, 5000));
  await run(p.clock, 500);
  tailLoss = false;
  await run(p.clock, 1000);
  // A zero window: B stops reading; 100 KB fill its 16 KB.
  server!.pause();
  c.write(pattern(0, 0, 60 * KB));
  await run(p.clock, 6000, 5);
  server!.resume();
  await run(p.clock, 500);
  // UDP to closed ports, both ways: ICMP port unreachable in and out.
  const ua = p.a.createSocket('udp4');
  ua.on('error', () => {});
  ua.bind(5000);
  ua.send('to nobody', 9, '10.0.0.2');
  const ub = p.b.createSocket('udp4');
  ub.send('to nobody', 9, '10.0.0.1');
  await run(p.clock, 10);
  ua.close();
  ub.close();
  // A SYN to a closed port of A: dropped, and answered with a reset.
  const refused = p.b.connect({ port: 1234, host: '10.0.0.1' });
  refused.on('error', () => {});
  await run(p.clock, 10);
  // Keepalive: idle 2 s, then probes every second, B silent for two of them.
  c.setKeepAlive(true, 2000);
  await run(p.clock, 2500, 5);
  silentB = true;
  await run(p.clock, 1800, 5);
  silentB = false;
  await run(p.clock, 1500, 5);
  c.setKeepAlive(false);
  // The close: A first, so A holds TIME-WAIT (2 s here).
  c.end();
  await runUntil(p.clock, closed(c), 10_000);
  await run(p.clock, 2500, 5);
  stop();
  return traced;
});

// Without SACK, NewReno: two losses in a window (three duplicate ACKs, then a partial ACK),
// the partial ACK's retransmission lost twice (RTO with backoff 1, then 2).
scenario('newreno-no-sack', async () => {
  const { p, traced, stop } = await tracedPair({ sack: false, congestion: 'newreno', tailLossProbe: false });
  listen(p);
  let retransmitsOf6 = 0;
  let sixth = -1;
  const dataLoss = loseDataSegments([3, 6], (tcp) => {
    if (sixth === -1 || tcp.seq !== sixth || tcp.payloadLength === 0) return false;
    // The sixth segment is lost, then its first two retransmissions too.
    return ++retransmitsOf6 <= 3;
  });
  let n = 0;
  loseOnSend(p.a, (tcp) => {
    if (tcp !== null && tcp.dstPort === 7 && tcp.payloadLength > 0 && ++n === 6) sixth = tcp.seq;
    return dataLoss(tcp);
  });
  const c = p.a.connect({ port: 7, host: '10.0.0.2' });
  c.on('error', () => {});
  c.resume();
  c.end(pattern(0, 0, 30 * KB));
  await runUntil(p.clock, closed(c), 20_000);
  await run(p.clock, 2500, 5);
  stop();
  return traced;
});

// ARP: a next hop that never answers (requests, then failure with what waited), resolution
// with a datagram waiting, and a neighbour that changes its MAC (gratuitous ARP) and back.
scenario('arp', async () => {
  const { p, traced, stop } = await tracedPair({});
  const u = p.a.createSocket('udp4');
  u.on('error', () => {});
  u.bind(5000);
  for (let i = 0; i < 3; i++) u.send(`lost ${i}`, 9, '10.0.0.9');
  await run(p.clock, 3500, 5);
  const sink = p.b.createSocket('udp4');
  sink.bind(9);
  u.send('found', 9, '10.0.0.2');
  await run(p.clock, 20);
  const garp = (mac: string) => {
    const m = Buffer.from(mac.replace(/:/g, ''), 'hex');
    const frame = arpFrame(BROADCAST_MAC, { op: ARP_REQUEST, senderMac: m, senderIp: 0x0a000002, targetMac: Buffer.alloc(6), targetIp: 0x0a000002 });
    p.a.receiveFrame(frame, 0, frame.length);
  };
  garp('02:00:00:00:00:99');
  u.send('to the new MAC', 9, '10.0.0.2');
  await run(p.clock, 20);
  garp('02:00:00:00:00:02');
  u.send('back', 9, '10.0.0.2');
  await run(p.clock, 20);
  u.close();
  sink.close();
  stop();
  return traced;
});

// ---------------------------------------------------------------------------------------------

/** The lines with the meta record's wall-clock start made constant. */
function normalized(t: Traced): { text: string; json: string } {
  const text = t.text.map((l) => l.replace(/started \S+$/, `started ${STARTED_AT}`));
  const json = t.json.map((l) => l.replace(/"startedAt":"[^"]*"/, `"startedAt":"${STARTED_AT}"`));
  return { text: text.join('\n') + '\n', json: json.join('\n') + '\n' };
}

const seen: TraceRecord[] = [];

for (const s of scenarios) {
  test(s.name, async () => {
    const first = await s.run();
    const second = await s.run();
    const a = normalized(first);
    const b = normalized(second);
    assert.ok(diffLines(a.text, b.text) === '', `${s.name} is not deterministic:\n${diffLines(a.text, b.text)}`);
    // The two traces said the same: each JSON line is the record handed to onRecord.
    assert.is(first.json.length, first.records.length);
    assert.equal(first.json.map((l) => JSON.parse(l)), JSON.parse(JSON.stringify(first.records)));
    assert.is(first.text.length, first.json.length);
    seen.push(...first.records);
    for (const [ext, content] of [
      ['txt', a.text],
      ['jsonl', a.json],
    ] as const) {
      const file = path.join(GOLDEN_DIR, `trace-${s.name}.${ext}`);
      if (UPDATE) {
        mkdirSync(GOLDEN_DIR, { recursive: true });
        writeFileSync(file, content);
        continue;
      }
      assert.ok(existsSync(file), `no golden ${file}: record it with GOLDEN_UPDATE=1`);
      const d = diffLines(readFileSync(file, 'utf8'), content);
      if (d !== '') assert.unreachable(`${s.name} differs from ${path.relative(process.cwd(), file)}\n${d}`);
    }
  });
}

test('every record type, retransmission rule, ARP event and probe kind appears', () => {
  const kinds = new Set<string>();
  for (const r of seen) {
    kinds.add(r.type);
    if (r.type === 'retransmit') kinds.add(`retransmit:${r.why}`);
    if (r.type === 'arp') kinds.add(`arp:${r.event}`);
    if (r.type === 'probe') kinds.add(`probe:${r.kind}`);
    if (r.type === 'icmp-error') kinds.add(`icmp-error:${r.dir}`);
    if (r.type === 'rtt') kinds.add(`rtt:${r.cause}`);
    if (r.type === 'frame') kinds.add(`frame:${r.dir}:${r.proto}`);
  }
  const expected = [
    ...TRACE_RECORD_TYPES,
    ...['rto', 'rack', 'dupacks', 'sack', 'partial-ack', 'tlp', 'syn'].map((w) => `retransmit:${w}`),
    ...['request', 'resolved', 'failed', 'updated'].map((e) => `arp:${e}`),
    'probe:zero-window',
    'probe:keepalive',
    'icmp-error:in',
    'icmp-error:out',
    'rtt:sample',
    'rtt:backoff',
    ...['arp', 'tcp', 'udp', 'icmp'].flatMap((p) => [`frame:in:${p}`, `frame:out:${p}`]),
  ];
  const missing = expected.filter((k) => !kinds.has(k));
  assert.equal(missing, [], `never seen: ${missing.join(', ')}`);
  // A retransmission by RTO or of a SYN says its backoff.
  assert.ok(seen.some((r) => r.type === 'retransmit' && r.why === 'rto' && r.backoff === 2));
  // Persist and keepalive probes count up within their series.
  for (const kind of ['zero-window', 'keepalive'] as const) {
    const counts = seen.filter((r) => r.type === 'probe' && r.kind === kind).map((r) => (r.type === 'probe' ? r.count : 0));
    assert.ok(Math.max(...counts) >= 2, `${kind}: ${counts.join(',')}`);
  }
});

test.run();
