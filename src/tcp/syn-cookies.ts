// SYN cookies (RFC 4987 3.6): when a listener's SYN queue is full, the SYN-ACK carries all
// the state in its ISN and no connection is kept. As Linux's secure_tcp_syn_cookie, the ISN
// is H0(4-tuple) + peer's ISN + (counter << 24) + ((H1(4-tuple, counter) + data) mod 2^24),
// with a counter ticking every 60 s and H0, H1 SipHash under secrets of their own
// (syncookie_secret, not the ISNs' net_secret). `data` is what the cookie encodes: the MSS
// index, and here also the peer's window scale and SACK-permitted that our TSval's low bits
// carry (as Linux's cookie_init_timestamp). Checking strips H0 and the peer's ISN, finds the
// counter, strips H1 and must find exactly the data the ACK implies: every encoded bit is
// authenticated, a guess succeeds with odds of 2^-24. Cookies are checked only within 2
// minutes of the listener's last SYN-queue overflow (tcp_synq_no_recent_overflow).

import type { TcpConfig } from './config.ts';
import type { CookieOptions } from './connection.ts';
import { KeyedHash } from './isn.ts';
import { seqAdd } from './seq.ts';
import { DEFAULT_MSS } from './tcb.ts';
import { ACK, SYN, type TcpRepr, type TcpSegment } from './tcp-segment.ts';
import { windowScaleFor } from './window.ts';
import type { Clock } from '../util/clock.ts';

/** MSS values a SYN cookie can carry in 2 bits (as Linux's msstab). */
const COOKIE_MSS = [536, 1300, 1440, 1460];
/** The cookie's counter ticks every 60 s (Linux TCP_SYNCOOKIE_PERIOD). */
const COOKIE_PERIOD_MS = 60_000;
/** A cookie is valid for this many ticks (Linux MAX_SYNCOOKIE_AGE). */
const MAX_COOKIE_AGE = 2;
/** Cookies are checked this long after an overflow (Linux TCP_SYNCOOKIE_VALID). */
export const SYNCOOKIE_VALID_MS = MAX_COOKIE_AGE * COOKIE_PERIOD_MS;
const COOKIE_BITS = 24;
const COOKIE_MASK = (1 << COOKIE_BITS) - 1;
/** Window scale value in a cookie's timestamp meaning "the peer offered none". */
const COOKIE_NO_WSCALE = 0xf;
/** The TSval bits that carry window scale (4) and SACK-permitted (1). */
const TS_OPTION_BITS = 0x1f;

/** What a valid cookie gives back. */
export interface CookieContents {
  irs: number;
  iss: number;
  mss: number;
  options: CookieOptions | null;
}

export class SynCookies {
  /** Linux's syncookie_secret[0] and [1]. */
  readonly h0: KeyedHash;
  readonly h1: KeyedHash;

  constructor(
    seed: number | undefined,
    private readonly clock: Clock,
    private readonly config: TcpConfig,
    private readonly localIp: number,
    private readonly mtu: number,
  ) {
    this.h0 = new KeyedHash(seed, 0x5c00c1e0);
    this.h1 = new KeyedHash(seed, 0x5c00c1e1);
  }

  private ports(seg: TcpSegment): number {
    return ((seg.srcPort << 16) | seg.dstPort) >>> 0;
  }

  private counter(): number {
    return Math.floor(this.clock.now() / COOKIE_PERIOD_MS);
  }

  /**
   * Fills r, begun as a reply to seg (ports swapped, options cleared), with the SYN-ACK
   * answering seg statelessly; tsNow is our TSval clock.
   */
  synAck(seg: TcpSegment, r: TcpRepr, tsNow: number, remoteIp: number): void {
    const config = this.config;
    const peerMss = seg.mss >= 0 ? seg.mss : DEFAULT_MSS;
    let mssIndex = 0;
    for (let i = COOKIE_MSS.length - 1; i >= 0; i--) {
      if (COOKIE_MSS[i]! <= peerMss) {
        mssIndex = i;
        break;
      }
    }
    let data = mssIndex;
    r.ack = seqAdd(seg.seq, 1);
    r.flags = SYN | ACK;
    r.window = Math.min(config.receiveBufferSize, 0xffff);
    r.mss = this.mtu - 40;
    // With timestamps the peer echoes our TSval: its low 5 bits carry the peer's window
    // scale (4 bits, 15 = none) and SACK-permitted (1 bit), so the connection rebuilt from
    // the cookie keeps them. The value stays at or below the clock, as PAWS needs.
    if (seg.hasTimestamp && config.timestamps) {
      const wscale = seg.windowScale >= 0 && config.windowScaling ? seg.windowScale : COOKIE_NO_WSCALE;
      const sack = seg.sackPermitted && config.sack;
      r.hasTimestamp = true;
      let tsVal = ((tsNow & ~0x3f) | wscale | (sack ? 0x10 : 0)) >>> 0;
      if (((tsVal - tsNow) | 0) > 0) tsVal = (tsVal - 0x40) >>> 0;
      r.tsVal = tsVal;
      r.tsEcr = seg.tsVal;
      if (wscale !== COOKIE_NO_WSCALE) r.windowScale = windowScaleFor(config.receiveBufferSize);
      r.sackPermitted = sack;
      data |= (tsVal & TS_OPTION_BITS) << 2;
    }
    r.seq = this.cookie(seg, remoteIp, seg.seq, this.counter(), data);
  }

  /** Linux's secure_tcp_syn_cookie. */
  private cookie(seg: TcpSegment, remoteIp: number, peerIsn: number, count: number, data: number): number {
    const ports = this.ports(seg);
    const outer = this.h0.hash(remoteIp, this.localIp, ports, 0);
    const inner = (this.h1.hash(remoteIp, this.localIp, ports, count) + data) & COOKIE_MASK;
    return (outer + peerIsn + (count << COOKIE_BITS) + inner) >>> 0;
  }

  /** Linux's check_tcp_syn_cookie: the encoded data, or -1 when the cookie is too old. */
  private decode(seg: TcpSegment, remoteIp: number, cookie: number, peerIsn: number): number {
    const ports = this.ports(seg);
    const count = this.counter();
    const c = (cookie - this.h0.hash(remoteIp, this.localIp, ports, 0) - peerIsn) >>> 0;
    const diff = (count - (c >>> COOKIE_BITS)) & (0xffffffff >>> COOKIE_BITS);
    if (diff >= MAX_COOKIE_AGE) return -1;
    return (c - this.h1.hash(remoteIp, this.localIp, ports, count - diff)) & COOKIE_MASK;
  }

  /** The handshake's ACK: what its cookie holds if it is valid (this counter or the last), else null. */
  check(seg: TcpSegment, remoteIp: number): CookieContents | null {
    const cookie = (seg.ack - 1) >>> 0;
    const irs = (seg.seq - 1) >>> 0;
    const data = this.decode(seg, remoteIp, cookie, irs);
    if (data < 0) return null;
    let options: CookieOptions | null = null;
    if (seg.hasTimestamp && this.config.timestamps) {
      // The options bits must be those the cookie was made with.
      if (data >>> 2 !== (seg.tsEcr & TS_OPTION_BITS)) return null;
      const wscale = seg.tsEcr & 0xf;
      options = {
        windowScale: wscale === COOKIE_NO_WSCALE ? -1 : wscale,
        sackPermitted: (seg.tsEcr & 0x10) !== 0 && this.config.sack,
        tsRecent: seg.tsVal,
      };
    } else if (data >= COOKIE_MSS.length) return null;
    return { irs, iss: cookie, mss: COOKIE_MSS[data & 3]!, options };
  }
}
