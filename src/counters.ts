// Per-layer counters: frames in and out, and drops by reason. A dropped frame is never an
// exception; it is counted here under a reason a user can read from the API.

export class LayerCounters {
  rx = 0;
  tx = 0;
  readonly drops: Record<string, number> = {};

  drop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  get dropped(): number {
    let n = 0;
    for (const k in this.drops) n += this.drops[k]!;
    return n;
  }

  toJSON(): { rx: number; tx: number; drops: Record<string, number> } {
    return { rx: this.rx, tx: this.tx, drops: { ...this.drops } };
  }
}

/** Seedable PRNG (mulberry32): fault injection and test ISNs must be reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
