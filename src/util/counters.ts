// Per-layer counters: frames in and out, and drops by reason. A dropped frame is never an
// exception; it is counted here under a reason a user can read from the API.

/** The drops of a layer that has dropped nothing (shared: most layers of a fleet's devices). */
const NO_DROPS: Readonly<Record<string, number>> = Object.freeze({});

export class LayerCounters {
  rx = 0;
  tx = 0;
  /** Made at the first drop. */
  private dropsByReason: Record<string, number> | null = null;
  /** Told of every drop (the stack's probe); unset, one null check per drop. */
  observer: ((reason: string) => void) | null = null;

  /** Drops by reason (read-only; counted by drop()). */
  get drops(): Readonly<Record<string, number>> {
    return this.dropsByReason ?? NO_DROPS;
  }

  drop(reason: string): void {
    const drops = (this.dropsByReason ??= {});
    drops[reason] = (drops[reason] ?? 0) + 1;
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
