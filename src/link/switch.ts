// A learning Ethernet switch (IEEE 802.1D transparent bridging, as Linux's bridge does it):
// each port learns the source MAC of the frames it receives; a frame to a known unicast MAC
// goes out of that MAC's port only, anything else (broadcast, multicast, an unknown or aged
// address) is flooded to every other port. Ports are in-memory links made by connect(), or
// any Link attached (a TAP, a netem link), so devices on a switch reach the host's kernel.
//
// The forwarding table is bounded and ages, as Linux's: entries expire after ageing_time
// (300 s, br_fdb_cleanup) and, once fdb_max_learned entries are held, new addresses are no
// longer learned (their frames are flooded) rather than evicting known ones.

import type { Clock } from '../util/clock.ts';
import { isGroupMac, macKey } from './ethernet.ts';
import type { Link } from './link.ts';
import { createLinkPair, type MemoryLinkOptions } from './memory.ts';

export interface SwitchOptions extends MemoryLinkOptions {
  /** Linux bridge ageing_time: an address not seen for this long is forgotten (default 300 s). */
  ageingMs?: number;
  /** Linux bridge fdb_max_learned: at most this many learned addresses (default 4096). */
  maxEntries?: number;
}

export interface SwitchCounters {
  /** Frames forwarded to one port, frames flooded, and frames dropped (too short, or to the port they came from). */
  forwarded: number;
  flooded: number;
  dropped: number;
  /** Addresses not learned because the table was full. */
  learnRefused: number;
}

interface Entry {
  port: number;
  seenAt: number;
}

const ETH_MIN = 14;

export class LearningSwitch {
  readonly counters: SwitchCounters = { forwarded: 0, flooded: 0, dropped: 0, learnRefused: 0 };
  private readonly ports: Link[] = [];
  private readonly table = new Map<number, Entry>();
  private readonly ageingMs: number;
  private readonly maxEntries: number;

  constructor(
    private readonly clock: Clock,
    private readonly options: SwitchOptions = {},
  ) {
    this.ageingMs = options.ageingMs ?? 300_000;
    this.maxEntries = options.maxEntries ?? 4096;
  }

  /** A new port joined by an in-memory cable: give the returned link to a stack. */
  connect(): Link {
    const [deviceSide, switchSide] = createLinkPair(this.clock, this.options);
    this.attach(switchSide);
    return deviceSide;
  }

  /** Plugs an existing link in as a port (its frames come in, frames for it are sent on it). */
  attach(link: Link): void {
    const port = this.ports.length;
    this.ports.push(link);
    link.setReceiver((buf, off, len) => this.receive(port, buf, off, len));
  }

  /** The port a MAC was learned on, or null (unknown, or aged out). */
  portOf(mac: Uint8Array): number | null {
    const e = this.table.get(macKey(mac, 0));
    return e && this.clock.now() - e.seenAt <= this.ageingMs ? e.port : null;
  }

  get size(): number {
    return this.table.size;
  }

  private receive(port: number, buf: Buffer, off: number, len: number): void {
    if (len < ETH_MIN) {
      this.counters.dropped++;
      return;
    }
    const now = this.clock.now();
    this.learn(buf, off + 6, port, now);
    if (!isGroupMac(buf, off)) {
      const e = this.table.get(macKey(buf, off));
      if (e && now - e.seenAt <= this.ageingMs) {
        // A frame for the port it came from stays there (802.1D: never sent back).
        if (e.port === port) this.counters.dropped++;
        else {
          this.counters.forwarded++;
          this.ports[e.port]!.send(buf, off, len);
        }
        return;
      }
    }
    this.counters.flooded++;
    for (let p = 0; p < this.ports.length; p++) if (p !== port) this.ports[p]!.send(buf, off, len);
  }

  private learn(buf: Buffer, srcOff: number, port: number, now: number): void {
    // A group address is never a source (802.1D 7.8): not learned.
    if (isGroupMac(buf, srcOff)) return;
    const key = macKey(buf, srcOff);
    const e = this.table.get(key);
    if (e) {
      e.port = port;
      e.seenAt = now;
      return;
    }
    if (this.table.size >= this.maxEntries) {
      this.expire(now);
      if (this.table.size >= this.maxEntries) {
        this.counters.learnRefused++;
        return;
      }
    }
    this.table.set(key, { port, seenAt: now });
  }

  /** br_fdb_cleanup: drops the entries older than ageing_time. */
  private expire(now: number): void {
    for (const [key, e] of this.table) if (now - e.seenAt > this.ageingMs) this.table.delete(key);
  }
}
