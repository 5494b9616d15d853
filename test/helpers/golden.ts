// Golden traces: every frame a stack hands to its link, one text line each, in virtual time,
// so that a refactoring can be checked to change nothing on the wire (test/unit/tcp-golden.test.ts).
//
// A line: `<time ms> <who> <frame>  #<first 12 hex of sha256 of the frame's bytes> [marks]`,
// where who is A/B (two stacks) or S/P (the harness's stack and the test playing its peer).
// TCP frames are written as tcpdump would (flags F S R P . U E W, absolute seq and ack, the
// raw window field, options); the hash pins every other byte (IPv4 id, TTL, checksums, payload).
// Marks say what happened to the frame after it was recorded: [drop] [dup] [reorder] [delay]
// [corrupt] from the seeded FaultyLink, [lost] from a scenario's own choice of frames to lose.

import { createHash } from 'node:crypto';
import type { FaultyLink, Link, Stack, TcpSocket, VirtualClock } from '../../src/index.ts';
import { formatIpv4 } from '../../src/index.ts';
import { ACK, CWR, ECE, FIN, PSH, RST, SYN, TcpSegment, URG } from '../../src/tcp/tcp-segment.ts';
import { parseArpFrame, parseIpv4Frame } from './frames.ts';
import { type HarnessOptions, TcpHarness } from './tcp-harness.ts';
import { type StackPair, stackPair } from './tcp-pair.ts';

const ARP_REQUEST = 1;
const PROTO_ICMP = 1;
const PROTO_TCP = 6;

export function shortHash(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 12);
}

function fmtTime(ms: number): string {
  return ms.toFixed(3).padStart(11);
}

/** tcpdump's flag letters, in its order: F S R P . U E W. */
export function tcpFlags(f: number): string {
  let s = '';
  if (f & FIN) s += 'F';
  if (f & SYN) s += 'S';
  if (f & RST) s += 'R';
  if (f & PSH) s += 'P';
  if (f & ACK) s += '.';
  if (f & URG) s += 'U';
  if (f & ECE) s += 'E';
  if (f & CWR) s += 'W';
  return s || 'none';
}

/** What a recorded TCP segment is, for scenarios that choose which frames to lose. */
export interface TcpInfo {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  payloadLength: number;
}

const seg = new TcpSegment();

/** Decodes a frame to one line (without the hash), and its TCP fields if it is TCP. */
export function describeFrame(frame: Buffer): { text: string; tcp: TcpInfo | null } {
  const arp = parseArpFrame(frame);
  if (arp) {
    const op = arp.op === ARP_REQUEST ? `request who-has ${formatIpv4(arp.targetIp)} tell ${formatIpv4(arp.senderIp)}` : `reply ${formatIpv4(arp.senderIp)} is-at ${arp.senderMac.toString('hex')}`;
    return { text: `ARP ${op}`, tcp: null };
  }
  const ip = parseIpv4Frame(frame);
  if (!ip) return { text: `frame len ${frame.length} (not IPv4 or ARP)`, tcp: null };
  const addr = `${formatIpv4(ip.src)} > ${formatIpv4(ip.dst)}`;
  if (ip.protocol === PROTO_ICMP) {
    const o = ip.payloadOffset;
    return { text: `ICMP ${addr} type ${ip.buf[o]} code ${ip.buf[o + 1]} len ${ip.payloadLength}`, tcp: null };
  }
  if (ip.protocol !== PROTO_TCP) return { text: `IPv4 ${addr} proto ${ip.protocol} len ${ip.payloadLength}`, tcp: null };
  const bad = seg.parse(ip.buf, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst);
  if (bad) return { text: `TCP ${addr} invalid: ${bad}`, tcp: null };
  const opts: string[] = [];
  if (seg.mss >= 0) opts.push(`mss ${seg.mss}`);
  if (seg.windowScale >= 0) opts.push(`wscale ${seg.windowScale}`);
  if (seg.sackPermitted) opts.push('sackOK');
  if (seg.hasTimestamp) opts.push(`TS val ${seg.tsVal} ecr ${seg.tsEcr}`);
  if (seg.sackCount > 0) {
    const blocks: string[] = [];
    for (let i = 0; i < seg.sackCount; i++) blocks.push(`${seg.sackBlocks[2 * i]}:${seg.sackBlocks[2 * i + 1]}`);
    opts.push(`sack ${blocks.join(' ')}`);
  }
  if (seg.malformedOptions) opts.push('malformed');
  const text =
    `${formatIpv4(ip.src)}.${seg.srcPort} > ${formatIpv4(ip.dst)}.${seg.dstPort}: [${tcpFlags(seg.flags)}] seq ${seg.seq} ack ${seg.ack} win ${seg.window}` +
    (opts.length ? ` [${opts.join(',')}]` : '') +
    ` len ${seg.payloadLength}`;
  return { text, tcp: { srcPort: seg.srcPort, dstPort: seg.dstPort, seq: seg.seq, ack: seg.ack, flags: seg.flags, payloadLength: seg.payloadLength } };
}

/** The lines of one scenario. */
export class Trace {
  readonly lines: string[] = [];
  constructor(readonly clock: { now(): number }) {}

  /** Records a frame; returns its TCP fields (null for others). */
  frame(who: string, buf: Buffer, off: number, len: number): { index: number; tcp: TcpInfo | null } {
    const frame = buf.subarray(off, off + len);
    const d = describeFrame(frame);
    this.lines.push(`${fmtTime(this.clock.now())} ${who} ${d.text}  #${shortHash(frame)}`);
    return { index: this.lines.length - 1, tcp: d.tcp };
  }

  /** Appends marks ([drop], ...) to a recorded line. */
  mark(index: number, marks: string[]): void {
    if (marks.length) this.lines[index] += ` [${marks.join(',')}]`;
  }

  /** A line of what the application saw or did. */
  note(who: string, text: string): void {
    this.lines.push(`${fmtTime(this.clock.now())} ${who} # ${text}`);
  }

  /** A final line, without time. */
  result(text: string): void {
    this.lines.push(`= ${text}`);
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

/** Decides whether a scenario loses a frame (by who sent it and its TCP fields). */
export type LoseRule = (who: string, tcp: TcpInfo | null, frame: Buffer) => boolean;

/**
 * Records every frame a stack hands to `link` (its Stack.link) before passing it on, by
 * wrapping the link object's send in place, so the stack runs on exactly the links the usual
 * helpers build. With a FaultyLink below, the change of its counters during the send says what
 * it did to the frame; `lose` lets the scenario lose chosen frames first.
 */
export function traceLink(link: Link, trace: Trace, who: string, faults: FaultyLink | null, lose?: LoseRule): void {
  const send = link.send.bind(link);
  link.send = (buf: Buffer, off: number, len: number): void => {
    const { index, tcp } = trace.frame(who, buf, off, len);
    if (lose?.(who, tcp, buf.subarray(off, off + len))) {
      trace.mark(index, ['lost']);
      return;
    }
    if (!faults) {
      send(buf, off, len);
      return;
    }
    const before = { ...faults.counters };
    send(buf, off, len);
    const c = faults.counters;
    const marks: string[] = [];
    const times = (n: number) => (n > 1 ? `x${n}` : '');
    if (c.dropped > before.dropped) marks.push('drop');
    if (c.duplicated > before.duplicated) marks.push('dup');
    if (c.corrupted > before.corrupted) marks.push(`corrupt${times(c.corrupted - before.corrupted)}`);
    if (c.reordered > before.reordered) marks.push(`reorder${times(c.reordered - before.reordered)}`);
    if (c.delayed > before.delayed) marks.push(`delay${times(c.delayed - before.delayed)}`);
    trace.mark(index, marks);
  };
}

export interface TracedPair extends StackPair {
  trace: Trace;
}

/**
 * stackPair (test/helpers/tcp-pair.ts: A at 10.0.0.1, B at 10.0.0.2, seeded faults) with both
 * stacks' sends traced from the end of its setup (the ARP exchange) on.
 */
export type PairOptions = NonNullable<Parameters<typeof stackPair>[0]> & { lose?: LoseRule };

export async function tracedPair(options: PairOptions = {}): Promise<TracedPair> {
  const { lose, ...pairOptions } = options;
  const p = await stackPair(pairOptions);
  const trace = new Trace(p.clock);
  traceLink(p.a.link, trace, 'A', p.faultsA, lose);
  traceLink(p.b.link, trace, 'B', p.faultsB, lose);
  return { ...p, trace };
}

export type TracedHarness = TcpHarness & { trace: Trace };

/** A TcpHarness whose stack's sends (S) and the peer's injected frames (P) are traced. */
export async function tracedHarness(options: HarnessOptions = {}): Promise<TracedHarness> {
  const h = await TcpHarness.create(options);
  const trace = new Trace(h.clock);
  const link = h.link;
  const send = link.send.bind(link);
  const inject = link.inject.bind(link);
  link.send = (buf: Buffer, off: number, len: number) => {
    trace.frame('S', buf, off, len);
    send(buf, off, len);
  };
  link.inject = (frame: Buffer) => {
    trace.frame('P', frame, 0, frame.length);
    inject(frame);
  };
  return Object.assign(h, { trace });
}

/** What one socket's application saw: bytes and events, written to the trace as they come. */
export class Watched {
  readonly events: string[] = [];
  received = 0;
  private readonly hash = createHash('sha256');
  constructor(
    readonly socket: TcpSocket,
    readonly name: string,
    trace: Trace,
    options: { data?: boolean } = {},
  ) {
    const ev = (e: string) => {
      this.events.push(e);
      trace.note(name, e);
    };
    socket.on('connect', () => ev('connect'));
    if (options.data !== false)
      socket.on('data', (d: Buffer) => {
        this.received += d.length;
        this.hash.update(d);
      });
    socket.on('end', () => ev('end'));
    socket.on('timeout', () => ev('timeout'));
    socket.on('error', (e: Error & { code?: string }) => ev(`error ${e.code ?? e.message}`));
    socket.on('close', (hadError: boolean) => ev(`close${hadError ? ' hadError' : ''}`));
  }
  /** Counts bytes read some other way (a paused socket's read()). */
  add(d: Buffer): void {
    this.received += d.length;
    this.hash.update(d);
  }
  summary(): string {
    return `${this.name} rx ${this.received} sha256 ${this.hash.copy().digest('hex').slice(0, 16)} events ${this.events.join(',') || '-'}`;
  }
}

/** Lets nextTick and setImmediate callbacks (stream events) run. */
export function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Advances virtual time by `ms` in steps, letting stream callbacks run after each. */
export async function run(clock: VirtualClock, ms: number, step = 1): Promise<void> {
  await tick();
  const end = clock.now() + ms;
  while (clock.now() < end) {
    clock.advance(Math.min(step, end - clock.now()));
    await tick();
  }
}

/** Advances in steps until done() or `limitMs` passed; returns done(). */
export async function runUntil(clock: VirtualClock, done: () => boolean, limitMs: number, step = 1): Promise<boolean> {
  await tick();
  const end = clock.now() + limitMs;
  while (!done() && clock.now() < end) {
    clock.advance(step);
    await tick();
  }
  return done();
}

/** Byte i of a stream: recognisable and position-dependent. */
export function pattern(direction: number, offset: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = ((offset + i) * 31 + direction * 7 + ((offset + i) >> 8)) & 255;
  return b;
}

/** The TCP layer's counters (rx, tx, drop reasons) as one line. */
export function tcpCounters(name: string, stack: Stack): string {
  const c = stack.counters().tcp;
  if (!c) return `${name} tcp -`;
  const drops = Object.entries(c.drops)
    .filter(([, n]) => n > 0)
    .sort(([x], [y]) => (x < y ? -1 : 1))
    .map(([k, n]) => `${k}=${n}`);
  return `${name} tcp rx ${c.rx} tx ${c.tx} drops ${drops.join(' ') || '-'}`;
}

/** First differing lines of two texts, with context, for a failure message. */
export function diffLines(expected: string, actual: string, context = 3, max = 12): string {
  const e = expected.split('\n');
  const a = actual.split('\n');
  let i = 0;
  while (i < e.length && i < a.length && e[i] === a[i]) i++;
  if (i === e.length && i === a.length) return '';
  const out: string[] = [`first difference at line ${i + 1} (expected ${e.length} lines, got ${a.length}):`];
  for (let k = Math.max(0, i - context); k < i; k++) out.push(`  ${e[k]}`);
  for (let k = i; k < Math.min(e.length, i + max); k++) out.push(`- ${e[k]}`);
  for (let k = i; k < Math.min(a.length, i + max); k++) out.push(`+ ${a[k]}`);
  return out.join('\n');
}
