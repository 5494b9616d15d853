// A binary min-heap of timers by deadline, then by the order they were set: the one
// structure behind the virtual clock and the fleet's real-time clock (HeapClock), as the
// kernel keeps one timer wheel for every socket rather than one hardware timer each.

export interface HeapTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class TimerHeap<T extends HeapTimer> {
  private readonly items: T[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  /** The earliest timer, cancelled or not. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** The earliest timer not cancelled (cancelled ones on top are dropped on the way). */
  peekLive(): T | undefined {
    while (this.items.length > 0 && this.items[0]!.cancelled) this.pop();
    return this.items[0];
  }

  /** Gives the timer its place in the order of setting and adds it. */
  push(t: T): void {
    t.seq = this.seq++;
    const h = this.items;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  pop(): T | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }

  /** Timers not cancelled. */
  live(): number {
    let n = 0;
    for (const t of this.items) if (!t.cancelled) n++;
    return n;
  }

  /** Drops every cancelled timer (a heap of mostly cancelled timers would only grow). */
  compact(): void {
    const keep = this.items.filter((t) => !t.cancelled);
    this.items.length = 0;
    // A sorted array is a heap.
    for (const t of keep.sort((a, b) => a.at - b.at || a.seq - b.seq)) this.items.push(t);
  }
}

function less(a: HeapTimer, b: HeapTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
