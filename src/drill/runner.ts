// Runs a packetdrill script against a target (target.ts): the local host 192.168.0.1, which
// is tapstack on an in-memory link in virtual time (`--target stack`, stack-target.ts) or the
// host's Linux behind a TAP in real time (`--target kernel`, kernel/), while the runner plays
// the remote 192.0.2.1, as in packetdrill's default setup. Inbound lines are built and
// injected at their time; each outbound frame is checked against the script's next `>` line
// (flags, relative sequence numbers, ack, window, options, time within the tolerance); system
// calls go to the target's sockets. Time 0 of the script is the target's start.

import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatIpv4, parseIpv4 } from '../ipv4/address.ts';
import { ARP_REPLY, ARP_REQUEST, ARP_LEN, ArpPacket, emitArp } from '../arp/arp-packet.ts';
import { emitEthernet, ETH_HEADER_LEN, ETHERTYPE_ARP, parseMac } from '../link/ethernet.ts';
import type { TcpConfig } from '../tcp/config.ts';
import { ACK, SYN } from '../tcp/tcp-segment.ts';
import * as tcpInfoNames from '../tcp/info.ts';
import { parseAsserts } from './assert.ts';
import { DrillParseError, type DrillEvent, type DrillScript, type EventTime, type PacketLine, parseScript, type SyscallLine, type TcpOption } from './parse.ts';
import { type FlowPorts, StackTarget } from './stack-target.ts';
import { DrillUnsupported } from './sysctl.ts';
import { GATEWAY_IP, GATEWAY_MAC as GATEWAY_MAC_TEXT, LOCAL_IP, LOCAL_MAC, REMOTE_IP, type DrillTarget, type SyscallOutcome } from './target.ts';
import { buildInboundFrame, decodeOutbound, encodeOptions, flagsFromLetters, formatOptions, lettersFromFlags, type WireSegment } from './wire.ts';

export { LOCAL_IP, REMOTE_IP };
const STACK_MAC = parseMac(LOCAL_MAC)!;
const GATEWAY_MAC = parseMac(GATEWAY_MAC_TEXT)!;
/** packetdrill's default port for the local server and for connect(); the remote's port for a passive open. */
export const LOCAL_PORT = 8080;
const PASSIVE_REMOTE_PORT = 48879;
/** The numeric constants of info.ts (TCP_CA_*, TCPI_OPT_*, TCP_INFINITE_SSTHRESH) by name. */
const CONSTANT_NAMES: Record<string, number> = {};
for (const [name, value] of Object.entries(tcpInfoNames)) if (typeof value === 'number') CONSTANT_NAMES[name] = value;

/** packetdrill's default tolerance_usecs. */
export const DEFAULT_TOLERANCE_USECS = 4000;
/** How long a `*` outbound line or a blocking call with no end time may wait at most. */
const MAX_WAIT_MS = 600_000;

export interface DrillOptions {
  toleranceUsecs?: number;
  /** Match every outbound segment to one script line (no merging of TSO-sized lines). */
  strictSegments?: boolean;
  /**
   * The stack's configuration before the script's own settings: the machine's sysctl
   * defaults a script without defaults.sh runs with (packetdrill v2.0's scripts expect the
   * wscale 6 that the tcp_rmem of their time gave).
   */
  tcp?: Partial<TcpConfig>;
  /** Print every packet in and out as it goes (packetdrill's --verbose), with its time. */
  verbose?: (line: string) => void;
  /** The local host the script runs against; default the stack (StackTarget). */
  target?: (context: TargetContext) => DrillTarget;
}

/** What a target is made with: the stack's configuration, the flow's ports, the gateway's ARP frames. */
export interface TargetContext {
  config: Partial<TcpConfig>;
  flow: FlowPorts;
  gatewayArp: (op: number, ethDst: Uint8Array) => Buffer;
}

export type DrillResult =
  | { verdict: 'PASS' }
  | { verdict: 'FAIL'; line: number; text: string; message: string }
  | { verdict: 'UNSUPPORTED'; construct: string; line: number | null };

/** A check that failed, at a script line. */
export class DrillFailure extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

/** Unsupported at a line of the script. */
class UnsupportedAt extends Error {
  constructor(
    readonly line: number | null,
    readonly construct: string,
  ) {
    super(construct);
  }
}

export async function runDrillFile(path: string, options: DrillOptions = {}): Promise<DrillResult> {
  return runDrillSource(readFileSync(path, 'utf8'), dirname(path), options);
}

export async function runDrillSource(source: string, scriptDir: string, options: DrillOptions = {}): Promise<DrillResult> {
  let script: DrillScript;
  try {
    script = parseScript(source);
  } catch (err) {
    if (err instanceof DrillParseError) return { verdict: 'FAIL', line: err.line, text: lineText(source, err.line), message: `parse error: ${err.message}` };
    throw err;
  }
  const runner = new ScriptRunner(script, scriptDir, options);
  try {
    await runner.prepare();
    await runner.run();
    return { verdict: 'PASS' };
  } catch (err) {
    if (err instanceof UnsupportedAt) return { verdict: 'UNSUPPORTED', construct: err.construct, line: err.line };
    if (err instanceof DrillFailure) return { verdict: 'FAIL', line: err.line, text: lineText(source, err.line), message: err.message };
    throw err;
  } finally {
    await runner.close();
  }
}

function lineText(source: string, line: number): string {
  return (source.split('\n')[line - 1] ?? '').trim();
}

/** The connection the script's packets belong to, as packetdrill tracks its socket under test. */
interface Flow {
  localPort: number;
  remotePort: number;
  /** The stack's ISN, learned from its SYN or SYN-ACK; relative sequence numbers start there. */
  localIsn: number | null;
  /** The stack's TS val minus the script's, from the first outbound timestamp (inbound ecr is mapped by it). */
  tsValOffset: number | null;
}

/** A blocking call in progress, as packetdrill's syscall thread runs it. */
interface Blocking {
  event: DrillEvent;
  call: SyscallLine;
  /** Its start and the script's end time, in ms. */
  startMs: number;
  endMs: number | null;
  poll: () => SyscallOutcome | null;
}

class ScriptRunner {
  readonly target: DrillTarget;
  private readonly toleranceMs: number;
  private readonly strict: boolean;
  private readonly verbose: ((line: string) => void) | undefined;
  private readonly outbound: WireSegment[] = [];
  readonly flow: Flow = { localPort: LOCAL_PORT, remotePort: PASSIVE_REMOTE_PORT, localIsn: null, tsValOffset: null };
  private blocking: Blocking | null = null;
  /**
   * A blocking call that returned wrongly: reported when the script's thread next makes a
   * call or ends, as packetdrill's syscall thread reports it (packet lines go on meanwhile).
   */
  private blockingFailure: DrillFailure | null = null;
  /** --tcp_ts_tick_usecs: outbound TS val is checked, counted in ticks of this many ms (0: ignored). */
  private readonly tsTickMs: number;
  private ipId = 1;
  private readonly localIp = parseIpv4(LOCAL_IP)!;
  private readonly remoteIp = parseIpv4(REMOTE_IP)!;

  constructor(
    private readonly script: DrillScript,
    private readonly scriptDir: string,
    options: DrillOptions,
  ) {
    const scriptTolerance = script.options.get('tolerance_usecs');
    const usecs = scriptTolerance !== undefined ? Number(scriptTolerance) : (options.toleranceUsecs ?? DEFAULT_TOLERANCE_USECS);
    this.toleranceMs = usecs / 1000;
    const context: TargetContext = { config: { ...options.tcp }, flow: this.flow, gatewayArp: (op, ethDst) => this.arpFrame(op, ethDst, Buffer.alloc(6)) };
    this.target = options.target ? options.target(context) : new StackTarget(context.config, context.flow, context.gatewayArp);
    this.verbose = options.verbose;
    this.strict = options.strictSegments === true || script.options.has('strict_segments');
    this.tsTickMs = Number(script.options.get('tcp_ts_tick_usecs') ?? 0) / 1000;
  }

  /** Checks every construct before anything runs, applies the configuration, starts the stack. */
  async prepare(): Promise<void> {
    for (const u of this.script.unknown) throw new UnsupportedAt(null, u);
    for (const [name, value] of this.script.options) {
      const fine =
        name === 'tolerance_usecs' ||
        name === 'strict_segments' ||
        name === 'tcp_ts_tick_usecs' ||
        (name === 'local_ip' && value === LOCAL_IP) ||
        (name === 'remote_ip' && value === REMOTE_IP) ||
        (name === 'ip_version' && value === 'ipv4');
      if (!fine) throw new UnsupportedAt(null, `option --${name}${value ? `=${value}` : ''}`);
    }
    for (const e of this.script.events) {
      try {
        const a = e.action;
        if (a.type === 'packet') {
          if (a.extras.length > 0) throw new DrillUnsupported(`packet ${a.extras.join(', ')}`);
          if (a.direction === '<' && a.options === 'any') throw new DrillUnsupported('<...> options on an inbound packet');
          if (a.options !== null && a.options !== 'any') for (const o of a.options) if (o.kind === 'other') throw new DrillUnsupported(`TCP option ${o.name}`);
          if (a.urg !== null || a.flags.includes('U')) throw new DrillUnsupported('urgent data');
          if (a.flags.includes('E') || a.flags.includes('W')) throw new DrillUnsupported('ECN flags');
        } else if (a.type === 'syscall') this.target.checkSupported(a);
        else if (a.type === 'code') parseAsserts(a.text);
      } catch (err) {
        if (err instanceof DrillUnsupported) throw new UnsupportedAt(e.line, err.message);
        throw err;
      }
    }
    // The init command and every command before the first other event configure the stack.
    try {
      if (this.script.initCommand) this.target.command(this.script.initCommand.text, this.scriptDir);
    } catch (err) {
      if (err instanceof DrillUnsupported) throw new UnsupportedAt(null, err.message);
      throw err;
    }
    await this.target.start();
  }

  private arpFrame(op: number, ethDst: Uint8Array, targetMac: Uint8Array): Buffer {
    const frame = Buffer.alloc(60);
    emitEthernet(frame, 0, ethDst, GATEWAY_MAC, ETHERTYPE_ARP);
    emitArp(frame, ETH_HEADER_LEN, { op, senderMac: GATEWAY_MAC, senderIp: parseIpv4(GATEWAY_IP)!, targetMac: Buffer.from(targetMac), targetIp: this.localIp });
    return frame;
  }

  async close(): Promise<void> {
    await this.target.close();
  }

  /** Script seconds to clock ms. */
  private ms(seconds: number): number {
    return seconds * 1000;
  }

  private formatTime(ms: number): string {
    // Milliseconds as packetdrill's scripts write them (0.310s), microseconds when there are any.
    return `${(ms / 1000).toFixed(Number.isInteger(Math.round(ms * 1e6) / 1e6) ? 3 : 6)}s`;
  }

  async run(): Promise<void> {
    // Relative times count from the previous event (from an outbound packet's actual time).
    let baseMs = 0;
    for (const event of this.script.events) {
      const a = event.action;
      const window = this.window(event.time, baseMs);
      switch (a.type) {
        case 'packet':
          if (a.direction === '<') {
            await this.advanceTo(window.from);
            this.inject(event, a);
            baseMs = window.from;
          } else {
            baseMs = await this.expectOutbound(event, a, window);
          }
          break;
        case 'syscall':
          await this.finishBlocking(window.from);
          await this.advanceTo(window.from);
          await this.syscall(event, a, window.from, baseMs);
          baseMs = window.from;
          break;
        case 'command':
          await this.advanceTo(window.from);
          try {
            this.target.command(a.text, this.scriptDir);
          } catch (err) {
            if (err instanceof DrillUnsupported) throw new UnsupportedAt(event.line, err.message);
            throw err;
          }
          baseMs = window.from;
          break;
        case 'code':
          await this.advanceTo(window.from);
          this.runAsserts(event, a.text);
          baseMs = window.from;
          break;
      }
    }
    await this.finishBlocking(null);
  }

  /** The times an event may happen at, in ms; `any` is open-ended. */
  private window(time: EventTime, baseMs: number): { from: number; to: number; any: boolean } {
    const now = this.target.now();
    switch (time.kind) {
      case 'absolute':
        return { from: this.ms(time.at), to: this.ms(time.at), any: false };
      case 'relative':
        return { from: baseMs + this.ms(time.at), to: baseMs + this.ms(time.at), any: false };
      case 'range': {
        const base = time.relative ? baseMs : 0;
        return { from: base + this.ms(time.from), to: base + this.ms(time.to), any: false };
      }
      case 'any':
        return { from: now, to: now + MAX_WAIT_MS, any: true };
    }
  }

  // --- Time ---------------------------------------------------------------------------

  /** Lets the target's time reach `untilMs` (or `done` come true), taking its frames as they come. */
  async advanceTo(untilMs: number, done?: () => boolean): Promise<boolean> {
    for (let steps = 0; steps < 1_000_000; steps++) {
      await this.target.settle();
      this.drain();
      this.pollBlocking();
      if (done?.()) return true;
      if (!(await this.target.advance(untilMs))) {
        await this.target.settle();
        this.drain();
        this.pollBlocking();
        return done?.() ?? true;
      }
    }
    throw new DrillFailure(0, 'the target keeps arming timers due at once (a timer loop)');
  }

  /** Takes the frames the stack sent: TCP segments to check, ARP requests answered. */
  private drain(): void {
    for (const { at, frame } of this.target.take()) {
      if (frame.length >= ETH_HEADER_LEN + ARP_LEN && frame.readUInt16BE(12) === ETHERTYPE_ARP) {
        const arp = new ArpPacket();
        if (!arp.parse(frame, ETH_HEADER_LEN, frame.length - ETH_HEADER_LEN) && arp.op === ARP_REQUEST) {
          this.target.inject(this.arpFrame(ARP_REPLY, STACK_MAC, STACK_MAC));
        }
        continue;
      }
      const seg = decodeOutbound(frame, at);
      if (seg) {
        this.verbose?.(this.formatActual(seg));
        this.outbound.push(seg);
      }
    }
  }

  // --- Inbound ------------------------------------------------------------------------

  private inject(event: DrillEvent, p: PacketLine): void {
    const flags = flagsFromLetters(p.flags);
    const isn = this.flow.localIsn ?? 0;
    if (p.end - p.start !== p.length) throw new DrillFailure(event.line, `inconsistent sequence range ${p.start}:${p.end}(${p.length})`);
    // A SYN with no ACK opens a connection to the script's server.
    const [srcPort, dstPort] = p.ports ?? [this.flow.remotePort, this.flow.localPort];
    const options = p.options === null || p.options === 'any' ? [] : p.options.map((o) => this.mapInboundOption(o));
    let encoded: Buffer;
    try {
      encoded = encodeOptions(options);
    } catch (err) {
      if (err instanceof DrillUnsupported) throw new UnsupportedAt(event.line, err.message);
      throw err;
    }
    const frame = buildInboundFrame(
      STACK_MAC,
      GATEWAY_MAC,
      {
        src: this.remoteIp,
        dst: this.localIp,
        srcPort,
        dstPort,
        // The remote's sequence numbers are the script's (its ISN is 0); acks count from ours.
        seq: p.start >>> 0,
        ack: p.ack !== null ? (p.ack + isn) >>> 0 : 0,
        flags,
        window: p.win ?? 65535,
        urgentPointer: 0,
        options: encoded,
        payloadLength: p.length,
      },
      this.ipId++,
    );
    this.verbose?.(`< ${p.flags || '-'} ${p.start}:${p.end}(${p.length})${p.ack !== null ? ` ack ${p.ack}` : ''} at ${this.formatTime(this.target.now())} (line ${event.line})`);
    this.target.inject(frame);
  }

  private mapInboundOption(o: TcpOption): TcpOption {
    const isn = this.flow.localIsn ?? 0;
    // SACK blocks acknowledge our data: relative to our ISN, as the ack field.
    if (o.kind === 'sack') return { kind: 'sack', blocks: o.blocks.map(([l, r]) => [(l + isn) >>> 0, (r + isn) >>> 0]) };
    // TS ecr echoes our TS val: the script's value moved by the offset learned from our first one.
    if (o.kind === 'TS') return { kind: 'TS', val: o.val, ecr: (o.ecr + (this.flow.tsValOffset ?? 0)) >>> 0 };
    return o;
  }

  // --- Outbound -----------------------------------------------------------------------

  /** Waits for the next outbound segment and checks it against p; returns its time (ms). */
  private async expectOutbound(event: DrillEvent, p: PacketLine, window: { from: number; to: number; any: boolean }): Promise<number> {
    const deadline = window.to + this.toleranceMs;
    await this.advanceTo(deadline, () => this.outbound.length > 0);
    const first = this.outbound[0];
    if (!first) throw new DrillFailure(event.line, `expected ${this.formatExpected(p)} at ${this.formatTime(window.from)}, no packet was sent by ${this.formatTime(deadline)}`);
    // In real time the rest of a burst may still be on its way: give it the tolerance to
    // arrive before the line is matched (the stack's burst is all there at its instant).
    if (!this.strict && this.target.kind === 'kernel' && first.payloadLength < p.length) {
      await this.advanceTo(Math.min(this.target.now() + this.toleranceMs, deadline), () => this.burstBytes() >= p.length);
    }
    const actual = this.takeSegment(p);
    if (actual.flags & SYN) this.flow.localIsn = (actual.seq - p.start) >>> 0;
    const problem = this.compare(p, actual);
    if (problem) throw new DrillFailure(event.line, `${problem}\n  expected: ${this.formatExpected(p)}\n  actual:   ${this.formatActual(actual)}`);
    if (!window.any && (actual.at < window.from - this.toleranceMs || actual.at > window.to + this.toleranceMs)) {
      throw new DrillFailure(
        event.line,
        `timing error: expected ${this.formatExpected(p)} at ${this.formatTime(window.from)}${window.to !== window.from ? `~${this.formatTime(window.to)}` : ''}, sent at ${this.formatTime(actual.at)} (tolerance ${this.toleranceMs * 1000} us)`,
      );
    }
    // The connection the script talks on is the one the stack answers on.
    this.flow.localPort = actual.srcPort;
    this.flow.remotePort = actual.dstPort;
    return actual.at;
  }

  /** Payload bytes of the queued segments that follow each other in sequence from the first. */
  private burstBytes(): number {
    let bytes = 0;
    let next: number | null = null;
    for (const s of this.outbound) {
      if (next !== null && s.seq !== next) break;
      bytes += s.payloadLength;
      next = (s.seq + s.payloadLength) >>> 0;
    }
    return bytes;
  }

  /**
   * The next segment for line p: as sent, or (unless strict) several sent back to back merged
   * into one line's length, as packetdrill sees a TSO super-frame, or the first part of a
   * longer one, the rest left for the next lines.
   */
  private takeSegment(p: PacketLine): WireSegment {
    const head = this.outbound.shift()!;
    if (this.strict || p.length === head.payloadLength) return head;
    if (head.payloadLength < p.length) {
      let merged = { ...head };
      for (;;) {
        const next = this.outbound[0];
        if (!next || next.seq !== ((merged.seq + merged.payloadLength) >>> 0) || next.ack !== merged.ack || next.at - merged.at > this.toleranceMs) break;
        if (merged.payloadLength + next.payloadLength > p.length || next.flags & SYN) break;
        this.outbound.shift();
        merged = { ...merged, flags: merged.flags | next.flags, payloadLength: merged.payloadLength + next.payloadLength, window: next.window };
      }
      return merged;
    }
    if (p.length > 0 && !(head.flags & SYN)) {
      // The rest keeps PSH and FIN, as the last segment of a split super-frame does.
      const tailFlags = head.flags;
      const part = { ...head, payloadLength: p.length, flags: head.flags & ~0x09 };
      this.outbound.unshift({ ...head, seq: (head.seq + p.length) >>> 0, payloadLength: head.payloadLength - p.length, flags: tailFlags });
      return part;
    }
    return head;
  }

  private compare(p: PacketLine, s: WireSegment): string | null {
    const want = flagsFromLetters(p.flags);
    if (s.flags !== want) return `bad outbound TCP flags: expected ${lettersFromFlags(want)}, actual ${lettersFromFlags(s.flags)}`;
    const rel = (s.seq - (this.flow.localIsn ?? 0)) >>> 0;
    if (rel !== p.start >>> 0) return `bad outbound TCP sequence number: expected ${p.start}, actual ${rel}`;
    if (s.payloadLength !== p.length) return `bad outbound TCP payload length: expected ${p.length}, actual ${s.payloadLength}`;
    if (p.ack !== null && s.ack !== p.ack >>> 0) return `bad outbound TCP ack: expected ${p.ack}, actual ${s.ack}`;
    if (p.win !== null && s.window !== p.win) return `bad outbound TCP window: expected ${p.win}, actual ${s.window}`;
    if (p.options === 'any') return null;
    const want_ = p.options ?? [];
    const same =
      want_.length === s.options.length &&
      want_.every((o, i) => {
        const a = s.options[i]!;
        if (a.kind !== o.kind) return false;
        switch (o.kind) {
          case 'mss':
          case 'wscale':
            return (a as typeof o).value === o.value;
          case 'sack': {
            const b = (a as typeof o).blocks;
            return b.length === o.blocks.length && b.every(([l, r], k) => l === o.blocks[k]![0] >>> 0 && r === o.blocks[k]![1] >>> 0);
          }
          case 'TS':
            // packetdrill ignores the TS val the kernel sends unless --tcp_ts_tick_usecs says its clock's tick.
            return (a as typeof o).ecr === o.ecr >>> 0 && this.tsValClose((a as typeof o).val, o.val);
          default:
            return true;
        }
      });
    if (!same) return 'bad outbound TCP options';
    const ts = s.options.find((o) => o.kind === 'TS');
    const wantTs = want_.find((o) => o.kind === 'TS');
    if (ts && wantTs && this.flow.tsValOffset === null && ts.kind === 'TS' && wantTs.kind === 'TS') this.flow.tsValOffset = (ts.val - wantTs.val) >>> 0;
    return null;
  }

  /** With a tick, our TS val less the learned offset is the script's, within the tolerance in ticks. */
  private tsValClose(actual: number, expected: number): boolean {
    if (this.tsTickMs <= 0 || this.flow.tsValOffset === null) return true;
    const drift = Math.abs(((actual - this.flow.tsValOffset - expected) | 0) * this.tsTickMs);
    return drift <= this.toleranceMs + this.tsTickMs;
  }

  private formatExpected(p: PacketLine): string {
    const ack = p.ack !== null ? ` ack ${p.ack}` : '';
    const win = p.win !== null ? ` win ${p.win}` : '';
    return `> ${p.flags || '-'} ${p.start}:${p.end}(${p.length})${ack}${win}${formatOptions(p.options)}`;
  }

  formatActual(s: WireSegment): string {
    const rel = (s.seq - (this.flow.localIsn ?? 0)) >>> 0;
    const ack = s.flags & ACK ? ` ack ${s.ack}` : '';
    return `> ${lettersFromFlags(s.flags)} ${rel}:${(rel + s.payloadLength) >>> 0}(${s.payloadLength})${ack} win ${s.window}${formatOptions(s.options)} at ${this.formatTime(s.at)} (${formatIpv4(this.localIp)}:${s.srcPort} > ${s.dstPort})`;
  }

  // --- System calls ------------------------------------------------------------------

  private async syscall(event: DrillEvent, call: SyscallLine, startMs: number, baseMs: number): Promise<void> {
    let started;
    try {
      started = this.target.syscalls.start(call);
    } catch (err) {
      if (err instanceof DrillUnsupported) throw new UnsupportedAt(event.line, err.message);
      throw err;
    }
    // `+t1...t2` ends t2 after the previous event, `t1...t2` at t2 (packetdrill's end_usecs).
    const relative = event.time.kind === 'relative' || (event.time.kind === 'range' && event.time.relative);
    const endMs = call.endTime !== null ? (relative ? baseMs : 0) + this.ms(call.endTime) : null;
    await this.target.settle();
    const done = started.poll();
    if (done) {
      this.checkOutcome(event, call, done, this.target.now(), startMs, endMs);
      return;
    }
    this.blocking = { event, call, startMs, endMs, poll: started.poll };
    this.pollBlocking();
  }

  /** A blocking call that can complete now is checked (its result and its time). */
  private pollBlocking(): void {
    const b = this.blocking;
    if (!b) return;
    const outcome = b.poll();
    if (!outcome) return;
    this.blocking = null;
    try {
      this.checkOutcome(b.event, b.call, outcome, this.target.now(), b.startMs, b.endMs);
    } catch (err) {
      if (!(err instanceof DrillFailure)) throw err;
      this.blockingFailure ??= err;
    }
  }

  /** Waits for a blocking call to return (before the next call, or at the end). */
  private async finishBlocking(nextStartMs: number | null): Promise<void> {
    const b = this.blocking;
    if (this.blockingFailure) throw this.blockingFailure;
    if (!b) return;
    const limit = (b.endMs ?? b.startMs) + this.toleranceMs;
    await this.advanceTo(Math.max(limit, nextStartMs ?? 0), () => this.blocking === null);
    if (this.blockingFailure) throw this.blockingFailure;
    if (this.blocking) {
      this.blocking = null;
      throw new DrillFailure(b.event.line, `${b.call.name}() still blocked at ${this.formatTime(this.target.now())}, expected it to return ${b.endMs !== null ? `at ${this.formatTime(b.endMs)}` : 'at once'}`);
    }
  }

  private checkOutcome(event: DrillEvent, call: SyscallLine, outcome: SyscallOutcome, atMs: number, startMs: number, endMs: number | null): void {
    const expectRet = this.target.syscalls.expectedReturn(call);
    const actual = `${outcome.ret}${outcome.errno ? ` ${outcome.errno}` : ''}`;
    const expected = `${expectRet}${call.errno ? ` ${call.errno}` : ''}`;
    if (expectRet !== null && (outcome.ret !== expectRet || (call.errno !== null && outcome.errno !== call.errno))) {
      throw new DrillFailure(event.line, `${call.name}() returned ${actual}, expected ${expected}${outcome.detail ? ` (${outcome.detail})` : ''}`);
    }
    if (outcome.mismatch) throw new DrillFailure(event.line, `${call.name}(): ${outcome.mismatch}`);
    const tol = this.toleranceMs;
    if (endMs !== null) {
      if (atMs < endMs - tol || atMs > endMs + tol) {
        throw new DrillFailure(event.line, `timing error: ${call.name}() returned at ${this.formatTime(atMs)}, expected at ${this.formatTime(endMs)} (tolerance ${tol * 1000} us)`);
      }
    } else if (atMs > startMs + tol) {
      throw new DrillFailure(event.line, `${call.name}() blocked until ${this.formatTime(atMs)}, expected it to return at once at ${this.formatTime(startMs)}`);
    }
  }

  // --- %{ }% asserts -----------------------------------------------------------------

  private runAsserts(event: DrillEvent, text: string): void {
    const info = this.target.syscalls.infoOfSocketUnderTest() as Record<string, unknown> | null;
    if (!info) throw new DrillFailure(event.line, 'no socket for the tcpi_* assert');
    // packetdrill's Python sees the tcp_info fields and Linux's constants (TCP_CA_Recovery, TCPI_OPT_SACK).
    const names: Record<string, unknown> = { ...CONSTANT_NAMES, ...info };
    for (const a of parseAsserts(text)) {
      let ok: number | boolean;
      try {
        ok = a.evaluate(names);
      } catch (err) {
        if (err instanceof DrillUnsupported) throw new UnsupportedAt(event.line, err.message);
        throw err;
      }
      if (!ok) {
        const names = [...new Set(a.text.match(/tcpi_[a-z_]+/g) ?? [])];
        const values = names.map((n) => `${n}=${String(info[n])}`).join(' ');
        throw new DrillFailure(event.line, `assert ${a.text} failed (${values})`);
      }
    }
  }
}
