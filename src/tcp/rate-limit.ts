// Limits on the ACKs we send in answer to segments we do not accept, so that two stacks that
// disagree about each other's sequence space cannot answer each other forever (an ACK storm),
// and so that an off-path attacker cannot count our challenge ACKs (CVE-2016-5696):
// per connection, at most one every tcp_invalid_ratelimit (Linux __tcp_oow_rate_limited);
// for RFC 5961's challenge ACKs also a budget for the whole layer per second whose size is
// drawn at random each second, as Linux's tcp_send_challenge_ack since 4.7.

import type { Clock } from '../util/clock.ts';

/** What a connection keeps for its out-of-window ACKs (Linux tp->last_oow_ack_time). */
export interface OowState {
  lastOowAckAt: number;
}

/**
 * Linux's __tcp_oow_rate_limited: true when an ACK answering an out-of-window (or otherwise
 * invalid) segment went less than `intervalMs` ago; else notes now and returns false.
 */
export function oowRateLimited(s: OowState, now: number, intervalMs: number): boolean {
  const elapsed = now - s.lastOowAckAt;
  if (elapsed >= 0 && elapsed < intervalMs) return true;
  s.lastOowAckAt = now;
  return false;
}

/**
 * RFC 5961 7's challenge ACK budget for all connections: each second starts with between
 * limit / 2 and limit * 3 / 2 - 1 tokens, at random (Linux: get_random_u32_inclusive(half,
 * ack_limit + half - 1)), so that the count of challenge ACKs an attacker sees tells nothing
 * exact about the ones other connections sent.
 */
export class ChallengeAckBudget {
  private second = -1;
  private count = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limit: number,
    private readonly random: () => number,
  ) {}

  /** Takes a token if there is one. */
  allow(): boolean {
    const second = Math.floor(this.clock.now() / 1000);
    if (second !== this.second) {
      this.second = second;
      const half = (this.limit + 1) >> 1;
      this.count = half + Math.floor(this.random() * this.limit);
    }
    if (this.count <= 0) return false;
    this.count--;
    return true;
  }
}
