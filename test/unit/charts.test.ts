// The teaching charts (src/teach/charts.js) over the records of a modelled lossy transfer
// (test/helpers/trace-records.ts): well-formed SVG, one bar per segment, every retransmission
// marked, the ACK line and the SACK blocks there, thinning that keeps retransmissions, the
// state diagram's lit state and edge, and the figure's edges checked against TCP_EVENTS.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  connectionsIn,
  cwndSvg,
  escapeXml,
  ladderSvg,
  rttSvg,
  STATE_DIAGRAM_EDGES,
  STATE_EVENT_WORDS,
  stateDiagramSvg,
  timeSequenceSvg,
} from '../../src/teach/charts.js';
import { plotSvg } from '../../src/teach/plot-cli.ts';
import { TCP_EVENTS, type TcpState } from '../../src/tcp/state.ts';
import type { FrameRecord, TraceRecord } from '../../src/trace/schema.ts';
import { countClass, xmlErrors } from '../helpers/svg-check.ts';
import { recordLossyTransfer } from '../helpers/recorded-transfer.ts';
import { bigTransfer, lossyTransfer, mergeTraces } from '../helpers/trace-records.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const lossy = lossyTransfer({ segments: 40, lost: [10, 11, 25] });

// Every SVG drawn is parsed at the end, in one python3 process.
const drawn: Array<{ name: string; svg: string }> = [];
function wellFormed(svg: string, what: string): void {
  drawn.push({ name: what, svg });
}

test('the model transfer loses and resends what it was told to, and finishes', () => {
  assert.equal(lossy.retransmitted, [1 + 10 * 1448, 1 + 11 * 1448, 1 + 25 * 1448]);
  assert.is(lossy.dataSegmentsSent, 43);
  assert.ok(lossy.sackBlocks > 0);
  const states = lossy.client.filter((r) => r.type === 'state').map((r) => (r.type === 'state' ? r.to : ''));
  assert.equal(states, ['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT']);
});

test('time-sequence: a bar per segment sent, an R per retransmission, the ACK and window lines, a mark per SACK block', () => {
  const svg = timeSequenceSvg(lossy.client, lossy.conn);
  wellFormed(svg, 'time-sequence');
  // Every data segment, plus the SYN and the FIN (they take sequence space too).
  assert.is(countClass(svg, 'seg') + countClass(svg, 'seg retransmit'), lossy.dataSegmentsSent + 2);
  assert.is(countClass(svg, 'seg retransmit'), lossy.retransmitted.length);
  assert.is(countClass(svg, 'rexmit-mark'), lossy.retransmitted.length);
  for (const rseq of lossy.retransmitted) assert.ok(svg.includes(`retransmission ${rseq}:${rseq + 1448}`), `retransmission of ${rseq} marked`);
  assert.match(svg, /class="ack-line" d="M[^"]+H/);
  assert.match(svg, /class="window-line" d="M/);
  assert.is(countClass(svg, 'sack') + countClass(svg, 'dsack'), lossy.sackBlocks);
  for (const words of ['cumulative ACK', 'retransmission (R)', 'SACK block', 'relative sequence number (kB)', 'time (ms)']) assert.ok(svg.includes(words), words);
});

test("time-sequence from the receiver's trace: the direction that moved the data, retransmissions found by sequence", () => {
  const svg = timeSequenceSvg(lossy.server, lossy.serverConn);
  wellFormed(svg, 'receiver time-sequence');
  assert.ok(svg.includes('data sent by 10.0.0.1:40000'));
  // The first copies of the lost segments never arrived: each one received is one bar.
  assert.is(countClass(svg, 'seg') + countClass(svg, 'seg retransmit'), lossy.dataSegmentsSent - 3 + 2);
  assert.is(countClass(svg, 'seg retransmit'), 3);
  // The other direction (the receiver's ACKs carry no data) when asked.
  const back = timeSequenceSvg(lossy.server, lossy.serverConn, { direction: 'out' });
  wellFormed(back, 'the ACK direction');
  assert.is(countClass(back, 'seg retransmit'), 0);
});

test('time-sequence: one segment still has readable axes; an unknown connection says so', () => {
  const one = lossyTransfer({ segments: 1 });
  const svg = timeSequenceSvg(one.client, one.conn);
  wellFormed(svg, 'one segment');
  assert.is(countClass(svg, 'seg'), 3);
  assert.ok(countClass(svg, 'tick-label') >= 4);
  const none = timeSequenceSvg(one.client, '10.9.9.9:1>10.9.9.8:2');
  wellFormed(none, 'no such connection');
  assert.is(countClass(none, 'empty-note'), 1);
});

test('time-sequence of 100,000 segments: thinned to one bar per pixel column, every retransmission kept', () => {
  const big = bigTransfer(100_000, 1000);
  const started = Date.now();
  const svg = timeSequenceSvg(big.records, big.conn, { width: 720 });
  assert.ok(Date.now() - started < 10_000, 'draws in seconds');
  wellFormed(svg, 'big time-sequence');
  const merged = countClass(svg, 'seg');
  assert.ok(merged > 0 && merged <= 720, `${merged} merged bars`);
  assert.is(countClass(svg, 'seg retransmit'), big.retransmissions);
  assert.is(countClass(svg, 'rexmit-mark'), big.retransmissions);
  assert.ok(svg.includes('data segments (merged per pixel)'));
  assert.ok(svg.length < 600_000, `${svg.length} characters`);
});

test('text from the trace is escaped', () => {
  const evil = '10.0.0.1:1>10.0.0.2:2';
  const records: TraceRecord[] = lossyTransfer({ segments: 2 }).client.map((r) =>
    r.type === 'frame' && r.tcp ? { ...r, tcp: { ...r.tcp, conn: evil, flags: r.tcp.flags === 'P.' ? '<&">' : r.tcp.flags } } : r,
  );
  for (const svg of [
    timeSequenceSvg(records, evil, { title: 'a <b> & "c"' }),
    ladderSvg(records, evil),
    cwndSvg(records, evil, { title: "it's <here>" }),
    stateDiagramSvg('CLOSED', { from: 'ESTABLISHED', to: 'CLOSED', event: 'RST <received> & "gone"' }),
  ]) {
    wellFormed(svg, 'escaped');
    assert.not.ok(/<b>|<here>|<received>|<&">/.test(svg));
  }
  assert.is(escapeXml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  assert.ok(ladderSvg(records, evil).includes('[&lt;&amp;&quot;&gt;]'));
});

test('cwnd: cwnd and ssthresh in segments as step lines, the recovery shaded', () => {
  const svg = cwndSvg(lossy.client, lossy.conn);
  wellFormed(svg, 'cwnd');
  assert.match(svg, /class="cwnd-line" d="M/);
  assert.match(svg, /class="ssthresh-line" d="M/);
  assert.ok(countClass(svg, 'phase-band') >= 1);
  assert.ok(svg.includes('data-phase="sack-recovery"'));
  assert.ok(svg.includes('SACK recovery (RFC 6675)'));
  assert.ok(svg.includes('cwnd, ssthresh (segments)'));
  // An RTO's loss phase, and ssthresh still infinite before it.
  const conn = '10.0.0.1:1>10.0.0.2:2';
  const cc = (t: number, cwnd: number, ssthresh: number | null, phase: 'open' | 'loss', prev: { cwnd: number; ssthresh: number | null; phase: 'open' | 'loss' }): TraceRecord => ({
    type: 'cc', t, conn, cwnd, ssthresh, phase, prev, mss: 1000, cause: 'test',
  });
  const rto = cwndSvg([cc(1, 20_000, null, 'open', { cwnd: 10_000, ssthresh: null, phase: 'open' }), cc(5, 1000, 10_000, 'loss', { cwnd: 20_000, ssthresh: null, phase: 'open' }), cc(9, 10_000, 10_000, 'open', { cwnd: 1000, ssthresh: 10_000, phase: 'loss' })], conn);
  wellFormed(rto, 'cwnd with RTO');
  assert.ok(rto.includes('data-phase="loss"'));
  assert.match(rto, /class="ssthresh-line" d="M[^"]*"/);
  const empty = cwndSvg([], conn);
  wellFormed(empty, 'empty cwnd');
  assert.is(countClass(empty, 'empty-note'), 1);
});

test('RTT: a dot per sample, SRTT and RTO lines; a log scale when the RTO towers over the RTT', () => {
  const samples = lossy.client.filter((r) => r.type === 'rtt' && r.cause === 'sample').length;
  const svg = rttSvg(lossy.client, lossy.conn);
  wellFormed(svg, 'rtt');
  assert.is(countClass(svg, 'rtt-sample'), samples);
  assert.match(svg, /class="srtt-line" d="M/);
  assert.match(svg, /class="rto-line" d="M/);
  assert.not.ok(svg.includes('log scale'), '20 ms RTT against a 200 ms RTO: linear');
  const lan = lossyTransfer({ segments: 10, rttMs: 1 });
  const log = rttSvg(lan.client, lan.conn);
  wellFormed(log, 'log rtt');
  assert.ok(log.includes('ms, log scale'));
});

test('ladder: the last N segments, retransmissions marked, the states of both ends', () => {
  const svg = ladderSvg(lossy.client, lossy.conn);
  wellFormed(svg, 'ladder');
  assert.is(countClass(svg, 'ladder-arrow') + countClass(svg, 'ladder-arrow retransmit'), 20);
  assert.ok(svg.includes('10.0.0.1:40000 (this stack)') && svg.includes('10.0.0.2:7 (peer)'));
  const local = [...svg.matchAll(/class="state-label local" data-state="([A-Z0-9-]+)"/g)].map((m) => m[1]);
  const remote = [...svg.matchAll(/class="state-label remote" data-state="([A-Z0-9-]+)"/g)].map((m) => m[1]);
  assert.equal(local, ['FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'ESTABLISHED']);
  // Inferred: our FIN (acknowledged) moved it to CLOSE-WAIT, its FIN to LAST-ACK, our ACK to CLOSED.
  assert.equal(remote, ['CLOSE-WAIT', 'LAST-ACK', 'CLOSED', 'ESTABLISHED']);

  // The handshake: the peer was listening, then SYN-RECEIVED, then ESTABLISHED on our ACK.
  const start = ladderSvg(lossy.client.slice(0, 9), lossy.conn);
  wellFormed(start, 'ladder of the handshake');
  const remoteStart = [...start.matchAll(/class="state-label remote" data-state="([A-Z0-9-]+)"/g)].map((m) => m[1]);
  assert.equal(remoteStart, ['SYN-RECEIVED', 'ESTABLISHED', 'LISTEN']);
  assert.ok(start.includes('[S] seq 0 win 65535'));
  assert.ok(start.includes('[S.] seq 0 ack 1 win 65535'));

  // Around the loss: the retransmissions are red and say so.
  const firstRexmit = lossy.client.findIndex((r) => r.type === 'frame' && r.tcp?.retransmit);
  const around = ladderSvg(lossy.client.slice(0, firstRexmit + 1), lossy.conn, { last: 8 });
  assert.is(countClass(around, 'ladder-arrow retransmit'), 1);
  assert.ok(around.includes('retransmission'));
  assert.ok(around.includes('sack '), 'the duplicate ACKs show their SACK blocks');
});

test('state diagram: the current state lit, the transition just taken highlighted', () => {
  const svg = stateDiagramSvg('ESTABLISHED', { from: 'SYN-SENT', to: 'ESTABLISHED' });
  wellFormed(svg, 'state diagram');
  assert.is(countClass(svg, 'fsm-state') + countClass(svg, 'fsm-state current'), 12, 'eleven states, CLOSED twice as in the figure');
  assert.is(countClass(svg, 'fsm-state current'), 1);
  assert.ok(svg.includes('class="fsm-state current" data-state="ESTABLISHED"'));
  assert.ok(svg.includes('class="fsm-edge taken" data-from="SYN-SENT" data-to="ESTABLISHED"'));
  assert.is(countClass(svg, 'fsm-edge taken'), 1);
  for (const label of ['rcv SYN', 'snd SYN,ACK', 'rcv ACK of SYN', 'Timeout=2MSL', 'passive OPEN', 'create TCB, snd SYN']) assert.ok(svg.includes(`>${label}<`), label);

  const taken = (s: string): string[] => [...s.matchAll(/class="fsm-edge taken[^"]*" data-from="([A-Z0-9-]+)" data-to="([A-Z0-9-]+)"/g)].map((m) => `${m[1]}>${m[2]}`);
  // This stack's passive open is CLOSED -> SYN-RECEIVED (a listener is no TCB): the figure's LISTEN edge.
  assert.equal(taken(stateDiagramSvg('SYN-RECEIVED', { from: 'CLOSED', to: 'SYN-RECEIVED' })), ['LISTEN>SYN-RECEIVED']);
  // ESTABLISHED -> FIN-WAIT-1 is two edges; the event's words choose.
  assert.equal(taken(stateDiagramSvg('FIN-WAIT-1', { from: 'ESTABLISHED', to: 'FIN-WAIT-1', event: 'CLOSE call' })), ['ESTABLISHED>FIN-WAIT-1']);
  assert.equal(taken(stateDiagramSvg('FIN-WAIT-1', { from: 'ESTABLISHED', to: 'FIN-WAIT-1', event: TCP_EVENTS.queuedClose.name })), ['SYN-RECEIVED>FIN-WAIT-1']);
  assert.equal(taken(stateDiagramSvg('FIN-WAIT-1', { from: 'ESTABLISHED', to: 'FIN-WAIT-1' })), ['ESTABLISHED>FIN-WAIT-1']);
  // A move the figure leaves out: dashed, labelled with its event.
  const rst = stateDiagramSvg('CLOSED', { from: 'ESTABLISHED', to: 'CLOSED', event: 'RST received' });
  wellFormed(rst, 'extra edge');
  assert.equal(taken(rst), ['ESTABLISHED>CLOSED']);
  assert.ok(rst.includes('fsm-edge taken extra') && rst.includes('>RST received<'));
  assert.is(countClass(rst, 'fsm-state current'), 2, 'CLOSED is lit in both its boxes');
  const none = stateDiagramSvg(null, null);
  wellFormed(none, 'nothing lit');
  assert.is(countClass(none, 'fsm-state current') + countClass(none, 'fsm-edge taken'), 0);
});

test("every edge of RFC 9293's Figure 5 is a transition TCP_EVENTS allows (or the stack's stated equivalent)", () => {
  assert.is(STATE_DIAGRAM_EDGES.length, 20);
  const states = new Set<TcpState>();
  for (const e of STATE_DIAGRAM_EDGES) {
    states.add(e.from).add(e.to);
    const move = e.stack ?? e;
    if (e.events.length === 0) {
      // Only the listener's own life and SEND in LISTEN, which make no TCB move at all.
      assert.ok(e.from === 'LISTEN' || e.to === 'LISTEN', `${e.from} -> ${e.to} has no event`);
      assert.ok(e.stack?.why, `${e.from} -> ${e.to} says why`);
      continue;
    }
    for (const name of e.events) {
      const ev = TCP_EVENTS[name];
      assert.ok(ev, `${name} is a TCP_EVENTS event`);
      assert.is(ev.next[move.from], move.to, `${name}: ${move.from} -> ${move.to} (figure: ${e.from} -> ${e.to})`);
      assert.is(STATE_EVENT_WORDS[name], ev.name, `${name}'s words`);
    }
    if (e.stack) assert.ok(e.stack.why.length > 0);
  }
  assert.is(states.size, 11, 'the eleven states');
  // The words copied into charts.js are TCP_EVENTS' own.
  for (const [name, words] of Object.entries(STATE_EVENT_WORDS)) assert.is(TCP_EVENTS[name as keyof typeof TCP_EVENTS].name, words, name);
});

test('connectionsIn: the busiest connection first, with its last state', () => {
  const small = lossyTransfer({ segments: 2, clientPort: 40001, serverPort: 80, start: 30 });
  const list = connectionsIn(mergeTraces(small.client, lossy.client));
  assert.equal(list.map((c) => c.conn), [lossy.conn, small.conn]);
  assert.is(list[0]!.bytes, 43 * 1448);
  assert.is(list[0]!.state, 'TIME-WAIT');
});

test('charts.js stays a plain module the browser can load: no imports at run time, no DOM, no Node', () => {
  const source = readFileSync(path.join(ROOT, 'src/teach/charts.js'), 'utf8');
  assert.ok(source.startsWith('// @ts-check'));
  // JSDoc's import('...') types are erased: only the code counts.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  assert.not.match(code, /^\s*import\s/m);
  assert.not.match(code, /\brequire\(|\bimport\(|\bdocument\.|\bprocess\.|\bglobalThis\b/);
  assert.not.match(code, /\bid="/, 'no ids: several charts share a page');
});

test('a rendered example is kept under test-artifacts/', () => {
  const summary = connectionsIn(lossy.client)[0]!;
  const svg = plotSvg(lossy.client, summary, 'model of a lossy transfer');
  wellFormed(svg, 'the combined plot');
  const dir = path.join(ROOT, 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'charts-plot.svg'), svg);
  writeFileSync(path.join(dir, 'charts-ladder.svg'), ladderSvg(lossy.client, lossy.conn));
  writeFileSync(path.join(dir, 'charts-state-diagram.svg'), stateDiagramSvg('FIN-WAIT-2', { from: 'FIN-WAIT-1', to: 'FIN-WAIT-2' }));
  // The frames in the artifact are the trace's.
  const frames = lossy.client.filter((r): r is FrameRecord => r.type === 'frame');
  assert.ok(frames.length > 40);
});

test('over the real stack (stack.trace of a transfer through netem with loss): every segment, retransmission, SACK block, phase and sample drawn', async () => {
  const { records, conn } = await recordLossyTransfer({ seed: 3, bytes: 150_000, loss: 0.03 });
  const frames = records.filter((r): r is FrameRecord & { tcp: NonNullable<FrameRecord['tcp']> } => r.type === 'frame' && r.tcp?.conn === conn);
  const sent = frames.filter((f) => f.dir === 'out' && (f.tcp.len > 0 || /[SF]/.test(f.tcp.flags)));
  const resent = sent.filter((f) => f.tcp.retransmit);
  assert.ok(resent.length > 0, 'the loss made the stack retransmit');
  const ts = timeSequenceSvg(records, conn);
  wellFormed(ts, 'real time-sequence');
  assert.is(countClass(ts, 'seg') + countClass(ts, 'seg retransmit'), sent.length);
  assert.is(countClass(ts, 'seg retransmit'), resent.length);
  assert.is(countClass(ts, 'rexmit-mark'), resent.length);
  for (const f of resent) assert.ok(ts.includes(`retransmission ${f.tcp.len > 0 ? `${f.tcp.rseq}:${f.tcp.rseq + f.tcp.len}` : 'FIN'} at ${f.t} ms`));
  const sackBlocks = frames.filter((f) => f.dir === 'in').reduce((n, f) => n + f.tcp.sack.length, 0);
  assert.ok(sackBlocks > 0, 'the receiver reported SACK blocks');
  assert.is(countClass(ts, 'sack') + countClass(ts, 'dsack'), sackBlocks);
  assert.match(ts, /class="ack-line" d="M[^"]+H/);

  const cc = records.filter((r) => r.type === 'cc' && r.conn === conn);
  const phases = new Set(cc.map((r) => (r.type === 'cc' ? r.phase : 'open')).filter((p) => p !== 'open'));
  assert.ok(phases.size > 0, 'the sender went through recovery');
  const cw = cwndSvg(records, conn);
  wellFormed(cw, 'real cwnd');
  for (const phase of phases) assert.ok(cw.includes(`data-phase="${phase}"`), phase);
  const rtt = rttSvg(records, conn);
  wellFormed(rtt, 'real rtt');
  assert.is(countClass(rtt, 'rtt-sample'), records.filter((r) => r.type === 'rtt' && r.conn === conn && r.sampleUs !== undefined && r.cause === 'sample').length);
  const ladder = ladderSvg(records, conn);
  wellFormed(ladder, 'real ladder');
  assert.ok(ladder.includes('data-state="TIME-WAIT"'), 'the active closer ends in TIME-WAIT');
  const last = [...records].reverse().find((r) => r.type === 'state' && r.conn === conn);
  assert.ok(last && last.type === 'state');
  const fsm = stateDiagramSvg(last.to, last);
  assert.ok(fsm.includes(`class="fsm-state current" data-state="${last.to}"`));
  assert.ok(fsm.includes(`class="fsm-edge taken" data-from="${last.from}" data-to="${last.to}"`));
});

test('every SVG drawn above is well-formed XML (python3 xml.etree)', () => {
  assert.ok(drawn.length > 20);
  // The parser does see a broken one.
  assert.equal(xmlErrors([{ name: 'broken', svg: '<svg><text>a & b</text></svg>' }]).length, 1);
  assert.equal(xmlErrors(drawn), []);
});

test.run();
