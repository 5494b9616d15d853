// ARP logic (RFC 826, RFC 1122 2.3.2): answer requests for our address, keep a neighbour
// cache whose entries expire and are refreshed, hold a bounded queue of packets per
// unresolved address, and announce ourselves with a gratuitous ARP.

import type { Clock, Timer } from '../util/clock.ts';
import { LayerCounters } from '../util/counters.ts';
import { BROADCAST_MAC, emitEthernet, ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, type Mac } from '../link/ethernet.ts';
import { type Link, LINK_HEADROOM } from '../link/link.ts';
import { ARP_REPLY, ARP_REQUEST, ArpPacket, type ArpRepr, emitArp } from './arp-packet.ts';

const UNKNOWN_MAC = Buffer.alloc(6);

export interface ArpOptions {
  /** How long a learned entry is used before it must be confirmed again (Linux: ~30 s reachable). */
  entryTtlMs?: number;
  /** Interval between requests while resolving (Linux retrans_time: 1 s). */
  retryMs?: number;
  /** Requests sent before giving up (Linux mcast_solicit: 3). */
  maxRequests?: number;
  /**
   * Packets held per unresolved address (RFC 1122 2.3.2.2 asks for at least one). Linux's
   * unres_qlen is 101, enough for a 64 KB datagram's 45 fragments.
   */
  queueLimit?: number;
  /** Largest number of neighbour entries (Linux gc_thresh3: 1024). */
  maxEntries?: number;
}

interface NeighbourEntry {
  ip: number;
  mac: Mac | null; // null while resolving
  /** Time after which the entry is no longer trusted without confirmation. */
  expiresAt: number;
  refreshing: boolean;
  requestsSent: number;
  timer: Timer | null;
  queue: Buffer[]; // whole frames after LINK_HEADROOM bytes, waiting for the MAC
}

export interface NeighbourInfo {
  ip: number;
  mac: string | null;
  expiresInMs: number;
  queued: number;
}

export class ArpLayer {
  readonly counters = new LayerCounters();
  private readonly cache = new Map<number, NeighbourEntry>();
  private readonly view = new ArpPacket();
  private readonly txBuf = Buffer.alloc(LINK_HEADROOM + 64);
  private readonly txRepr: ArpRepr;
  private readonly askerMac = Buffer.alloc(6);
  private readonly ttlMs: number;
  private readonly retryMs: number;
  private readonly maxRequests: number;
  private readonly queueLimit: number;
  private readonly maxEntries: number;

  constructor(
    private readonly link: Pick<Link, 'send'>,
    private readonly clock: Clock,
    private readonly mac: Mac,
    private readonly ip: number,
    options: ArpOptions = {},
  ) {
    this.ttlMs = options.entryTtlMs ?? 30_000;
    this.retryMs = options.retryMs ?? 1000;
    this.maxRequests = options.maxRequests ?? 3;
    this.queueLimit = options.queueLimit ?? 101;
    this.maxEntries = options.maxEntries ?? 1024;
    this.txRepr = { op: 0, senderMac: mac, senderIp: ip, targetMac: Buffer.alloc(6), targetIp: 0 };
  }

  /** Handles a received ARP packet (the Ethernet payload). */
  receive(buf: Buffer, off: number, len: number): void {
    this.counters.rx++;
    const arp = this.view;
    const bad = arp.parse(buf, off, len);
    if (bad) return this.counters.drop(bad);
    const senderIp = arp.senderIp;
    const targetIp = arp.targetIp;
    if (senderIp === this.ip && senderIp !== 0) {
      // Someone else claims our address; keep ours, note it (RFC 5227 conflict detection).
      return this.counters.drop('arp-address-conflict');
    }
    const forUs = targetIp === this.ip;
    // RFC 826 "merge flag": update an existing entry even when the packet is not for us;
    // create one only when it is.
    const existing = this.cache.get(senderIp);
    if (senderIp !== 0 && (existing || forUs)) this.learn(senderIp, buf, arp.senderMacOffset);
    if (!forUs) return this.counters.drop('arp-not-for-us');
    if (arp.op === ARP_REQUEST) {
      const asker = this.askerMac;
      buf.copy(asker, 0, arp.senderMacOffset, arp.senderMacOffset + 6);
      this.sendArp(ARP_REPLY, asker, senderIp, asker);
    } else if (arp.op !== ARP_REPLY) {
      this.counters.drop('arp-bad-op');
    }
  }

  /** Announces our address (gratuitous ARP request, RFC 5227 3) when the interface comes up. */
  announce(): void {
    this.sendArp(ARP_REQUEST, BROADCAST_MAC, this.ip, UNKNOWN_MAC);
  }

  /**
   * Sends an IPv4 packet whose header starts at ipOff, with ETH_HEADER_LEN bytes of headroom
   * before it, to the next hop; queues a copy while the next hop is being resolved.
   */
  sendIpv4(buf: Buffer, ipOff: number, ipLen: number, nextHop: number, broadcast = false): void {
    const frameOff = ipOff - ETH_HEADER_LEN;
    if (broadcast) {
      emitEthernet(buf, frameOff, BROADCAST_MAC, this.mac, ETHERTYPE_IPV4);
      this.link.send(buf, frameOff, ipLen + ETH_HEADER_LEN);
      return;
    }
    let entry = this.cache.get(nextHop);
    const now = this.clock.now();
    if (entry && entry.mac) {
      if (now >= entry.expiresAt) this.refresh(entry);
      emitEthernet(buf, frameOff, entry.mac, this.mac, ETHERTYPE_IPV4);
      this.link.send(buf, frameOff, ipLen + ETH_HEADER_LEN);
      return;
    }
    if (!entry) {
      entry = this.newEntry(nextHop);
      this.solicit(entry);
    }
    if (entry.queue.length >= this.queueLimit) {
      // Linux drops the oldest queued packet to make room for the newest.
      entry.queue.shift();
      this.counters.drop('arp-queue-full');
    }
    // The whole frame waits: our source MAC and the EtherType now, the destination on reply.
    emitEthernet(buf, frameOff, UNKNOWN_MAC, this.mac, ETHERTYPE_IPV4);
    const copy = Buffer.allocUnsafe(LINK_HEADROOM + ipLen + ETH_HEADER_LEN);
    buf.copy(copy, LINK_HEADROOM, frameOff, ipOff + ipLen);
    entry.queue.push(copy);
  }

  /** Looks up a resolved neighbour (for tests and the API). */
  lookup(ip: number): Mac | null {
    return this.cache.get(ip)?.mac ?? null;
  }

  neighbours(): NeighbourInfo[] {
    const now = this.clock.now();
    return [...this.cache.values()].map((e) => ({
      ip: e.ip,
      mac: e.mac ? [...e.mac].map((b) => b.toString(16).padStart(2, '0')).join(':') : null,
      expiresInMs: e.mac ? e.expiresAt - now : 0,
      queued: e.queue.length,
    }));
  }

  close(): void {
    for (const e of this.cache.values()) e.timer?.cancel();
    this.cache.clear();
  }

  private learn(ip: number, buf: Buffer, macOff: number): void {
    let entry = this.cache.get(ip);
    if (!entry) entry = this.newEntry(ip);
    if (!entry.mac) entry.mac = Buffer.alloc(6);
    buf.copy(entry.mac, 0, macOff, macOff + 6);
    entry.expiresAt = this.clock.now() + this.ttlMs;
    entry.refreshing = false;
    entry.requestsSent = 0;
    entry.timer?.cancel();
    entry.timer = null;
    // Release what waited for this address, in order.
    const waiting = entry.queue;
    entry.queue = [];
    for (const frame of waiting) {
      frame.set(entry.mac, LINK_HEADROOM);
      this.link.send(frame, LINK_HEADROOM, frame.length - LINK_HEADROOM);
    }
  }

  /**
   * Adds an entry, first evicting the oldest when the cache is full, so that a flood of ARP
   * packets or destinations cannot grow it without bound (Linux gc_thresh3: 1024).
   */
  private newEntry(ip: number): NeighbourEntry {
    if (this.cache.size >= this.maxEntries) {
      const oldest = this.cache.values().next().value!;
      oldest.timer?.cancel();
      for (let i = 0; i < oldest.queue.length; i++) this.counters.drop('arp-cache-full');
      this.cache.delete(oldest.ip);
    }
    const entry: NeighbourEntry = { ip, mac: null, expiresAt: 0, refreshing: false, requestsSent: 0, timer: null, queue: [] };
    this.cache.set(ip, entry);
    return entry;
  }

  /** Starts resolution: broadcast requests every retryMs, up to maxRequests. */
  private solicit(entry: NeighbourEntry): void {
    entry.requestsSent++;
    this.sendArp(ARP_REQUEST, BROADCAST_MAC, entry.ip, UNKNOWN_MAC);
    entry.timer = this.clock.setTimer(this.retryMs, () => {
      entry.timer = null;
      if (entry.mac && !entry.refreshing) return;
      if (entry.requestsSent < this.maxRequests) return this.solicit(entry);
      // Resolution failed: drop what waited and forget the entry.
      for (let i = 0; i < entry.queue.length; i++) this.counters.drop('arp-timeout');
      entry.queue = [];
      this.cache.delete(entry.ip);
    });
  }

  /**
   * An expired entry stays usable while we confirm it with unicast requests (like Linux's
   * STALE/PROBE states), so traffic does not stall every TTL.
   */
  private refresh(entry: NeighbourEntry): void {
    if (entry.refreshing || !entry.mac) return;
    entry.refreshing = true;
    entry.requestsSent = 0;
    const probe = (): void => {
      entry.requestsSent++;
      this.sendArp(ARP_REQUEST, entry.mac ?? BROADCAST_MAC, entry.ip, UNKNOWN_MAC);
      entry.timer = this.clock.setTimer(this.retryMs, () => {
        entry.timer = null;
        if (!entry.refreshing) return;
        if (entry.requestsSent < this.maxRequests) return probe();
        this.cache.delete(entry.ip);
      });
    };
    probe();
  }

  private sendArp(op: number, ethDst: Uint8Array, targetIp: number, targetMac: Uint8Array): void {
    const b = this.txBuf;
    emitEthernet(b, LINK_HEADROOM, ethDst, this.mac, ETHERTYPE_ARP);
    // One reusable description of the packet: answering a flood of requests allocates nothing.
    const r = this.txRepr;
    r.op = op;
    r.targetMac.set(targetMac.subarray(0, 6));
    r.targetIp = targetIp;
    emitArp(b, LINK_HEADROOM + ETH_HEADER_LEN, r);
    this.counters.tx++;
    this.link.send(b, LINK_HEADROOM, ETH_HEADER_LEN + 28);
  }
}
