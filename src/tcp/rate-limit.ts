// A token bucket: `limit` events per second at most, refilled continuously. RFC 5961 7 asks
// for such a budget of challenge ACKs (Linux tcp_challenge_ack_limit, shared by all sockets).

import type { Clock } from '../util/clock.ts';

export class RateLimit {
  private tokens: number;
  private stamp: number;

  constructor(
    private readonly clock: Clock,
    private readonly limit: number,
  ) {
    this.tokens = limit;
    this.stamp = clock.now();
  }

  /** Takes a token if there is one. */
  allow(): boolean {
    const now = this.clock.now();
    const limit = this.limit;
    this.tokens = Math.min(limit, this.tokens + ((now - this.stamp) * limit) / 1000);
    this.stamp = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}
