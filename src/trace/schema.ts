// The trace's records: what `tapstack --trace --trace-format json` writes, one JSON object per
// line (JSON lines), what `stack.trace({ format: 'json' })` emits, what the live page streams
// and what `tapstack plot` and the page read back from a saved file. The text format is a
// rendering of the same records (src/trace/format-text.js), so both say the same things.
//
// Conventions:
// - `t` is the stack's clock in milliseconds (fractional allowed), as the probe reports it.
// - A connection is named from the stack's side, `LOCALIP:PORT>REMOTEIP:PORT` (ConnId).
// - Sequence numbers are given raw (`seq`, `ack`, as on the wire) and relative (`rseq`,
//   `rack`: offsets from the ISN of the direction they count, as tcpdump and Wireshark show
//   them; the SYN is relative 0, the first data byte 1). SACK blocks are relative too.
// - Times inside TCP (RTT, RTO) are in microseconds, as Linux's tcp_info; cwnd and
//   ssthresh are in bytes, with the MSS beside them to show segments.
// - A reader must ignore record types and fields it does not know (the format may grow);
//   `version` in the meta record changes only when a field changes meaning.

import type { SendReason, RecoveryPhase } from '../tcp/tcb.ts';
import type { TcpState } from '../tcp/state.ts';

export const TRACE_FORMAT_VERSION = 1;

/** `LOCALIP:PORT>REMOTEIP:PORT`, from the stack's side. */
export type ConnId = string;

/** The first record of every trace. */
export interface MetaRecord {
  type: 'meta';
  t: number;
  version: typeof TRACE_FORMAT_VERSION;
  /** The stack's address (A.B.C.D/N), its MAC and MTU. */
  address: string;
  mac: string;
  mtu: number;
  /** Wall-clock time (ISO 8601) at the start, for the reader; `t` stays the stack's clock. */
  startedAt: string;
}

/** A TCP segment's fields in a frame record. */
export interface TcpFields {
  /** The connection it belongs to, or null (no connection took it, or it answers none). */
  conn: ConnId | null;
  sport: number;
  dport: number;
  /** tcpdump's notation without brackets: 'S', 'S.', '.', 'P.', 'F.', 'R', 'R.', 'FP.' ... */
  flags: string;
  seq: number;
  ack: number;
  /** Relative to the sender's ISN / the receiver's ISN; equal to seq/ack when unknown. */
  rseq: number;
  rack: number;
  /** The window field as sent, and in bytes after the sender's window scale (RFC 7323 2.3). */
  win: number;
  winBytes: number;
  /** Payload length. */
  len: number;
  /** tcpdump's option text without brackets: 'mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7'. */
  options: string;
  /** SACK blocks, relative [left, right), as the segment carries them (a D-SACK first). */
  sack: Array<[number, number]>;
  /** Out only: why the stack sent it (tcb.ts SendReason). Null on input. */
  reason: SendReason | null;
  /** Out only: the segment carries data sent before (any retransmission reason). */
  retransmit: boolean;
}

/** A frame in or out, as the probe saw it. */
export interface FrameRecord {
  type: 'frame';
  t: number;
  dir: 'in' | 'out';
  /** The highest layer read: 'arp', 'icmp', 'igmp', 'udp', 'tcp', 'ipv4' (other protocol) or 'ethernet'. */
  proto: 'ethernet' | 'arp' | 'ipv4' | 'icmp' | 'igmp' | 'udp' | 'tcp';
  /** Frame length in bytes. */
  len: number;
  /** IPv4 (or ARP sender/target) addresses; null for a frame without them. */
  src: string | null;
  dst: string | null;
  /** One line in tcpdump's words, without time and direction: what the text format prints. */
  summary: string;
  /** Why the frame could not be read further (a layer's drop reason), or absent. */
  error?: string;
  tcp?: TcpFields;
  /** UDP ports and payload length. */
  udp?: { sport: number; dport: number; len: number };
}

/** A state change and the rule that made it (src/tcp/state.ts TCP_EVENTS). */
export interface StateRecord {
  type: 'state';
  t: number;
  conn: ConnId;
  from: TcpState;
  to: TcpState;
  /** The event's words ('FIN received') and its RFC section ('RFC 9293 3.10.7.4, eighth'). */
  event: string;
  rfc: string;
}

/** A retransmission and why (also visible as the frame's reason; this says it in words). */
export interface RetransmitRecord {
  type: 'retransmit';
  t: number;
  conn: ConnId;
  rseq: number;
  len: number;
  /** 'rto' (with backoff), 'rack', 'dupacks', 'sack', 'partial-ack', 'tlp', 'syn'. */
  why: 'rto' | 'rack' | 'dupacks' | 'sack' | 'partial-ack' | 'tlp' | 'syn';
  /** RTO backoff count (0 without) for 'rto' and 'syn'. */
  backoff: number;
  /** The rule in words, e.g. 'RTO expired, backoff 2 (RFC 6298 5.5)'. */
  text: string;
}

/** cwnd, ssthresh or the recovery phase changed. */
export interface CongestionRecord {
  type: 'cc';
  t: number;
  conn: ConnId;
  /** Bytes; ssthresh null while it is "infinite" (before the first loss). */
  cwnd: number;
  ssthresh: number | null;
  phase: RecoveryPhase;
  prev: { cwnd: number; ssthresh: number | null; phase: RecoveryPhase };
  mss: number;
  /** The algorithm and rule, e.g. 'CUBIC beta on loss', 'slow start', 'undo (DSACK)'. */
  cause: string;
}

/** An RTT sample or an RTO backoff (RFC 6298). */
export interface RttRecord {
  type: 'rtt';
  t: number;
  conn: ConnId;
  cause: 'sample' | 'backoff';
  /** The sample (µs), for cause 'sample'. */
  sampleUs?: number;
  srttUs: number;
  rttvarUs: number;
  /** The current RTO with backoff applied (µs), and the backoff count. */
  rtoUs: number;
  backoff: number;
  minRttUs?: number;
}

/** A zero-window (persist) or keepalive probe sent. */
export interface ProbeRecord {
  type: 'probe';
  t: number;
  conn: ConnId;
  kind: 'zero-window' | 'keepalive';
  /** The probe's count in this series (1 for the first). */
  count: number;
}

/** ARP: a request sent for an address, resolution, a failure, an entry refreshed. */
export interface ArpRecord {
  type: 'arp';
  t: number;
  event: 'request' | 'resolved' | 'failed' | 'updated';
  ip: string;
  /** The MAC learned (resolved, updated). */
  mac?: string;
  /** Datagrams that were waiting and are now sent (resolved) or dropped (failed). */
  queued?: number;
}

/** An ICMP error received or sent, and what it was about. */
export interface IcmpErrorRecord {
  type: 'icmp-error';
  t: number;
  dir: 'in' | 'out';
  /** 'destination unreachable', 'time exceeded', ... and the code's name ('port unreachable'). */
  kind: string;
  code: number;
  codeName: string;
  /** The quoted datagram in one line ('udp 10.0.0.2.5000 > 10.0.0.1.9'). */
  about: string;
  /** The connection it was handed to, if any. */
  conn?: ConnId;
}

/** A frame or segment dropped, by layer and reason (the same reasons as counters()). */
export interface DropRecord {
  type: 'drop';
  t: number;
  layer: string;
  reason: string;
}

export type TraceRecord =
  | MetaRecord
  | FrameRecord
  | StateRecord
  | RetransmitRecord
  | CongestionRecord
  | RttRecord
  | ProbeRecord
  | ArpRecord
  | IcmpErrorRecord
  | DropRecord;

export type TraceRecordType = TraceRecord['type'];

/** Every record type, for readers that check them and tests that must see each one. */
export const TRACE_RECORD_TYPES: readonly TraceRecordType[] = ['meta', 'frame', 'state', 'retransmit', 'cc', 'rtt', 'probe', 'arp', 'icmp-error', 'drop'];
