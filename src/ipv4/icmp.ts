// ICMP logic (RFC 792, RFC 1122 3.2.2): answer echo requests, send destination unreachable
// and time exceeded with Linux's rate limits, and hand errors about our own datagrams to
// the protocol that sent them.

import { sharedTxScratch } from '../util/tx-scratch.ts';
import type { Clock, Timer } from '../util/clock.ts';
import { LayerCounters } from '../util/counters.ts';
import { copyBytes } from '../util/bytes.ts';
import { formatIpv4, isMulticast } from './address.ts';
import { updateChecksum16 } from '../util/checksum.ts';
import {
  emitEchoReplyHeader,
  emitIcmpHeader,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_HEADER_LEN,
  ICMP_PARAMETER_PROBLEM,
  ICMP_TIME_EXCEEDED,
  IcmpPacket,
  UNREACH_FRAG_NEEDED,
  UNREACH_PROTOCOL,
} from './icmp-packet.ts';
import { IPV4_MIN_HEADER, Ipv4Packet, PROTO_ICMP } from './ipv4-packet.ts';
import { type Ipv4Layer, TX_HEADROOM } from './ipv4.ts';

/** RFC 1812 4.3.2.3: an error quotes as much of the datagram as fits in 576 bytes. */
const MAX_ERROR_DATAGRAM = 576;

export interface IcmpRateLimitOptions {
  /** Linux icmp_ratelimit: minimum spacing of errors to one destination, in ms (1000). */
  perDestinationMs?: number;
  /** Linux allows a burst of 6 spaced-out tokens per destination (XRLIM_BURST_FACTOR). */
  perDestinationBurst?: number;
  /** Linux icmp_msgs_per_sec (1000) and icmp_msgs_burst (50): a global bucket. */
  globalPerSecond?: number;
  globalBurst?: number;
}

/**
 * Token buckets as Linux keeps them: one global (net/ipv4/icmp.c icmp_global_allow) and one
 * per destination (inet_peer_xrlim_allow). Error messages only; echo replies are not limited.
 */
export class IcmpRateLimiter {
  private readonly perDestMs: number;
  private readonly perDestBurst: number;
  private readonly globalRate: number;
  private readonly globalBurst: number;
  private globalTokens: number;
  private globalStamp: number;
  private peersMade: Map<number, { tokens: number; stamp: number }> | null = null;
  /** Made at the first error sent. */
  private get peers(): Map<number, { tokens: number; stamp: number }> {
    return (this.peersMade ??= new Map());
  }

  constructor(
    private readonly clock: Clock,
    o: IcmpRateLimitOptions = {},
  ) {
    this.perDestMs = o.perDestinationMs ?? 1000;
    this.perDestBurst = o.perDestinationBurst ?? 6;
    this.globalRate = o.globalPerSecond ?? 1000;
    this.globalBurst = o.globalBurst ?? 50;
    this.globalTokens = this.globalBurst;
    this.globalStamp = clock.now();
  }

  allow(dst: number): boolean {
    const now = this.clock.now();
    // Linux icmp_global_allow (5.x): credit is refilled at most every 20 ms (HZ/50), by rate x
    // elapsed time (up to 1 s), capped at the burst; each error takes one credit, before the
    // per-destination check (Linux randomizes the cost between 0 and 2; we keep it at 1).
    const elapsed = Math.min(now - this.globalStamp, 1000);
    if (elapsed >= 20) {
      const credit = Math.floor((this.globalRate * elapsed) / 1000);
      if (credit > 0) {
        this.globalStamp = now;
        this.globalTokens = Math.min(this.globalTokens + credit, this.globalBurst);
      }
    }
    if (this.globalTokens < 1) return false;
    this.globalTokens -= 1;
    if (this.perDestMs > 0) {
      let peer = this.peers.get(dst);
      if (!peer) {
        if (this.peers.size >= 4096) this.peers.delete(this.peers.keys().next().value!);
        peer = { tokens: this.perDestBurst * this.perDestMs, stamp: now };
        this.peers.set(dst, peer);
      }
      peer.tokens = Math.min(this.perDestBurst * this.perDestMs, peer.tokens + (now - peer.stamp));
      peer.stamp = now;
      if (peer.tokens < this.perDestMs) return false;
      peer.tokens -= this.perDestMs;
    }
    return true;
  }
}

export interface IcmpOptions {
  rateLimit?: IcmpRateLimitOptions;
  /** Linux icmp_echo_ignore_broadcasts (default on). */
  ignoreBroadcastEcho?: boolean;
  /**
   * Linux net.ipv4.route.min_pmtu (552): a "fragmentation needed" reporting a smaller
   * next-hop MTU is taken as this much, so that a forged one cannot shrink a connection's
   * segments to a few bytes each.
   */
  minPmtu?: number;
}

export interface IcmpProbe {
  /**
   * An ICMP error received about one of our datagrams (after the checks that it is ours) or
   * sent about one we received. The quoted datagram (its IPv4 header and at least 8 bytes)
   * is buf[off, off+len), valid only during the call.
   */
  icmpError(direction: 'in' | 'out', type: number, code: number, buf: Buffer, off: number, len: number): void;
}

export const DEFAULT_MIN_PMTU = 552;

/** Echo requests of ours waiting for their reply at once, at most (Linux's ping sockets have no such cap; a bounded table here). */
const MAX_OUTSTANDING_PINGS = 1024;
/** The identifier of our echo requests (RFC 792: matches replies to requests; one stack, one sender). */
const PING_IDENTIFIER = 0x7473;

interface OutstandingPing {
  dst: number;
  sentAt: number;
  timer: Timer;
  resolve: (rttMs: number) => void;
}

export class IcmpLayer {
  readonly counters = new LayerCounters();
  readonly rateLimiter: IcmpRateLimiter;
  private readonly view = new IcmpPacket();
  private readonly quoted = new Ipv4Packet();
  private readonly txBuf: Buffer;
  private readonly ignoreBroadcastEcho: boolean;
  readonly minPmtu: number;
  private readonly echoOptions = { tos: 0 };
  private readonly errorOptions = { tos: 0 };
  /** The stack's probe (Stack.setProbe); unset, one null check per error. */
  probe: IcmpProbe | null = null;
  /** Our echo requests by sequence number, each until its reply or its timeout. */
  private pingsMade: Map<number, OutstandingPing> | null = null;
  /** Pings of ours awaiting replies, made at the first. */
  private get pings(): Map<number, OutstandingPing> {
    return (this.pingsMade ??= new Map());
  }
  private pingSequence = 0;

  constructor(
    private readonly ip: Ipv4Layer,
    private readonly clock: Clock,
    options: IcmpOptions = {},
  ) {
    this.rateLimiter = new IcmpRateLimiter(clock, options.rateLimit);
    this.ignoreBroadcastEcho = options.ignoreBroadcastEcho ?? true;
    this.minPmtu = options.minPmtu ?? DEFAULT_MIN_PMTU;
    this.txBuf = sharedTxScratch('icmp', TX_HEADROOM + 65536);
    ip.register(PROTO_ICMP, this, undefined, { checksumOffload: true });
    ip.icmp = this;
  }

  /** checksumTrusted: the kernel verified the checksum (offloads; see ProtocolHandler). */
  receive(ipv4: Ipv4Packet, off: number, len: number, checksumTrusted = false): void {
    this.counters.rx++;
    const icmp = this.view;
    const bad = icmp.parse(ipv4.buf, off, len, !checksumTrusted);
    if (bad) return this.counters.drop(bad);
    switch (icmp.type) {
      case ICMP_ECHO_REQUEST:
        return this.answerEcho(ipv4, icmp, checksumTrusted);
      case ICMP_DEST_UNREACHABLE:
      case ICMP_TIME_EXCEEDED:
      case ICMP_PARAMETER_PROBLEM:
        return this.receiveError(icmp);
      case ICMP_ECHO_REPLY:
        return this.receiveEchoReply(ipv4, icmp);
      default:
        return this.counters.drop('icmp-unhandled-type');
    }
  }

  /** RFC 792 echo: same identifier, sequence and data, back to the sender. */
  private answerEcho(ipv4: Ipv4Packet, icmp: IcmpPacket, checksumTrusted: boolean): void {
    if (this.ignoreBroadcastEcho && ipv4.dst !== this.ip.ip) return this.counters.drop('icmp-echo-broadcast');
    const out = this.txBuf;
    const dataLen = icmp.dataLength;
    copyBytes(icmp.buf, icmp.dataOffset, out, TX_HEADROOM + ICMP_HEADER_LEN, dataLen);
    let len: number;
    if (checksumTrusted) {
      len = emitIcmpHeader(out, TX_HEADROOM, ICMP_ECHO_REPLY, 0, icmp.rest, dataLen);
    } else {
      // The request's checksum was verified, and only its type and code word changes
      // (8, code -> 0, 0): update the checksum (RFC 1624 eqn. 3) instead of summing the data
      // again.
      const checksum = updateChecksum16(icmp.checksum, (ICMP_ECHO_REQUEST << 8) | icmp.code, ICMP_ECHO_REPLY << 8);
      // The update cannot tell +0 from -0 (RFC 1624 3): a zero result may belong to a
      // message whose words sum to +0 (all zero), which needs 0xffff. Sum that rare case in full.
      if (checksum === 0) len = emitIcmpHeader(out, TX_HEADROOM, ICMP_ECHO_REPLY, 0, icmp.rest, dataLen);
      else len = emitEchoReplyHeader(out, TX_HEADROOM, icmp.rest, dataLen, checksum);
    }
    this.counters.tx++;
    // RFC 1122 3.2.2.6: the reply's TOS is the request's. (One options object, reused.)
    this.echoOptions.tos = ipv4.tos;
    this.ip.send(PROTO_ICMP, ipv4.src, out, TX_HEADROOM, len, this.echoOptions);
  }

  /**
   * Sends an echo request (RFC 792) of `size` data bytes to dst; resolves with the round trip
   * in ms when its reply comes, rejects with ETIMEDOUT after timeoutMs (a timer of the stack's
   * clock: a reply never sent leaves nothing behind).
   */
  ping(dst: number, options: { timeoutMs?: number; size?: number } = {}): Promise<number> {
    const size = Math.max(0, Math.min(options.size ?? 56, 65507 - ICMP_HEADER_LEN));
    if (this.pings.size >= MAX_OUTSTANDING_PINGS) return Promise.reject(Object.assign(new Error('too many pings waiting for replies'), { code: 'ENOBUFS' }));
    let sequence = this.pingSequence;
    do sequence = (sequence + 1) & 0xffff;
    while (this.pings.has(sequence));
    this.pingSequence = sequence;
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(options.timeoutMs ?? 3000, () => {
        this.pings.delete(sequence);
        reject(Object.assign(new Error(`no echo reply from ${formatIpv4(dst)}`), { code: 'ETIMEDOUT' }));
      });
      this.pings.set(sequence, { dst, sentAt: this.clock.now(), timer, resolve });
      const out = this.txBuf;
      out.fill(0, TX_HEADROOM + ICMP_HEADER_LEN, TX_HEADROOM + ICMP_HEADER_LEN + size);
      const len = emitIcmpHeader(out, TX_HEADROOM, ICMP_ECHO_REQUEST, 0, ((PING_IDENTIFIER << 16) | sequence) >>> 0, size);
      this.counters.tx++;
      const err = this.ip.send(PROTO_ICMP, dst, out, TX_HEADROOM, len);
      if (err !== null) {
        timer.cancel();
        this.pings.delete(sequence);
        reject(Object.assign(new Error(`ping ${formatIpv4(dst)}: ${err}`), { code: err }));
      }
    });
  }

  private receiveEchoReply(ipv4: Ipv4Packet, icmp: IcmpPacket): void {
    const sequence = icmp.rest & 0xffff;
    const ping = this.pings.get(sequence);
    if (icmp.rest >>> 16 !== PING_IDENTIFIER || ping === undefined || ping.dst !== ipv4.src) return this.counters.drop('icmp-echo-reply-unsolicited');
    this.pings.delete(sequence);
    ping.timer.cancel();
    ping.resolve(this.clock.now() - ping.sentAt);
  }

  private receiveError(icmp: IcmpPacket): void {
    const quoted = this.quoted;
    // The quoted datagram is usually cut short, so its total length cannot be checked; its
    // checksum still can.
    const bad = quoted.parse(icmp.buf, icmp.dataOffset, icmp.dataLength, true);
    if (bad === 'ip-bad-length' || bad === null) {
      const headerLength = (icmp.buf[icmp.dataOffset]! & 0x0f) * 4;
      if (bad === 'ip-bad-length') {
        // Re-point the view with the length we have, for the accessors.
        quoted.buf = icmp.buf;
        quoted.off = icmp.dataOffset;
        quoted.headerLength = headerLength;
        quoted.totalLength = icmp.dataLength;
      }
      const transportOff = icmp.dataOffset + headerLength;
      const transportLen = icmp.dataLength - headerLength;
      if (quoted.src !== this.ip.ip) return this.counters.drop('icmp-error-not-ours');
      if (transportLen < 8) return this.counters.drop('icmp-error-short-quote');
      let mtu = 0;
      if (icmp.type === ICMP_DEST_UNREACHABLE && icmp.code === UNREACH_FRAG_NEEDED) {
        mtu = icmp.sequence;
        // Linux __ip_rt_update_pmtu: below ip_rt_min_pmtu the path MTU is clamped to it.
        if (mtu < this.minPmtu) {
          this.counters.drop('icmp-pmtu-below-min');
          mtu = this.minPmtu;
        }
      }
      const probe = this.probe;
      if (probe !== null) probe.icmpError('in', icmp.type, icmp.code, icmp.buf, icmp.dataOffset, icmp.dataLength);
      this.ip.deliverError({ type: icmp.type, code: icmp.code, mtu }, quoted, transportOff, transportLen);
      return;
    }
    this.counters.drop('icmp-error-bad-quote');
  }

  /** Ipv4ErrorReporter: a datagram for a protocol nobody serves (RFC 1122 3.2.2.1). */
  protocolUnreachable(ip: Ipv4Packet): void {
    this.sendError(ICMP_DEST_UNREACHABLE, UNREACH_PROTOCOL, 0, ip);
  }

  /**
   * Sends an ICMP error about `offending` (RFC 1122 3.2.2: never about an ICMP error, a
   * broadcast or multicast, a non-first fragment, or a datagram from a non-unicast source).
   * Returns whether it was sent.
   */
  sendError(type: number, code: number, rest: number, offending: Ipv4Packet, forwarded = false): boolean {
    const src = offending.src;
    // A router's error is about a datagram for someone else (RFC 1812 4.3.2.7: still never
    // about one to a broadcast or multicast address).
    if (forwarded ? isMulticast(offending.dst) || offending.dst === 0xffffffff : offending.dst !== this.ip.ip) return this.suppress('icmp-error-to-broadcast');
    if (src === 0 || isMulticast(src) || this.ip.isBroadcast(src)) return this.suppress('icmp-error-bad-source');
    if (offending.fragmentOffset !== 0) return this.suppress('icmp-error-non-first-fragment');
    if (offending.protocol === PROTO_ICMP) {
      const t = offending.buf[offending.payloadOffset];
      if (offending.payloadLength < 1 || t === undefined || !(t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY || t === 13 || t === 15 || t === 17))
        return this.suppress('icmp-error-about-error');
    }
    if (!this.rateLimiter.allow(src)) return this.suppress('icmp-rate-limited');
    const quoteLen = Math.min(offending.totalLength, MAX_ERROR_DATAGRAM - IPV4_MIN_HEADER - ICMP_HEADER_LEN);
    const out = this.txBuf;
    offending.buf.copy(out, TX_HEADROOM + ICMP_HEADER_LEN, offending.off, offending.off + quoteLen);
    const len = emitIcmpHeader(out, TX_HEADROOM, type, code, rest, quoteLen);
    this.counters.tx++;
    // RFC 1812 4.3.2.5: errors go with precedence 6 (internetwork control), keeping the
    // offending datagram's TOS bits, as Linux's icmp_send does.
    this.errorOptions.tos = 0xc0 | (offending.tos & 0x1e);
    const probe = this.probe;
    if (probe !== null) probe.icmpError('out', type, code, out, TX_HEADROOM + ICMP_HEADER_LEN, quoteLen);
    this.ip.send(PROTO_ICMP, src, out, TX_HEADROOM, len, this.errorOptions);
    return true;
  }

  private suppress(reason: string): false {
    this.counters.drop(reason);
    return false;
  }
}
