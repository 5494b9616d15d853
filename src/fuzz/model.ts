// The remote's knowledge of one connection with the target, as a careful TCP peer keeps it:
// what it sent in its own sequence space, what the target sent in the target's (relative to
// the target's ISN), the target's advertised window, timestamps and the out-of-window ACK
// rate limit. The fuzz commands read it to build segments; the oracle reads it to decide
// what a correct target must answer. Sequence numbers here are 32-bit (they wrap).

import { ACK, FIN, RST, SYN } from '../tcp/tcp-segment.ts';
import type { OutboundSegment, PacketLine } from './target.ts';

export const seqAdd = (a: number, b: number): number => (a + b) >>> 0;
export const seqDiff = (a: number, b: number): number => (a - b) | 0;
export const seqLt = (a: number, b: number): boolean => seqDiff(a, b) < 0;
export const seqLe = (a: number, b: number): boolean => seqDiff(a, b) <= 0;
export const seqMax = (a: number, b: number): number => (seqLt(a, b) ? b : a);

/** The remote's sequence numbers of each new connection it opens (0 first, as packetdrill). */
export const REMOTE_ISN_STEP = 1_000_000;

export class RemoteModel {
  /** The remote's ISN of the current connection, and the next new byte's sequence number. */
  irs = 0;
  sndNxt = 1;
  /** Intervals [start, end) of the remote's sequence space it has sent (SYN and FIN count one). */
  sent: [number, number][] = [];
  /** Whether the remote sent its FIN, and its sequence number. */
  finSeq: number | null = null;
  /** The remote has sent a SYN on this connection (the target may ACK it). */
  synSent = false;

  /** The target's ISN is known (from its SYN or SYN-ACK) and its highest sequence end sent. */
  targetSynSeen = false;
  targetMax = 0;
  /** The highest ack the remote sent that the target took (relative to the target's ISN). */
  una = 0;
  /** What the remote pretends to have received (less than targetMax after a drop). */
  ackable = 0;
  /** The target's advertised right edge (remote's space), the largest seen; its latest ack. */
  rightEdge: number | null = null;
  lastTargetAck: number | null = null;
  /** The target advertised a window after its SYN (a SYN's window is a lower bound of what it takes). */
  windowAdvertised = false;
  /** Window scaling each way once both SYNs had it: the target's shift and the remote's. */
  targetWscale = 0;
  remoteWscale = 0;
  remoteOfferedWscale: number | null = null;
  targetOfferedWscale: number | null = null;
  targetOfferedTs = false;
  targetOfferedSack = false;
  /** Timestamps in use (both SYNs had TS), the remote's clock, the target's last TS val. */
  remoteOfferedTs = false;
  tsOk = false;
  tsVal = 1000;
  lastTargetTsVal: number | null = null;
  sackOk = false;
  remoteOfferedSack = false;
  /** The largest window the remote advertised, scaled (RFC 5961 5.2's MAX.SND.WND). */
  maxRemoteWnd = 0;
  /** When the target last sent an ACK that its out-of-window rate limit counts (Linux last_oow_ack_time). */
  lastOowAckAt = -Infinity;
  /** The last time each of the target's sequence numbers was sent, and when the remote last sent anything. */
  sentAt = new Map<number, number>();
  lastInboundAt = -Infinity;
  /** Data bytes read by the application, and whether its reading side is shut. */
  bytesRead = 0;
  readShut = false;
  /** The count of connections the remote opened (for its next ISN). */
  connections = 1;

  /** The remote starts over with a SYN from `isn` (its earlier SYN was refused): the target's side is kept. */
  restartRemote(isn: number): void {
    this.irs = isn;
    this.sndNxt = seqAdd(isn, 1);
    this.sent = [];
    this.finSeq = null;
    this.synSent = false;
  }

  /** A new connection from the remote: its next ISN, everything about the old one forgotten. */
  newConnection(isn?: number): number {
    const irs = isn ?? (this.connections * REMOTE_ISN_STEP) >>> 0;
    this.connections++;
    const fresh = new RemoteModel();
    Object.assign(this, fresh, { connections: this.connections, irs, sndNxt: seqAdd(irs, 1) });
    return irs;
  }

  /** The end of the bytes the remote sent without a hole from its ISN: all a target may ack. */
  contiguousEnd(): number {
    let end = this.irs;
    const sorted = [...this.sent].sort((a, b) => seqDiff(a[0], b[0]));
    for (const [s, e] of sorted) {
      if (seqLe(s, end) && seqLt(end, e)) end = e;
    }
    return end;
  }

  /** The highest sequence end the remote sent. */
  maxSent(): number {
    let end = this.irs;
    for (const [, e] of this.sent) end = seqMax(end, e);
    return end;
  }

  /** Whether what the remote sent has holes (the target then holds out-of-order data). */
  hasHoles(): boolean {
    return seqLt(this.contiguousEnd(), this.maxSent());
  }

  /** Data bytes the remote sent in order (SYN and FIN not counted). */
  contiguousDataBytes(): number {
    const end = this.contiguousEnd();
    let bytes = seqDiff(end, this.irs) - (this.synSent ? 1 : 0);
    if (this.finSeq !== null && seqLt(this.finSeq, end)) bytes -= 1;
    return Math.max(0, bytes);
  }

  /** Notes a segment the remote sent. */
  noteInbound(p: PacketLine, now: number): void {
    const syn = p.flags.includes('S');
    const rst = p.flags.includes('R');
    // A FIN before what the remote already sent is no end of its stream: an inconsistent old
    // duplicate (the target drops it as such).
    const finAt = seqAdd(p.start, p.length + (syn ? 1 : 0));
    const fin = p.flags.includes('F') && !(this.synSent && seqLt(finAt, this.contiguousEnd()));
    const len = p.length + (syn ? 1 : 0) + (fin ? 1 : 0);
    // Only what the target could take counts as sent: not a SYN on a synchronized connection
    // (it is challenged), not a segment far beyond the window or before the ISN.
    const start = p.start >>> 0;
    const plausible = !(syn && this.synSent) && (!this.synSent || (seqLt(this.irs, seqAdd(start, len)) && (this.rightEdge === null || seqLe(start, this.rightEdge))));
    if (!rst && len > 0 && plausible) this.sent.push([start, seqAdd(start, len)]);
    if (syn && !rst && !this.synSent) {
      // The remote's ISN is its first SYN's seq: what the target may ack counts from there.
      this.synSent = true;
      this.irs = p.start >>> 0;
      this.maxRemoteWnd = Math.max(this.maxRemoteWnd, p.win ?? 0);
      const options = p.options === null || p.options === 'any' ? [] : p.options;
      const ws = options.find((o) => o.kind === 'wscale');
      this.remoteOfferedWscale = ws && ws.kind === 'wscale' ? ws.value : null;
      this.remoteOfferedTs = options.some((o) => o.kind === 'TS');
      this.remoteOfferedSack = options.some((o) => o.kind === 'sackOK');
      this.negotiate();
    }
    if (fin && !rst && plausible && this.finSeq === null) {
      this.finSeq = seqAdd(p.start, len - 1);
      // What was sent beyond the FIN is not of this stream: the target drops it (Linux tcp_fin purges its out-of-order queue).
      const end = seqAdd(this.finSeq, 1);
      this.sent = this.sent.filter(([a]) => seqLt(a, end)).map(([a, b]): [number, number] => [a, seqLt(end, b) ? end : b]);
    }
    if (!rst && plausible) this.sndNxt = seqMax(this.sndNxt, seqAdd(p.start, len));
    // Any segment from the remote may make the target send again (dupacks, a resent SYN-ACK).
    this.lastInboundAt = now;
  }

  /** Notes a segment the target sent (after the oracle checked it). */
  noteOutbound(s: OutboundSegment): void {
    if (s.flags & RST) return;
    const len = s.payloadLength + (s.flags & SYN ? 1 : 0) + (s.flags & FIN ? 1 : 0);
    if (s.flags & SYN) {
      this.targetSynSeen = true;
      this.una = 0;
      const ws = s.options.find((o) => o.kind === 'wscale');
      this.targetOfferedWscale = ws && ws.kind === 'wscale' ? ws.value : null;
      this.targetOfferedTs = s.options.some((o) => o.kind === 'TS');
      this.targetOfferedSack = s.options.some((o) => o.kind === 'sackOK');
      this.negotiate();
    }
    if (len > 0) {
      const end = seqAdd(s.seq, len);
      if (!this.targetSynSeen || seqLt(this.targetMax, end)) {
        if (seqLe(this.ackable, this.targetMax) && this.ackable === this.targetMax) this.ackable = end;
        this.targetMax = end;
      }
      this.sentAt.set(s.seq, s.at);
    }
    if (s.flags & ACK) {
      this.lastTargetAck = s.ack;
      if (!(s.flags & SYN)) this.windowAdvertised = true;
      // The window in a SYN-ACK is never scaled (RFC 7323 2.2); the scaled windows after it
      // can only say multiples of 2^scale, so its edge counts rounded down to one (RFC 7323
      // 2.4: Linux's first ACK offers the SYN-ACK's 64240 as 62 << 10).
      const unit = 2 ** this.targetWscale;
      const edge = seqAdd(s.ack, s.flags & SYN ? Math.floor(s.window / unit) * unit : s.window * unit);
      this.rightEdge = this.rightEdge === null ? edge : seqMax(this.rightEdge, edge);
    }
    const ts = s.options.find((o) => o.kind === 'TS');
    if (ts && ts.kind === 'TS') this.lastTargetTsVal = ts.val;
  }

  /** Options in use once both SYNs are known (RFC 7323 2.2, 3.2; RFC 2018 2): each side offered them. */
  private negotiate(): void {
    const both = this.remoteOfferedWscale !== null && this.targetOfferedWscale !== null;
    this.targetWscale = both ? Math.min(14, this.targetOfferedWscale!) : 0;
    this.remoteWscale = both ? Math.min(14, this.remoteOfferedWscale!) : 0;
    this.tsOk = this.remoteOfferedTs && this.targetOfferedTs;
    this.sackOk = this.remoteOfferedSack && this.targetOfferedSack;
  }

  /** The remote's TS option for its next segment (its clock ticks once a segment). */
  nextTimestamp(): { kind: 'TS'; val: number; ecr: number } {
    this.tsVal = (this.tsVal + 1) >>> 0;
    return { kind: 'TS', val: this.tsVal, ecr: this.lastTargetTsVal ?? 0 };
  }
}
