// SYN cookies (RFC 4987 3.6): when a listener's SYN queue is full, the SYN-ACK carries all
// the state in its ISN and no connection is kept. The ISN holds a time counter (5 bits), an
// MSS index (3 bits, 4 values used) and a keyed hash (24 bits) of the 4-tuple, the peer's
// ISN and the counter, as Linux's cookie_v4_init_sequence. With timestamps, our TSval's low
// bits carry the peer's window scale and SACK-permitted (as Linux's cookie_init_timestamp).

import type { TcpConfig } from './config.ts';
import type { CookieOptions } from './connection.ts';
import type { IsnGenerator } from './isn.ts';
import { seqAdd } from './seq.ts';
import { DEFAULT_MSS } from './tcb.ts';
import { ACK, SYN, type TcpRepr, type TcpSegment } from './tcp-segment.ts';
import { windowScaleFor } from './window.ts';
import type { Clock } from '../util/clock.ts';

/** MSS values a SYN cookie can carry in 2 bits (as Linux's msstab). */
const COOKIE_MSS = [536, 1300, 1440, 1460];
/** A cookie's time counter ticks every 64 s; one tick of slack is accepted. */
const COOKIE_PERIOD_MS = 64_000;
/** Window scale value in a cookie's timestamp meaning "the peer offered none". */
const COOKIE_NO_WSCALE = 0xf;

/** What a valid cookie gives back. */
export interface CookieContents {
  irs: number;
  iss: number;
  mss: number;
  options: CookieOptions | null;
}

export class SynCookies {
  constructor(
    private readonly isn: IsnGenerator,
    private readonly clock: Clock,
    private readonly config: TcpConfig,
    private readonly localIp: number,
    private readonly mtu: number,
  ) {}

  private hash(seg: TcpSegment, remoteIp: number, irs: number, counter: number): number {
    return this.isn.hash(this.localIp, seg.dstPort, remoteIp, seg.srcPort, (irs ^ Math.imul(counter, 0x9e3779b1)) >>> 0) & 0xffffff;
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
    const counter = this.counter();
    const cookie = (((counter & 31) << 27) | (mssIndex << 24) | this.hash(seg, remoteIp, seg.seq, counter)) >>> 0;
    r.seq = cookie;
    r.ack = seqAdd(seg.seq, 1);
    r.flags = SYN | ACK;
    r.window = Math.min(config.receiveBufferSize, 0xffff);
    r.mss = this.mtu - 40;
    // With timestamps the peer echoes our TSval: its low 6 bits carry the peer's window
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
    }
  }

  /** The handshake's ACK: what its cookie holds if it is valid (this counter or the last), else null. */
  check(seg: TcpSegment, remoteIp: number): CookieContents | null {
    const cookie = (seg.ack - 1) >>> 0;
    const irs = (seg.seq - 1) >>> 0;
    const now = this.counter();
    for (const counter of [now, now - 1]) {
      if (cookie >>> 27 !== (counter & 31)) continue;
      if ((cookie & 0xffffff) !== this.hash(seg, remoteIp, irs, counter)) continue;
      let options: CookieOptions | null = null;
      if (seg.hasTimestamp && this.config.timestamps) {
        const wscale = seg.tsEcr & 0xf;
        options = {
          windowScale: wscale === COOKIE_NO_WSCALE ? -1 : wscale,
          sackPermitted: (seg.tsEcr & 0x10) !== 0 && this.config.sack,
          tsRecent: seg.tsVal,
        };
      }
      return { irs, iss: cookie, mss: COOKIE_MSS[(cookie >>> 24) & 3]!, options };
    }
    return null;
  }
}
