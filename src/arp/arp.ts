// ARP logic (RFC 826, RFC 1122 2.3.2) as Linux's neighbour code does it (net/ipv4/arp.c
// arp_process, net/core/neighbour.c): answer requests for our address, keep a bounded
// neighbour cache whose entries expire and are refreshed, hold a bounded queue of packets per
// unresolved address, and announce ourselves with a gratuitous ARP. What an outsider sends
// can neither poison the cache with non-unicast addresses nor evict or redirect the gateway.

import { sharedTxScratch } from '../util/tx-scratch.ts';
import type { Clock, Timer } from '../util/clock.ts';
import { LayerCounters } from '../util/counters.ts';
import { BROADCAST_MAC, emitEthernet, ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, isGroupMac, type Mac, macEquals } from '../link/ethernet.ts';
import { type Link, LINK_HEADROOM } from '../link/link.ts';
import { prefixMask } from '../ipv4/address.ts';
import { ARP_REPLY, ARP_REQUEST, ArpPacket, type ArpRepr, emitArp } from './arp-packet.ts';

const UNKNOWN_MAC = Buffer.alloc(6);
// Scratch of every stack of the process (see src/util/tx-scratch.ts: a frame is built and
// handed to the link before any other stack runs), so a fleet's device holds none of its own.
/** An IPv4 group's MAC, 01:00:5e + the group's low 23 bits. */
const groupMac = Buffer.from([0x01, 0x00, 0x5e, 0, 0, 0]);
/** The MAC of a request being answered. */
const askerMac = Buffer.alloc(6);
/** One reusable description of a packet to send: answering a flood of requests allocates nothing. */
const txRepr: ArpRepr = { op: 0, senderMac: Buffer.alloc(6), senderIp: 0, targetMac: Buffer.alloc(6), targetIp: 0 };

/**
 * Linux's forced GC (neigh_forced_gc) spares entries updated in the last 5 s; we spare those
 * used to send in that time too, as Linux's reference count spares entries routes hold.
 */
const GC_RECENT_MS = 5000;
/** Entries a forced GC looks at before giving up: the cost per new entry is bounded when full. */
const GC_SCAN_LIMIT = 32;

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
  /**
   * Largest number of neighbour entries (Linux gc_thresh3: 1024). When full, the oldest entry
   * not recently used or updated gives way; if there is none, no new entry is made (Linux's
   * "neighbour table overflow"). The gateway's entry and pending ones are never the victim.
   */
  maxEntries?: number;
  /** Above this many entries a periodic GC removes stale ones (Linux gc_thresh1: 128). */
  gcThresh1?: number;
  /** An entry neither used nor updated for this long is stale (Linux gc_stale_time: 60 s). */
  gcStaleMs?: number;
  /** Period of that GC (Linux gc_interval: 30 s). */
  gcIntervalMs?: number;
  /**
   * A different MAC for an entry updated less than this long ago is ignored, so that the first
   * of several replies wins (Linux neigh locktime: 1 s).
   */
  locktimeMs?: number;
  /**
   * Linux arp_ignore: 0 answers (and caches) any sender asking for our address; 2 (our
   * default) answers only senders on our subnet, so off-subnet spoofed senders are neither
   * answered nor cached.
   */
  arpIgnore?: 0 | 2;
}

/** Where the interface is: its subnet and gateway (the entry to protect). */
export interface ArpNetwork {
  prefix: number;
  gateway: number | null;
}

interface NeighbourEntry {
  ip: number;
  mac: Mac | null; // null while resolving
  /** Time after which the entry is no longer trusted without confirmation. */
  expiresAt: number;
  /** Last change of MAC or state (Linux n->updated): the locktime runs from here. */
  updatedAt: number;
  /** Last packet sent through it (Linux n->used). */
  usedAt: number;
  refreshing: boolean;
  requestsSent: number;
  timer: Timer | null;
  queue: Buffer[]; // whole frames after LINK_HEADROOM bytes, waiting for the MAC
}

/** What ARP's neighbour cache did (RFC 826, RFC 1122 2.3.2). */
export type ArpEvent = 'request' | 'resolved' | 'failed' | 'updated';

export interface ArpProbe {
  /**
   * A request went out for `ip` (queued: datagrams waiting for it), it resolved to `mac`
   * (queued: datagrams now sent), resolution failed (queued: datagrams dropped), or a known
   * entry took a new MAC. `mac` is valid only during the call.
   */
  arp(event: ArpEvent, ip: number, mac: Uint8Array | null, queued: number): void;
}

export interface NeighbourInfo {
  ip: number;
  mac: string | null;
  expiresInMs: number;
  queued: number;
}

export class ArpLayer {
  readonly counters = new LayerCounters();
  private cacheMade: Map<number, NeighbourEntry> | null = null;
  /** The neighbour table, made at the first neighbour (an idle device of a fleet may have none). */
  private get cache(): Map<number, NeighbourEntry> {
    return (this.cacheMade ??= new Map());
  }
  private readonly view = new ArpPacket();
  /** The destination MAC of a multicast frame, its last three bytes set per group. */
  private readonly ttlMs: number;
  private readonly retryMs: number;
  private readonly maxRequests: number;
  private readonly queueLimit: number;
  private readonly maxEntries: number;
  private readonly gcThresh1: number;
  private readonly gcStaleMs: number;
  private readonly gcIntervalMs: number;
  private readonly locktimeMs: number;
  private readonly arpIgnore: 0 | 2;
  private mask: number;
  private gateway: number | null;
  /** Our subnet's network and broadcast addresses (-1 on a /31 or /32, which have none). */
  private subnetNetwork: number;
  private subnetBroadcast: number;
  private gcTimer: Timer | null = null;
  /** The stack's probe (Stack.setProbe); unset, one null check per event. */
  probe: ArpProbe | null = null;

  constructor(
    private readonly link: Pick<Link, 'send'>,
    private readonly clock: Clock,
    private readonly mac: Mac,
    private ip: number,
    options: ArpOptions = {},
    network: ArpNetwork = { prefix: 32, gateway: null },
  ) {
    this.ttlMs = options.entryTtlMs ?? 30_000;
    this.retryMs = options.retryMs ?? 1000;
    this.maxRequests = options.maxRequests ?? 3;
    this.queueLimit = options.queueLimit ?? 101;
    this.maxEntries = options.maxEntries ?? 1024;
    this.gcThresh1 = options.gcThresh1 ?? 128;
    this.gcStaleMs = options.gcStaleMs ?? 60_000;
    this.gcIntervalMs = options.gcIntervalMs ?? 30_000;
    this.locktimeMs = options.locktimeMs ?? 1000;
    this.arpIgnore = options.arpIgnore ?? 2;
    this.mask = prefixMask(network.prefix);
    this.gateway = network.gateway;
    const hasBroadcast = network.prefix <= 30;
    this.subnetNetwork = hasBroadcast ? (ip & this.mask) >>> 0 : -1;
    this.subnetBroadcast = hasBroadcast ? (ip | ~this.mask) >>> 0 : -1;
  }

  /**
   * Told of every well-formed ARP packet's sender and target before it is handled: the
   * DHCP client's RFC 5227 probe watches for its candidate address there. Unset: one null check.
   */
  addressWatcher: ((senderIp: number, targetIp: number, senderIsUs: boolean) => void) | null = null;

  /** Changes our address (DHCP), with the subnet and gateway it brings. */
  setAddress(ip: number, prefix: number, gateway: number | null): void {
    this.ip = ip;
    this.mask = prefixMask(prefix);
    this.gateway = gateway;
    const hasBroadcast = prefix <= 30;
    this.subnetNetwork = hasBroadcast ? (ip & this.mask) >>> 0 : -1;
    this.subnetBroadcast = hasBroadcast ? (ip | ~this.mask) >>> 0 : -1;
    // Neighbours learnt on the old subnet may not be ours to reach any more.
    for (const e of this.cache.values()) if (e.timer !== null) e.timer.cancel();
    this.cache.clear();
  }

  /**
   * RFC 5227 2.1.1: an ARP probe for `target`, sender address 0.0.0.0 so that no neighbour
   * cache learns an address we may not get.
   */
  sendProbe(target: number): void {
    this.sendArp(ARP_REQUEST, BROADCAST_MAC, target, UNKNOWN_MAC, 0);
  }

  /** Handles a received ARP packet (the Ethernet payload). */
  receive(buf: Buffer, off: number, len: number): void {
    this.counters.rx++;
    const arp = this.view;
    const bad = arp.parse(buf, off, len);
    if (bad) return this.counters.drop(bad);
    const watcher = this.addressWatcher;
    if (watcher !== null) watcher(arp.senderIp, arp.targetIp, macEquals(buf, arp.senderMacOffset, this.mac));
    const op = arp.op;
    // arp_process: only requests and replies are understood.
    if (op !== ARP_REQUEST && op !== ARP_REPLY) return this.counters.drop('arp-bad-op');
    const senderIp = arp.senderIp;
    const targetIp = arp.targetIp;
    const macOff = arp.senderMacOffset;
    // RFC 1812 3.3.2: a hardware address that is broadcast, multicast or zero is not believed
    // (Linux would cache it; unicast would then leave as broadcast).
    if (isGroupMac(buf, macOff) || macEquals(buf, macOff, UNKNOWN_MAC)) return this.counters.drop('arp-bad-sender-mac');
    // (Without an address yet, 0.0.0.0 is nobody's: another host's probe is not a conflict.)
    if (senderIp === this.ip && senderIp !== 0) {
      // Someone else claims our address; keep ours, note it (RFC 5227 conflict detection).
      return this.counters.drop('arp-address-conflict');
    }
    const forUs = targetIp === this.ip && targetIp !== 0;
    if (senderIp === 0) {
      // RFC 5227 probe (Linux's "duplicate address detection packet"): answered, not cached.
      if (forUs && op === ARP_REQUEST) this.answer(buf, macOff, senderIp);
      return;
    }
    // Linux: ip_route_input rejects a martian source (0/8, 127/8, multicast, 240/4, broadcast),
    // so such a request is neither answered nor cached.
    if (this.nonUnicast(senderIp)) return this.counters.drop('arp-martian-sender');
    // arp_ignore 2: the sender must be on the subnet of the address asked for.
    if (this.arpIgnore === 2 && ((senderIp ^ this.ip) & this.mask) !== 0) return this.counters.drop('arp-off-subnet');
    const entry = this.cache.get(senderIp);
    if (forUs && op === ARP_REQUEST) {
      // neigh_event_ns: the asker is probably about to talk to us; cache it, then answer. When
      // the table is full of entries in use, Linux neither caches nor answers.
      const asker = entry ?? this.newEntry(senderIp);
      if (!asker) return;
      const refused = this.update(asker, buf, macOff, false);
      if (refused) this.counters.drop(refused);
      this.answer(buf, macOff, senderIp);
      return;
    }
    // RFC 826 "merge flag": update an existing entry even when the packet is not for us. No
    // entry is made from anything else (Linux arp_accept = 0: unsolicited replies and
    // gratuitous ARP create nothing).
    if (entry) {
      const garp = senderIp === targetIp && (op === ARP_REQUEST || macEquals(buf, arp.targetMacOffset, buf, macOff));
      const refused = this.update(entry, buf, macOff, garp);
      if (refused || !forUs) this.counters.drop(refused ?? 'arp-not-for-us');
      return;
    }
    this.counters.drop(forUs ? 'arp-unsolicited' : 'arp-not-for-us');
  }

  /** Announces our address (gratuitous ARP request, RFC 5227 3) when the interface comes up. */
  announce(): void {
    this.sendArp(ARP_REQUEST, BROADCAST_MAC, this.ip, UNKNOWN_MAC);
  }

  /**
   * Sends an IPv4 datagram to a group. It needs no resolution: Linux's arp_constructor makes
   * a group's neighbour NUD_NOARP with the mapped MAC (ip_eth_mc_map, RFC 1112 6.4: 01:00:5e
   * and the group's low 23 bits).
   */
  sendIpv4Multicast(buf: Buffer, ipOff: number, ipLen: number, group: number): void {
    const mac = groupMac;
    mac[3] = (group >>> 16) & 0x7f;
    mac[4] = (group >>> 8) & 0xff;
    mac[5] = group & 0xff;
    const frameOff = ipOff - ETH_HEADER_LEN;
    emitEthernet(buf, frameOff, mac, this.mac, ETHERTYPE_IPV4);
    this.link.send(buf, frameOff, ipLen + ETH_HEADER_LEN);
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
      entry.usedAt = now;
      if (now >= entry.expiresAt) this.refresh(entry);
      emitEthernet(buf, frameOff, entry.mac, this.mac, ETHERTYPE_IPV4);
      this.link.send(buf, frameOff, ipLen + ETH_HEADER_LEN);
      return;
    }
    if (!entry) {
      // No neighbour entry for an address that cannot be one (Linux resolves none either).
      if (this.nonUnicast(nextHop) || nextHop === this.ip) return this.counters.drop('arp-martian-next-hop');
      const created = this.newEntry(nextHop);
      if (!created) return;
      entry = created;
      this.solicit(entry);
    }
    entry.usedAt = now;
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
    this.gcTimer?.cancel();
    this.gcTimer = null;
  }

  /**
   * Addresses no neighbour can have (Linux's martians and RTN_BROADCAST): 0/8, 127/8,
   * multicast 224/4, 240/4 with 255.255.255.255, and our subnet's network and broadcast.
   */
  private nonUnicast(a: number): boolean {
    const top = a >>> 24;
    return top === 0 || top === 127 || top >= 224 || a === this.subnetBroadcast || a === this.subnetNetwork;
  }

  private answer(buf: Buffer, macOff: number, senderIp: number): void {
    const asker = askerMac;
    buf.copy(asker, 0, macOff, macOff + 6);
    this.sendArp(ARP_REPLY, asker, senderIp, asker);
  }

  /** neigh_update: a sender's hardware address seen in a packet. Returns why it was not taken. */
  private update(entry: NeighbourEntry, buf: Buffer, macOff: number, garp: boolean): 'arp-gateway-changed' | 'arp-locktime' | null {
    const now = this.clock.now();
    const resolving = entry.mac === null;
    if (entry.mac === null) {
      entry.mac = Buffer.alloc(6);
    } else if (!macEquals(buf, macOff, entry.mac)) {
      if (entry.ip === this.gateway) {
        // Every host's traffic off the subnet goes through this entry: a claim of another MAC
        // is only believed once the known one stops answering unicast probes (Linux's
        // NUD_PROBE), then the entry goes and the next packet resolves afresh.
        this.refresh(entry);
        return 'arp-gateway-changed';
      }
      // Linux: a different address overrides only after the locktime, or from a gratuitous
      // ARP; the first of several back-to-back replies wins.
      if (now - entry.updatedAt <= this.locktimeMs && !garp) return 'arp-locktime';
    } else {
      this.confirm(entry, now);
      return null;
    }
    buf.copy(entry.mac, 0, macOff, macOff + 6);
    entry.updatedAt = now;
    this.confirm(entry, now);
    // Release what waited for this address, in order.
    const waiting = entry.queue;
    const probe = this.probe;
    if (probe !== null) probe.arp(resolving ? 'resolved' : 'updated', entry.ip, entry.mac, waiting.length);
    if (waiting.length === 0) return null;
    entry.queue = [];
    for (const frame of waiting) {
      frame.set(entry.mac, LINK_HEADROOM);
      this.link.send(frame, LINK_HEADROOM, frame.length - LINK_HEADROOM);
    }
    return null;
  }

  private confirm(entry: NeighbourEntry, now: number): void {
    if (entry.refreshing) entry.updatedAt = now; // PROBE -> REACHABLE is an update too
    entry.expiresAt = now + this.ttlMs;
    entry.refreshing = false;
    entry.requestsSent = 0;
    entry.timer?.cancel();
    entry.timer = null;
  }

  /**
   * Adds an entry; a full table first makes room as Linux's neigh_forced_gc does, or refuses
   * (null, counted) when every entry is protected or recent, so that a flood of ARP packets or
   * destinations can neither grow the table nor push the gateway or live entries out.
   */
  private newEntry(ip: number): NeighbourEntry | null {
    const now = this.clock.now();
    if (this.cache.size >= this.maxEntries && !this.forcedGc(now)) {
      this.counters.drop('arp-table-full');
      return null;
    }
    const entry: NeighbourEntry = { ip, mac: null, expiresAt: 0, updatedAt: now, usedAt: 0, refreshing: false, requestsSent: 0, timer: null, queue: [] };
    this.cache.set(ip, entry);
    if (this.cache.size > this.gcThresh1 && this.gcTimer === null) this.gcTimer = this.clock.setTimer(this.gcIntervalMs, () => this.periodicGc());
    return entry;
  }

  /** Whether GC may take the entry: not the gateway, not resolving, not used or updated since `since`. */
  private collectable(e: NeighbourEntry, since: number): boolean {
    return e.ip !== this.gateway && e.mac !== null && e.timer === null && e.updatedAt < since && e.usedAt < since;
  }

  /** Evicts the oldest collectable entry among the first few; the ones passed over go last. */
  private forcedGc(now: number): boolean {
    const since = now - GC_RECENT_MS;
    for (let i = 0; i < GC_SCAN_LIMIT && i < this.cache.size; i++) {
      const e = this.cache.values().next().value!;
      this.cache.delete(e.ip);
      if (this.collectable(e, since)) return true;
      this.cache.set(e.ip, e);
    }
    return false;
  }

  /** neigh_periodic_work: above gc_thresh1, stale entries go. */
  private periodicGc(): void {
    this.gcTimer = null;
    const since = this.clock.now() - this.gcStaleMs;
    for (const e of this.cache.values()) if (this.collectable(e, since)) this.cache.delete(e.ip);
    if (this.cache.size > this.gcThresh1) this.gcTimer = this.clock.setTimer(this.gcIntervalMs, () => this.periodicGc());
  }


  /** Starts resolution: broadcast requests every retryMs, up to maxRequests. */
  private solicit(entry: NeighbourEntry): void {
    entry.requestsSent++;
    const probe = this.probe;
    if (probe !== null) probe.arp('request', entry.ip, null, entry.queue.length);
    this.sendArp(ARP_REQUEST, BROADCAST_MAC, entry.ip, UNKNOWN_MAC);
    entry.timer = this.clock.setTimer(this.retryMs, () => {
      entry.timer = null;
      if (entry.mac && !entry.refreshing) return;
      if (entry.requestsSent < this.maxRequests) return this.solicit(entry);
      // Resolution failed: drop what waited and forget the entry.
      const failed = this.probe;
      if (failed !== null) failed.arp('failed', entry.ip, null, entry.queue.length);
      for (let i = 0; i < entry.queue.length; i++) this.counters.drop('arp-timeout');
      entry.queue = [];
      this.forget(entry);
    });
  }

  /** Removes entry if it is still the cached one for its address. */
  private forget(entry: NeighbourEntry): void {
    if (this.cache.get(entry.ip) === entry) this.cache.delete(entry.ip);
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
      const observer = this.probe;
      if (observer !== null) observer.arp('request', entry.ip, entry.mac, 0);
      this.sendArp(ARP_REQUEST, entry.mac ?? BROADCAST_MAC, entry.ip, UNKNOWN_MAC);
      entry.timer = this.clock.setTimer(this.retryMs, () => {
        entry.timer = null;
        if (!entry.refreshing) return;
        if (entry.requestsSent < this.maxRequests) return probe();
        const observer = this.probe;
        if (observer !== null) observer.arp('failed', entry.ip, entry.mac, 0);
        this.forget(entry);
      });
    };
    probe();
  }

  private sendArp(op: number, ethDst: Uint8Array, targetIp: number, targetMac: Uint8Array, senderIp = this.ip): void {
    const b = sharedTxScratch('arp', LINK_HEADROOM + ETH_HEADER_LEN + 28);
    emitEthernet(b, LINK_HEADROOM, ethDst, this.mac, ETHERTYPE_ARP);
    const r = txRepr;
    r.op = op;
    r.senderMac.set(this.mac.subarray(0, 6));
    r.senderIp = senderIp;
    r.targetMac.set(targetMac.subarray(0, 6));
    r.targetIp = targetIp;
    emitArp(b, LINK_HEADROOM + ETH_HEADER_LEN, r);
    this.counters.tx++;
    this.link.send(b, LINK_HEADROOM, ETH_HEADER_LEN + 28);
  }
}
