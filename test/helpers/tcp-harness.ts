// Drives one stack segment by segment: the test plays the peer (10.0.0.1) by injecting TCP
// segments and checks each segment the stack (10.0.0.2) emits, in virtual time. Checkers
// compose like gVisor's checker package: expectSegment(seg, flags(SYN|ACK), seq(1), ack(2)).

import * as assert from 'uvu/assert';
import { ARP_REPLY, ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { PROTO_TCP } from '../../src/ipv4/ipv4-packet.ts';
import { parseMac } from '../../src/link/ethernet.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import type { TcpConfig } from '../../src/tcp/config.ts';
import type { Connection } from '../../src/tcp/connection.ts';
import { ACK, emitTcp, FIN, newTcpRepr, PSH, RST, SYN, tcpHeaderLength, TcpSegment } from '../../src/tcp/tcp-segment.ts';
import { arpFrame, ipv4Frame, ipv4Repr, parseArpFrame, parseIpv4Frame, RecordingLink } from './frames.ts';

export { ACK, FIN, PSH, RST, SYN };

export const PEER_IP = parseIpv4('10.0.0.1')!;
export const STACK_IP = parseIpv4('10.0.0.2')!;
export const PEER_MAC = parseMac('02:00:00:00:00:01')!;
export const STACK_MAC = parseMac('02:00:00:00:00:02')!;

/** A segment the stack sent, decoded. */
export interface Sent {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payload: Buffer;
  mss: number;
  windowScale: number;
  sackPermitted: boolean;
  hasTimestamp: boolean;
  tsVal: number;
  tsEcr: number;
  sackBlocks: number[];
}

/** What the test's peer sends. */
export interface Inject {
  srcPort?: number;
  dstPort: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  payload?: Buffer | string;
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  ts?: [number, number];
  sack?: number[];
}

export type Checker = (s: Sent) => string | null;

export function flags(f: number): Checker {
  return (s) => (s.flags === f ? null : `flags ${flagNames(s.flags)}, expected ${flagNames(f)}`);
}
export function seq(n: number): Checker {
  return (s) => (s.seq === n >>> 0 ? null : `seq ${s.seq}, expected ${n >>> 0}`);
}
export function ack(n: number): Checker {
  return (s) => (s.ack === n >>> 0 ? null : `ack ${s.ack}, expected ${n >>> 0}`);
}
export function window(n: number): Checker {
  return (s) => (s.window === n ? null : `window ${s.window}, expected ${n}`);
}
export function payloadLength(n: number): Checker {
  return (s) => (s.payload.length === n ? null : `payload ${s.payload.length} bytes, expected ${n}`);
}
export function payload(p: Buffer | string): Checker {
  const b = typeof p === 'string' ? Buffer.from(p) : p;
  return (s) => (s.payload.equals(b) ? null : `payload ${JSON.stringify(s.payload.toString())}, expected ${JSON.stringify(b.toString())}`);
}
export function mss(n: number): Checker {
  return (s) => (s.mss === n ? null : `MSS option ${s.mss}, expected ${n}`);
}
export function windowScale(n: number): Checker {
  return (s) => (s.windowScale === n ? null : `window scale ${s.windowScale}, expected ${n}`);
}
export function noOptions(): Checker {
  return (s) => (s.mss < 0 && s.windowScale < 0 && !s.sackPermitted && !s.hasTimestamp ? null : 'options present, expected none');
}
export function tsEcr(n: number): Checker {
  return (s) => (s.hasTimestamp && s.tsEcr === n ? null : `TSecr ${s.hasTimestamp ? s.tsEcr : 'absent'}, expected ${n}`);
}
export function ports(src: number, dst: number): Checker {
  return (s) => (s.srcPort === src && s.dstPort === dst ? null : `ports ${s.srcPort}->${s.dstPort}, expected ${src}->${dst}`);
}

export function flagNames(f: number): string {
  const n: string[] = [];
  if (f & SYN) n.push('SYN');
  if (f & FIN) n.push('FIN');
  if (f & RST) n.push('RST');
  if (f & PSH) n.push('PSH');
  if (f & ACK) n.push('ACK');
  return n.join('|') || 'none';
}

export function expectSegment(s: Sent | undefined, ...checks: Checker[]): Sent {
  assert.ok(s, 'expected a segment, none was sent');
  const errors = checks.map((c) => c(s!)).filter((e): e is string => e !== null);
  if (errors.length > 0) assert.unreachable(`segment ${describe(s!)}: ${errors.join('; ')}`);
  return s!;
}

export function describe(s: Sent): string {
  return `<${flagNames(s.flags)} seq=${s.seq} ack=${s.ack} win=${s.window} len=${s.payload.length}>`;
}

export interface HarnessOptions {
  tcp?: Partial<TcpConfig>;
  mtu?: number;
}

export class TcpHarness {
  readonly clock = new VirtualClock(1000);
  readonly link: RecordingLink;
  stack!: Stack;
  private readonly parsed = new TcpSegment();

  constructor(mtu = 1500) {
    this.link = new RecordingLink(mtu);
  }

  static async create(options: HarnessOptions = {}): Promise<TcpHarness> {
    const h = new TcpHarness(options.mtu);
    h.stack = await createStack({
      link: h.link,
      clock: h.clock,
      ip: '10.0.0.2/24',
      mac: '02:00:00:00:00:02',
      mtu: options.mtu,
      seed: 7,
      tcp: { timeWaitMs: 2000, ...options.tcp },
    });
    // Teach the stack the peer's MAC through an ARP request from it (RFC 826 merge).
    h.link.inject(
      arpFrame(Buffer.from('ffffffffffff', 'hex'), { op: ARP_REQUEST, senderMac: PEER_MAC, senderIp: PEER_IP, targetMac: Buffer.alloc(6), targetIp: STACK_IP }),
    );
    h.link.take();
    return h;
  }

  /** Sends a segment from the peer to the stack. */
  inject(o: Inject): void {
    const r = newTcpRepr();
    r.srcPort = o.srcPort ?? 40000;
    r.dstPort = o.dstPort;
    r.seq = o.seq >>> 0;
    r.ack = (o.ack ?? 0) >>> 0;
    r.flags = o.flags;
    r.window = o.window ?? 65535;
    r.mss = o.mss ?? -1;
    r.windowScale = o.windowScale ?? -1;
    r.sackPermitted = o.sackPermitted ?? false;
    if (o.ts) {
      r.hasTimestamp = true;
      r.tsVal = o.ts[0];
      r.tsEcr = o.ts[1];
    }
    if (o.sack) {
      r.sackCount = o.sack.length / 2;
      o.sack.forEach((v, i) => (r.sackBlocks[i] = v));
    }
    const data = typeof o.payload === 'string' ? Buffer.from(o.payload) : (o.payload ?? Buffer.alloc(0));
    const hl = tcpHeaderLength(r);
    const seg = Buffer.alloc(hl + data.length);
    data.copy(seg, hl);
    emitTcp(seg, 0, r, data.length, PEER_IP, STACK_IP);
    this.link.inject(ipv4Frame(STACK_MAC, PEER_MAC, ipv4Repr({ src: PEER_IP, dst: STACK_IP, protocol: PROTO_TCP }), seg));
  }

  /** The TCP segments the stack sent since the last call (answering its ARP requests). */
  sent(): Sent[] {
    const out: Sent[] = [];
    for (let round = 0; round < 3; round++) {
      let arpAnswered = false;
      for (const frame of this.link.take()) {
        const arp = parseArpFrame(frame);
        if (arp) {
          if (arp.op === ARP_REQUEST && arp.targetIp === PEER_IP) {
            this.link.inject(arpFrame(STACK_MAC, { op: ARP_REPLY, senderMac: PEER_MAC, senderIp: PEER_IP, targetMac: STACK_MAC, targetIp: STACK_IP }));
            arpAnswered = true;
          }
          continue;
        }
        const ip = parseIpv4Frame(frame);
        if (!ip || ip.protocol !== PROTO_TCP) continue;
        const s = this.parsed;
        const bad = s.parse(ip.buf, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst);
        assert.is(bad, null, 'the stack sent a TCP segment that does not validate');
        const blocks: number[] = [];
        for (let i = 0; i < s.sackCount * 2; i++) blocks.push(s.sackBlocks[i]!);
        out.push({
          srcPort: s.srcPort,
          dstPort: s.dstPort,
          seq: s.seq,
          ack: s.ack,
          flags: s.flags,
          window: s.window,
          payload: Buffer.from(ip.buf.subarray(s.payloadOffset, s.payloadOffset + s.payloadLength)),
          mss: s.mss,
          windowScale: s.windowScale,
          sackPermitted: s.sackPermitted,
          hasTimestamp: s.hasTimestamp,
          tsVal: s.tsVal,
          tsEcr: s.tsEcr,
          sackBlocks: blocks,
        });
      }
      if (!arpAnswered) break;
    }
    return out;
  }

  /** Exactly one segment was sent; returns it. */
  one(): Sent {
    const s = this.sent();
    if (s.length !== 1) assert.unreachable(`expected one segment, got ${s.length}: ${s.map(describe).join(' ')}`);
    return s[0]!;
  }

  none(): void {
    const s = this.sent();
    if (s.length !== 0) assert.unreachable(`expected no segment, got ${s.map(describe).join(' ')}`);
  }

  /** Advances virtual time, letting the streams' nextTicks and immediates run too. */
  async advance(ms: number, step = ms): Promise<void> {
    await flushMicrotasks();
    for (let t = 0; t < ms; t += step) {
      this.clock.advance(Math.min(step, ms - t));
      await flushMicrotasks();
    }
  }

  connection(localPort: number, remotePort = 40000): Connection | undefined {
    return this.stack.tcp.find(localPort, PEER_IP, remotePort);
  }

  /** The 4-tuple's state: its connection's, TIME-WAIT for a compact entry, else CLOSED. */
  stateOf(localPort: number, remotePort = 40000): string {
    const tcp = this.stack.tcp;
    return tcp.find(localPort, PEER_IP, remotePort)?.state ?? tcp.findTimeWait(localPort, PEER_IP, remotePort)?.state ?? 'CLOSED';
  }
}

/** Lets process.nextTick and setImmediate callbacks (stream events) run. */
export async function flushMicrotasks(): Promise<void> {
  await new Promise((r) => setImmediate(r));
}
