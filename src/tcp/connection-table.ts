// The layer's connections by 4-tuple (local address is the stack's one). Connections by
// ports (local << 16 | remote): no key is built per segment. Most port pairs have one
// connection, stored as is; only pairs shared by several remote addresses get a Map by remote
// address (thousands of connections then cost no Map each). The same table holds the
// compact TIME-WAIT entries (time-wait.ts).

/** What the table keys an entry by. */
export interface FourTuple {
  readonly localPort: number;
  readonly remoteIp: number;
  readonly remotePort: number;
}

export class ConnectionTable<T extends FourTuple> {
  /** Made at the first connection: a fleet's idle devices hold none. */
  private byPorts: Map<number, T | Map<number, T>> | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  find(localPort: number, remoteIp: number, remotePort: number): T | undefined {
    const entry = this.byPorts?.get(localPort * 65536 + remotePort);
    if (entry === undefined) return undefined;
    if (!(entry instanceof Map)) return entry.remoteIp === remoteIp ? entry : undefined;
    return entry.get(remoteIp);
  }

  add(conn: T): void {
    const key = conn.localPort * 65536 + conn.remotePort;
    const byPorts = (this.byPorts ??= new Map());
    const entry = byPorts.get(key);
    if (entry === undefined) {
      byPorts.set(key, conn);
    } else if (!(entry instanceof Map)) {
      const byAddress = new Map<number, T>([[entry.remoteIp, entry]]);
      byAddress.set(conn.remoteIp, conn);
      byPorts.set(key, byAddress);
    } else {
      entry.set(conn.remoteIp, conn);
    }
    this.count++;
  }

  /** Returns whether conn was in the table. */
  remove(conn: FourTuple): boolean {
    const byPorts = this.byPorts;
    if (byPorts === null) return false;
    const key = conn.localPort * 65536 + conn.remotePort;
    const entry = byPorts.get(key);
    if (entry === conn) {
      byPorts.delete(key);
      this.count--;
      return true;
    }
    if (entry instanceof Map && entry.get(conn.remoteIp) === conn) {
      entry.delete(conn.remoteIp);
      if (entry.size === 0) byPorts.delete(key);
      this.count--;
      return true;
    }
    return false;
  }

  *all(): IterableIterator<T> {
    if (this.byPorts === null) return;
    for (const entry of this.byPorts.values()) {
      if (entry instanceof Map) yield* entry.values();
      else yield entry;
    }
  }
}
