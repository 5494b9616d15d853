// Reassembly of IPv4 fragments (RFC 791 3.2, RFC 815, RFC 1122 3.3.2), with Linux's defences
// (net/ipv4/ip_fragment.c, net/ipv4/inet_fragment.c):
// - a datagram is identified by (source, destination, protocol, identification);
// - fragments may arrive in any order and more than once; each queue keeps its fragments
//   sorted by offset and is complete when they cover [0, total) with no hole;
// - a fragment that lies wholly inside data already received is a duplicate and ignored;
//   one that partly overlaps kills the whole datagram (Linux since 4.19, RFC 5722's rule
//   for IPv6), since overlaps are only ever used to smuggle bytes past filters;
// - memory is bounded: bytes held (counted with a per-fragment overhead, as Linux counts
//   skb truesize) and datagrams in progress are capped, and the oldest queues are evicted
//   to stay under the caps (ipfrag_high_thresh, 4 MB by default);
// - a datagram that with the first fragment's header would exceed 65,535 bytes is dropped
//   whole ("oversized IP packet", ip_frag_reasm);
// - a queue not complete 30 s after its first fragment arrived (ipfrag_time) is dropped,
//   and ICMP time exceeded (code 1) is sent if the fragment at offset 0 had arrived
//   (RFC 792, RFC 1122 3.3.2).

import type { Clock, Timer } from '../util/clock.ts';
import type { LayerCounters } from '../util/counters.ts';
import { ICMP_TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY } from './icmp-packet.ts';
import { internetChecksum } from '../util/checksum.ts';
import { FLAG_DF, Ipv4Packet } from './ipv4-packet.ts';

/** Linux ipfrag_high_thresh. */
export const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
/** Linux ipfrag_time, in ms. */
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_DATAGRAMS = 1024;
/** What holding one fragment costs beyond its data (buffer and list entry), for the byte cap. */
export const FRAGMENT_OVERHEAD = 128;
const MAX_DATAGRAM = 65535;

/** Takes fragments; returns the whole datagram's view once complete, else null. */
export interface Reassembler {
  add(ip: Ipv4Packet): Ipv4Packet | null;
  /** Datagrams being reassembled. */
  readonly datagrams: number;
  close(): void;
}

export interface ReassemblyOptions {
  maxBytes?: number;
  maxDatagrams?: number;
  timeoutMs?: number;
}

/** Sends ICMP time exceeded about the first fragment of a datagram that timed out. */
export type TimeExceededSender = (type: number, code: number, rest: number, firstFragment: Ipv4Packet) => void;

interface Fragment {
  /** Byte offset of this piece in the datagram's payload. */
  start: number;
  end: number;
  data: Buffer;
}

interface Queue {
  key: string;
  fragments: Fragment[];
  /** Payload length, known once the last fragment (MF clear) has arrived; else -1. */
  total: number;
  /** The header of the fragment at offset 0, once it has arrived. */
  firstHeader: Buffer | null;
  bytes: number;
  timer: Timer;
}

export class Ipv4Reassembler implements Reassembler {
  readonly maxBytes: number;
  readonly maxDatagrams: number;
  readonly timeoutMs: number;
  private readonly queues = new Map<string, Queue>();
  private held = 0;
  /** Datagrams reassembled so far. */
  reassembled = 0;
  private readonly whole = new Ipv4Packet();

  constructor(
    private readonly clock: Clock,
    private readonly counters: LayerCounters,
    private readonly sendTimeExceeded: TimeExceededSender,
    options: ReassemblyOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxDatagrams = options.maxDatagrams ?? DEFAULT_MAX_DATAGRAMS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Bytes held in incomplete datagrams, overhead included. */
  get bytesHeld(): number {
    return this.held;
  }

  /** Datagrams being reassembled. */
  get datagrams(): number {
    return this.queues.size;
  }

  add(ip: Ipv4Packet): Ipv4Packet | null {
    const start = ip.fragmentOffset;
    let length = ip.payloadLength;
    const last = !ip.moreFragments;
    // RFC 791: every fragment but the last carries a multiple of 8 bytes; Linux trims.
    if (!last) length &= ~7;
    const end = start + length;
    if (length === 0) return this.drop('frag-empty');
    if (ip.headerLength + end > MAX_DATAGRAM) return this.drop('frag-oversize');

    const key = `${ip.src}:${ip.dst}:${ip.protocol}:${ip.id}`;
    const q = this.queues.get(key) ?? this.createQueue(key);

    if (last) {
      // A second, different end, or data already beyond it: the datagram is inconsistent.
      if ((q.total >= 0 && q.total !== end) || this.highestEnd(q) > end) return this.kill(q, 'frag-bad-end');
      q.total = end;
    } else if (q.total >= 0 && end > q.total) {
      return this.kill(q, 'frag-beyond-end');
    }

    const placed = this.insert(q, start, end);
    if (placed === 'duplicate') return this.drop('frag-duplicate');
    if (placed === 'overlap') return this.kill(q, 'frag-overlap');
    const data = Buffer.allocUnsafe(length);
    ip.buf.copy(data, 0, ip.payloadOffset, ip.payloadOffset + length);
    q.fragments.splice(placed, 0, { start, end, data });
    if (start === 0) q.firstHeader = Buffer.from(ip.buf.subarray(ip.off, ip.off + ip.headerLength));
    const cost = length + FRAGMENT_OVERHEAD;
    q.bytes += cost;
    this.held += cost;

    if (q.total >= 0 && q.firstHeader !== null && this.covered(q)) {
      // The whole datagram takes the first fragment's header, which may be longer than the
      // others' (options): Linux ip_frag_reasm drops it as an "oversized IP packet".
      if (q.firstHeader.length + q.total > MAX_DATAGRAM) return this.kill(q, 'frag-oversize');
      return this.assemble(q);
    }
    this.evictWhileOver();
    return null;
  }

  close(): void {
    for (const q of this.queues.values()) q.timer.cancel();
    this.queues.clear();
    this.held = 0;
  }

  private createQueue(key: string): Queue {
    while (this.queues.size >= this.maxDatagrams) this.evictOldest();
    const q: Queue = {
      key,
      fragments: [],
      total: -1,
      firstHeader: null,
      bytes: 0,
      timer: this.clock.setTimer(this.timeoutMs, () => this.expire(q)),
    };
    this.queues.set(key, q);
    return q;
  }

  /**
   * Where [start, end) goes in the sorted list: its index, 'duplicate' when the bytes
   * already received cover it entirely, 'overlap' when it overlaps them only in part.
   */
  private insert(q: Queue, start: number, end: number): number | 'duplicate' | 'overlap' {
    const list = q.fragments;
    let i = 0;
    while (i < list.length && list[i]!.end <= start) i++;
    // Fragments from i on end after our start; those that also begin before our end overlap.
    let j = i;
    let reach = start;
    let contiguous = true;
    while (j < list.length && list[j]!.start < end) {
      if (list[j]!.start > reach) contiguous = false;
      reach = Math.max(reach, list[j]!.end);
      j++;
    }
    if (j === i) return i;
    if (contiguous && list[i]!.start <= start && reach >= end) return 'duplicate';
    return 'overlap';
  }

  private highestEnd(q: Queue): number {
    const n = q.fragments.length;
    return n === 0 ? 0 : q.fragments[n - 1]!.end;
  }

  private covered(q: Queue): boolean {
    let reach = 0;
    for (const f of q.fragments) {
      if (f.start > reach) return false;
      reach = f.end;
    }
    return reach === q.total;
  }

  /** Builds the whole datagram: the first fragment's header, then every piece in order. */
  private assemble(q: Queue): Ipv4Packet {
    // The queue goes first, as Linux's inet_frag_kill in ip_frag_reasm: nothing below can
    // leave it behind to time out.
    this.remove(q);
    const header = q.firstHeader!;
    const hl = header.length;
    const out = Buffer.allocUnsafe(hl + q.total);
    header.copy(out, 0);
    for (const f of q.fragments) f.data.copy(out, hl + f.start);
    // Offset and MF cleared; DF kept, as Linux keeps it (ip_frag_reasm).
    rewriteHeader(out, hl, hl + q.total, header.readUInt16BE(6) & FLAG_DF);
    this.reassembled++;
    const whole = this.whole;
    whole.parse(out, 0, out.length, false);
    return whole;
  }

  private expire(q: Queue): void {
    if (this.queues.get(q.key) !== q) return;
    this.remove(q);
    this.counters.drop('frag-timeout');
    const first = q.fragments[0];
    if (!q.firstHeader || !first || first.start !== 0) return;
    // Quote the first fragment as it arrived (RFC 792: header and at least 8 data bytes).
    const packet = Buffer.concat([q.firstHeader, first.data]);
    rewriteHeader(packet, q.firstHeader.length, packet.length, q.firstHeader.readUInt16BE(6));
    const view = new Ipv4Packet();
    if (view.parse(packet, 0, packet.length, false) === null) this.sendTimeExceeded(ICMP_TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY, 0, view);
  }

  private evictWhileOver(): void {
    while (this.held > this.maxBytes) this.evictOldest();
  }

  private evictOldest(): void {
    const oldest = this.queues.values().next().value;
    if (!oldest) return;
    this.remove(oldest);
    this.counters.drop('frag-evicted');
  }

  private kill(q: Queue, reason: string): null {
    this.remove(q);
    return this.drop(reason);
  }

  private remove(q: Queue): void {
    q.timer.cancel();
    this.queues.delete(q.key);
    this.held -= q.bytes;
  }

  private drop(reason: string): null {
    this.counters.drop(reason);
    return null;
  }
}

/** Sets total length and flags/offset in a header copy and recomputes its checksum. */
function rewriteHeader(buf: Buffer, headerLength: number, totalLength: number, flagsAndOffset: number): void {
  buf.writeUInt16BE(totalLength, 2);
  buf.writeUInt16BE(flagsAndOffset, 6);
  buf.writeUInt16BE(0, 10);
  buf.writeUInt16BE(internetChecksum(buf, 0, headerLength), 10);
}
