// Per-layer counters: frames in and out, and drops by reason. A dropped frame is never an
// exception; it is counted here under a reason a user can read from the API.

export class LayerCounters {
  rx = 0;
  tx = 0;
  readonly drops: Record<string, number> = {};
  /** Told of every drop (the stack's probe); unset, one null check per drop. */
  observer: ((reason: string) => void) | null = null;

  drop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
    const o = this.observer;
    if (o !== null) o(reason);
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
