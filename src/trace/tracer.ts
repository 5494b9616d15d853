// The tracer: a probe (src/probe.ts) that turns what the stack reports into trace records
// (schema.ts), keeps those its filter passes (filter.ts) and writes them as text lines
// (format-text.js) or JSON lines. Stack.trace() starts one; many may run at once, each on
// the stack's probe hub, and the stack is unobserved again when the last one stops.
//
// Frames come from the Ethernet observer, one record per frame in and out. The TCP probe's
// report of a segment going out comes first (the layers below may still hold it for ARP):
// its reason is kept until its frame passes. Relative sequence numbers are reckoned from the
// ISNs of the connection, remembered until it closes so that TIME-WAIT's segments have them.

import { formatIpv4 } from '../ipv4/address.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../ipv4/ipv4-packet.ts';
import { formatMac } from '../link/ethernet.ts';
import type { Probe } from '../probe.ts';
import type { DecodedFrame } from '../probe-decode.ts';
import type { ArpEvent } from '../arp/arp.ts';
import type { TcpEvent, TcpState } from '../tcp/state.ts';
import type { CongestionSnapshot, RetransmitRule, SendReason, Tcb, TimeWaitView } from '../tcp/tcb.ts';
import { ACK, SYN, type TcpSegment } from '../tcp/tcp-segment.ts';
import { compileFilter, type FilterPredicate, LAYER_PROTOS, PROTO_BIT, type Subject } from './filter.js';
import { formatRecord } from './format-text.js';
import { icmpErrorNames, readQuoted, retransmitText, tcpFlagText, tcpOptionsText, tcpSummary } from './describe.ts';
import { type ArpRecord, type ConnId, type FrameRecord, type IcmpErrorRecord, type TcpFields, TRACE_FORMAT_VERSION, type TraceRecord } from './schema.ts';

export interface TraceOptions {
  /** tcpdump-like: 'tcp', 'udp', 'arp', 'icmp', 'port 80', 'host 10.0.0.1', 'src port 5000', with and/or/not. */
  filter?: string;
  /** Default 'text'. */
  format?: 'text' | 'json';
  /** Where lines go (default process.stdout); null: no lines. */
  output?: NodeJS.WritableStream | ((line: string) => void) | null;
  /** ANSI colour; default: the output is a TTY and NO_COLOR is not set. */
  colour?: boolean;
  /** Every record passing the filter: a fresh object the callee may keep. */
  onRecord?: (record: TraceRecord) => void;
}

export interface Trace {
  stop(): void;
  /** Records that passed the filter so far (the meta record included). */
  readonly records: number;
}

/** What a tracer needs of its stack. */
export interface TraceHost {
  readonly clock: { now(): number };
  readonly ip: number;
  readonly prefix: number;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly tcp: { find(localPort: number, remoteIp: number, remotePort: number): Tcb | undefined };
  /** Where a failing onRecord for the meta record is counted (as a probe's error is). */
  readonly ethCounters: { drop(reason: string): void };
}

/** `LOCALIP:PORT>REMOTEIP:PORT`. */
export function connId(localIp: number, localPort: number, remoteIp: number, remotePort: number): ConnId {
  return `${formatIpv4(localIp)}:${localPort}>${formatIpv4(remoteIp)}:${remotePort}`;
}

/** A TCP segment reported going out, waiting for its frame. */
interface PendingSegment {
  sport: number;
  dport: number;
  seq: number;
  flags: number;
  reason: SendReason;
}

interface ConnectionMemo {
  local: number;
  remote: number | null;
  /** cwnd and ssthresh at the last frame before TCP's first congestion report; null after it. */
  initial: { cwnd: number; ssthresh: number } | null;
}

/** Segments held for ARP may wait (up to ARP's queue); more than this and the oldest go. */
const MAX_PENDING = 256;
/** ssthresh before any loss (the congestion modules' "infinity"). */
const SSTHRESH_INFINITE = 0x7fffffff;

const RETRANSMIT_REASONS: ReadonlySet<SendReason> = new Set<SendReason>(['syn-retransmit', 'retransmit', 'fast-retransmit', 'partial-ack-retransmit', 'sack-retransmit', 'tail-loss-probe']);

function subject(protos: number, src: number | null, dst: number | null, sport: number | null, dport: number | null, eitherWay: boolean): Subject {
  return { protos, src, dst, sport, dport, eitherWay };
}

function connSubject(c: { localIp: number; localPort: number; remoteIp: number; remotePort: number }): Subject {
  return subject(PROTO_BIT.tcp | PROTO_BIT.ip | PROTO_BIT.ethernet, c.localIp, c.remoteIp, c.localPort, c.remotePort, true);
}

const us = (ms: number): number => Math.round(ms * 1000);
const ssthreshOrNull = (v: number): number | null => (v >= SSTHRESH_INFINITE || v === 0 ? null : v);

export class Tracer implements Probe {
  /**
   * Each connection's ISNs (ours, the peer's once known), until it is CLOSED, and its window
   * as last seen before TCP's first congestion report (whose "previous" is all zeros).
   */
  private readonly isns = new Map<ConnId, ConnectionMemo>();
  private readonly pending: PendingSegment[] = [];
  /** The frame being received, for the drops it causes (cleared at the end of the turn). */
  private current: { subject: Subject; passed: boolean; t: number } | null = null;
  private clearScheduled = false;

  constructor(
    private readonly host: TraceHost,
    private readonly filter: FilterPredicate | null,
    private readonly sink: (record: TraceRecord) => void,
  ) {}

  private passes(s: Subject): boolean {
    return this.filter === null || this.filter(s);
  }

  private readonly clearCurrent = (): void => {
    this.clearScheduled = false;
    this.current = null;
  };

  meta(startedAt: string): TraceRecord {
    const h = this.host;
    return { type: 'meta', t: h.clock.now(), version: TRACE_FORMAT_VERSION, address: `${formatIpv4(h.ip)}/${h.prefix}`, mac: formatMac(h.mac, 0), mtu: h.mtu, startedAt };
  }

  // -------------------------------------------------------------------------------------
  // Frames

  frame(direction: 'in' | 'out', f: DecodedFrame): void {
    const s = this.frameSubject(f);
    const passed = this.passes(s);
    if (direction === 'in') {
      this.current = { subject: s, passed, t: f.time };
      if (!this.clearScheduled) {
        this.clearScheduled = true;
        queueMicrotask(this.clearCurrent);
      }
    }
    // The ISNs and the pending reason are kept up to date for every TCP frame, shown or not.
    const tcp = f.tcp !== null && f.ipv4 !== null ? this.tcpFields(direction, f) : undefined;
    if (!passed) return;
    const ip = f.ipv4;
    const arp = f.arp;
    const record: FrameRecord = {
      type: 'frame',
      t: f.time,
      dir: direction,
      proto: f.tcp !== null ? 'tcp' : f.udp !== null ? 'udp' : f.icmp !== null ? 'icmp' : ip !== null ? (ip.protocol === 2 ? 'igmp' : 'ipv4') : arp !== null ? 'arp' : 'ethernet',
      len: f.len,
      src: ip !== null ? formatIpv4(ip.src) : arp !== null ? formatIpv4(arp.senderIp) : null,
      dst: ip !== null ? formatIpv4(ip.dst) : arp !== null ? formatIpv4(arp.targetIp) : null,
      summary: '',
    };
    if (f.error !== null) record.error = f.error;
    if (tcp !== undefined) {
      record.tcp = tcp;
      const error = f.error !== null ? ` [${f.error}]` : '';
      record.summary = `${record.src}.${tcp.sport} > ${record.dst}.${tcp.dport}: ${tcpSummary(tcp.flags, tcp.rseq, tcp.rack, (f.tcp!.flags & ACK) !== 0, tcp.win, tcp.options, tcp.len)}${error}`;
    } else {
      record.summary = f.describe();
    }
    const udp = f.udp;
    if (udp !== null) record.udp = { sport: udp.srcPort, dport: udp.dstPort, len: udp.dataLength };
    this.sink(record);
  }

  private frameSubject(f: DecodedFrame): Subject {
    const ip = f.ipv4;
    if (ip !== null) {
      const p = ip.protocol;
      const bits = PROTO_BIT.ethernet | PROTO_BIT.ip | (p === PROTO_TCP ? PROTO_BIT.tcp : p === PROTO_UDP ? PROTO_BIT.udp : p === PROTO_ICMP ? PROTO_BIT.icmp : p === 2 ? PROTO_BIT.igmp : 0);
      const ports = f.tcp ?? f.udp;
      return subject(bits, ip.src, ip.dst, ports?.srcPort ?? null, ports?.dstPort ?? null, false);
    }
    if (f.arp !== null) return subject(PROTO_BIT.ethernet | PROTO_BIT.arp, f.arp.senderIp, f.arp.targetIp, null, null, false);
    return subject(PROTO_BIT.ethernet, null, null, null, null, false);
  }

  private tcpFields(direction: 'in' | 'out', f: DecodedFrame): TcpFields {
    const ip = f.ipv4!;
    const seg = f.tcp!;
    const out = direction === 'out';
    const localIp = out ? ip.src : ip.dst;
    const remoteIp = out ? ip.dst : ip.src;
    const localPort = out ? seg.srcPort : seg.dstPort;
    const remotePort = out ? seg.dstPort : seg.srcPort;
    const conn = localIp === this.host.ip ? (this.host.tcp.find(localPort, remoteIp, remotePort) ?? null) : null;
    const id = connId(localIp, localPort, remoteIp, remotePort);
    let isn = this.isns.get(id);
    if (conn !== null) {
      if (isn === undefined) this.isns.set(id, (isn = { local: conn.snd.iss, remote: null, initial: { cwnd: 0, ssthresh: 0 } }));
      isn.local = conn.snd.iss;
      if (isn.initial !== null) {
        isn.initial.cwnd = conn.cc.cwnd;
        isn.initial.ssthresh = conn.cc.ssthresh;
      }
      const s = conn.state;
      if (s !== 'SYN-SENT' && s !== 'LISTEN' && s !== 'CLOSED') isn.remote = conn.rcv.irs;
    }
    const flags = seg.flags;
    // The SYN-ACK that answers ours: the peer's ISN is its sequence number.
    if (!out && (flags & SYN) !== 0 && isn !== undefined) isn.remote = seg.seq;
    const senderIsn = out ? (isn?.local ?? null) : (flags & SYN) !== 0 ? seg.seq : (isn?.remote ?? null);
    const receiverIsn = out ? (isn?.remote ?? null) : (isn?.local ?? null);
    const rel = (v: number, base: number | null): number => (base === null ? v : (v - base) >>> 0);
    const hasAck = (flags & ACK) !== 0;
    const sack: Array<[number, number]> = [];
    for (let i = 0; i < seg.sackCount; i++) sack.push([rel(seg.sackBlocks[2 * i]!, receiverIsn), rel(seg.sackBlocks[2 * i + 1]!, receiverIsn)]);
    // RFC 7323 2.2: a SYN's window is never scaled.
    const shift = (flags & SYN) !== 0 || conn === null ? 0 : out ? conn.rcv.wscale : conn.snd.wscale;
    const reason = out ? this.takePending(seg) : null;
    return {
      conn: conn !== null || isn !== undefined ? id : null,
      sport: seg.srcPort,
      dport: seg.dstPort,
      flags: tcpFlagText(flags),
      seq: seg.seq,
      ack: seg.ack,
      rseq: rel(seg.seq, senderIsn),
      rack: hasAck ? rel(seg.ack, receiverIsn) : seg.ack,
      win: seg.window,
      winBytes: seg.window * 2 ** shift,
      len: seg.payloadLength,
      options: tcpOptionsText(seg, sack),
      sack,
      reason,
      retransmit: reason !== null && RETRANSMIT_REASONS.has(reason),
    };
  }

  /** The reason reported for this segment when the TCP layer sent it. */
  private takePending(seg: TcpSegment): SendReason | null {
    const p = this.pending;
    for (let i = 0; i < p.length; i++) {
      const e = p[i]!;
      if (e.seq === seg.seq && e.sport === seg.srcPort && e.dport === seg.dstPort && e.flags === seg.flags) {
        p.splice(i, 1);
        return e.reason;
      }
    }
    return null;
  }

  // -------------------------------------------------------------------------------------
  // TCP's inside

  tcpSegment(direction: 'in' | 'out', _conn: Tcb | null, seg: TcpSegment, reason: SendReason | null): void {
    if (direction !== 'out' || reason === null) return;
    if (this.pending.length >= MAX_PENDING) this.pending.shift();
    this.pending.push({ sport: seg.srcPort, dport: seg.dstPort, seq: seg.seq, flags: seg.flags, reason });
  }

  tcpState(conn: Tcb | TimeWaitView, from: TcpState, to: TcpState, event: TcpEvent): void {
    const id = connId(conn.localIp, conn.localPort, conn.remoteIp, conn.remotePort);
    if (to === 'CLOSED') this.isns.delete(id);
    if (!this.passes(connSubject(conn))) return;
    this.sink({ type: 'state', t: this.host.clock.now(), conn: id, from, to, event: event.name, rfc: event.rfc });
  }

  tcpCongestion(conn: Tcb, previous: CongestionSnapshot, cause: string): void {
    const id = connId(conn.localIp, conn.localPort, conn.remoteIp, conn.remotePort);
    const memo = this.isns.get(id);
    let prev = previous;
    if (memo !== undefined && memo.initial !== null) {
      if (previous.cwnd === 0) prev = { cwnd: memo.initial.cwnd, ssthresh: memo.initial.ssthresh, phase: previous.phase };
      memo.initial = null;
    }
    if (!this.passes(connSubject(conn))) return;
    const cc = conn.cc;
    this.sink({
      type: 'cc',
      t: this.host.clock.now(),
      conn: id,
      cwnd: cc.cwnd,
      ssthresh: ssthreshOrNull(cc.ssthresh),
      phase: conn.recoveryPhase,
      prev: { cwnd: prev.cwnd, ssthresh: ssthreshOrNull(prev.ssthresh), phase: prev.phase },
      mss: cc.mss,
      cause: `${cc.name === 'cubic' ? 'CUBIC' : cc.name === 'newreno' ? 'NewReno' : cc.name}: ${cause}`,
    });
  }

  tcpRtt(conn: Tcb, cause: 'sample' | 'backoff'): void {
    if (!this.passes(connSubject(conn))) return;
    const rtt = conn.rtt;
    const minRtt = conn.rack.minRtt;
    this.sink({
      type: 'rtt',
      t: this.host.clock.now(),
      conn: connId(conn.localIp, conn.localPort, conn.remoteIp, conn.remotePort),
      cause,
      ...(cause === 'sample' ? { sampleUs: us(rtt.lastSample) } : {}),
      srttUs: us(rtt.srtt),
      rttvarUs: us(rtt.rttvar),
      rtoUs: us(rtt.rto),
      backoff: rtt.backoffs,
      ...(minRtt > 0 ? { minRttUs: us(minRtt) } : {}),
    });
  }

  tcpRetransmit(conn: Tcb, rule: RetransmitRule, seq: number, len: number, backoff: number): void {
    if (!this.passes(connSubject(conn))) return;
    const id = connId(conn.localIp, conn.localPort, conn.remoteIp, conn.remotePort);
    const rseq = (seq - conn.snd.iss) >>> 0;
    this.sink({ type: 'retransmit', t: this.host.clock.now(), conn: id, rseq, len, why: rule, backoff, text: retransmitText(rule, backoff, conn.recovery.dupAcks) });
  }

  tcpProbeSent(conn: Tcb, kind: 'zero-window' | 'keepalive', count: number): void {
    if (!this.passes(connSubject(conn))) return;
    this.sink({ type: 'probe', t: this.host.clock.now(), conn: connId(conn.localIp, conn.localPort, conn.remoteIp, conn.remotePort), kind, count });
  }

  // -------------------------------------------------------------------------------------
  // ARP, ICMP, drops

  arp(event: ArpEvent, ip: number, mac: Uint8Array | null, queued: number): void {
    if (!this.passes(subject(PROTO_BIT.ethernet | PROTO_BIT.arp, ip, ip, null, null, false))) return;
    const record: ArpRecord = { type: 'arp', t: this.host.clock.now(), event, ip: formatIpv4(ip) };
    if (mac !== null && (event === 'resolved' || event === 'updated')) record.mac = formatMac(mac, 0);
    if (event === 'resolved' || event === 'failed') record.queued = queued;
    this.sink(record);
  }

  icmpError(direction: 'in' | 'out', type: number, code: number, buf: Buffer, off: number, len: number): void {
    const quoted = readQuoted(buf, off, len);
    const bits = PROTO_BIT.ethernet | PROTO_BIT.ip | PROTO_BIT.icmp | (quoted?.protoBit ?? 0);
    if (!this.passes(subject(bits, quoted?.src ?? null, quoted?.dst ?? null, quoted?.sport ?? null, quoted?.dport ?? null, true))) return;
    const { kind, codeName } = icmpErrorNames(type, code);
    const record: IcmpErrorRecord = { type: 'icmp-error', t: this.host.clock.now(), dir: direction, kind, code, codeName, about: quoted?.text ?? 'a datagram too short to read' };
    // An error about a segment of ours goes to its connection (RFC 1122 4.2.3.9).
    if (direction === 'in' && quoted !== null && quoted.protocol === PROTO_TCP && quoted.src === this.host.ip && quoted.sport !== null) {
      if (this.host.tcp.find(quoted.sport, quoted.dst, quoted.dport!) !== undefined) record.conn = connId(quoted.src, quoted.sport, quoted.dst, quoted.dport!);
    }
    this.sink(record);
  }

  drop(layer: string, reason: string): void {
    const now = this.host.clock.now();
    const c = this.current;
    // A drop while a frame is being received is that frame's; otherwise (a timer's) only its layer is known.
    if (c !== null && c.t === now) {
      if (!c.passed) return;
    } else if (!this.passes(subject(LAYER_PROTOS[layer] ?? PROTO_BIT.ethernet, null, null, null, null, false))) return;
    this.sink({ type: 'drop', t: now, layer, reason });
  }
}

/** A function writing one line, or null for no lines. */
function lineWriter(output: TraceOptions['output']): ((line: string) => void) | null {
  if (output === null) return null;
  if (typeof output === 'function') return output;
  const stream = output ?? process.stdout;
  return (line) => void stream.write(line + '\n');
}

function defaultColour(output: TraceOptions['output']): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  const stream = output === undefined ? process.stdout : output;
  return stream !== null && typeof stream !== 'function' && (stream as { isTTY?: boolean }).isTTY === true;
}

/**
 * Starts a trace on host; `attach` puts the tracer on the stack's probe hub and returns the
 * function that takes it off. Throws TraceFilterError for a filter that does not parse.
 */
export function startTrace(host: TraceHost, options: TraceOptions, attach: (probe: Probe) => () => void): Trace {
  const filter = options.filter !== undefined && options.filter.trim() !== '' ? compileFilter(options.filter) : null;
  const format = options.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new TypeError(`trace format must be 'text' or 'json', not ${JSON.stringify(format)}`);
  const write = lineWriter(options.output);
  const colour = options.colour ?? defaultColour(options.output);
  const onRecord = options.onRecord;
  let records = 0;
  let stopped = false;
  const sink = (record: TraceRecord): void => {
    if (stopped) return;
    records++;
    if (write !== null) write(format === 'json' ? JSON.stringify(record) : formatRecord(record, colour));
    // Last: a callee that throws (counted by the probe hub) loses nothing of the line.
    if (onRecord !== undefined) onRecord(record);
  };
  const tracer = new Tracer(host, filter, sink);
  try {
    sink(tracer.meta(new Date().toISOString()));
  } catch (err) {
    host.ethCounters.drop(`probe-error: ${(err as Error).message}`);
  }
  const detach = attach(tracer);
  return {
    stop(): void {
      if (stopped) return;
      stopped = true;
      detach();
    },
    get records(): number {
      return records;
    },
  };
}
