// The layer's buffer budget, as Linux's tcp_mem (sk_memory_allocated, tcp_memory_pressure):
// every connection charges what its buffers hold (the send ring's memory, the bytes received
// and not yet read, the out-of-order bytes) and the layer sums them. Above memoryPressure it
// is under pressure (windows clamped, rings given back, each connection held to a fair
// share) until below memoryLow; above memoryHigh nothing more is taken but a connection's
// minimum (Linux __sk_mem_raise_allocated).

import type { TcpConfig } from './config.ts';
import type { TcpCounters } from './counters.ts';

/** What a connection may always hold, each way (Linux tcp_rmem[0] and tcp_wmem[0], 4 KB). */
export const MEMORY_MIN = 4096;

export class MemoryBudget {
  /** Bytes charged by all connections. */
  allocated = 0;
  /** Linux tcp_memory_pressure: set above memoryPressure, cleared below memoryLow. */
  underPressure = false;

  constructor(
    private readonly config: TcpConfig,
    private readonly counters: TcpCounters,
  ) {}

  /** Charges n bytes (uncharges when negative), entering or leaving pressure (sk_enter/leave_memory_pressure). */
  charge(n: number): void {
    const a = (this.allocated += n);
    this.counters.memory = a;
    if (n > 0) {
      if (!this.underPressure && a > this.config.memoryPressure) {
        this.underPressure = true;
        this.counters.memoryPressures++;
      }
    } else if (this.underPressure && a < this.config.memoryLow) this.underPressure = false;
  }

  /** Past tcp_mem[2]: no connection grows beyond its minimum. */
  get exhausted(): boolean {
    return this.allocated > this.config.memoryHigh;
  }

  /**
   * May a connection take `more` bytes one way, holding `held` that way and `total` both
   * ways? As Linux's __sk_mem_raise_allocated: yes up to memoryLow, no past memoryHigh, yes
   * within its minimum, and under pressure only while its share is fair (memoryHigh above
   * connections times what it holds).
   */
  allows(held: number, total: number, more: number): boolean {
    const config = this.config;
    const a = this.allocated + more;
    if (a <= config.memoryLow) return true;
    if (a > config.memoryHigh) return false;
    if (held + more <= MEMORY_MIN) return true;
    return !this.underPressure || config.memoryHigh > this.counters.connections * (total + more);
  }
}
