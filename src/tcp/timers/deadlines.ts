// A connection's named deadlines (RFC 9293 3.8, RFC 1122 4.2.2.17, 4.2.3.2, 4.2.3.6), as
// smoltcp's one `Timer` per socket: each is an absolute time in clock milliseconds, 0 when
// off, and the connection waits in the layer's TimerQueue for the earliest. Adding a timer is
// one entry here and one case in timers/timeouts.ts.

/** The deadlines, in the order they fire when several are due at once. */
export const Deadline = {
  /** TIME-WAIT expiry, or the FIN-WAIT-2 timeout of an orphaned connection. */
  Close: 0,
  /** Retransmission timeout (RFC 6298). */
  Retransmit: 1,
  /** RACK's reordering timer (RFC 8985 6.3, Linux ICSK_TIME_REO_TIMEOUT). */
  ReorderTimeout: 2,
  /** Tail loss probe timeout, PTO (RFC 8985 7.2). */
  TailLossProbe: 3,
  /** Zero-window probe or SWS override (RFC 9293 3.8.6.1, 3.8.6.2.1). */
  Persist: 4,
  /** Delayed ACK (RFC 1122 4.2.3.2). */
  DelayedAck: 5,
  /** Keepalive probe (RFC 1122 4.2.3.6). */
  KeepAlive: 6,
  /** The pacing rate lets the next segment go (Linux's TCP internal pacing timer, tcp_pace_kick). */
  Pacing: 7,
} as const;
export type Deadline = (typeof Deadline)[keyof typeof Deadline];

export const DEADLINE_COUNT = 8;
export const DEADLINE_NAMES = ['close', 'rto', 'reorder', 'tlp', 'persist', 'delayedAck', 'keepAlive', 'pacing'] as const;

export class Deadlines {
  /** A plain array of doubles: lighter per connection than a typed array's backing store. */
  private readonly at: number[] = [0, 0, 0, 0, 0, 0, 0, 0];

  get(d: Deadline): number {
    return this.at[d]!;
  }

  isSet(d: Deadline): boolean {
    return this.at[d] !== 0;
  }

  set(d: Deadline, at: number): void {
    this.at[d] = at;
  }

  clear(d: Deadline): void {
    this.at[d] = 0;
  }

  clearAll(): void {
    for (let i = 0; i < DEADLINE_COUNT; i++) this.at[i] = 0;
  }

  /** Is deadline d set and reached? */
  isDue(d: Deadline, now: number): boolean {
    const t = this.at[d]!;
    return t !== 0 && t <= now;
  }

  /** The earliest deadline set, or Infinity. */
  earliest(): number {
    let next = Infinity;
    const at = this.at;
    for (let i = 0; i < DEADLINE_COUNT; i++) {
      const t = at[i]!;
      if (t !== 0 && t < next) next = t;
    }
    return next;
  }

  /** The deadlines set, relative to now (diagnostics). */
  describe(now: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < DEADLINE_COUNT; i++) if (this.at[i] !== 0) out[DEADLINE_NAMES[i]!] = this.at[i]! - now;
    return out;
  }
}
