// IGMP for a host (RFC 3376 version 3, RFC 2236 version 2, RFC 1112 version 1 queriers): the
// interface's group memberships, merged from its sockets' (RFC 3376 3.2), told to routers and
// snooping switches with unsolicited reports on every change and reports in answer to their
// queries. As Linux (net/ipv4/igmp.c), version 3 unless force_igmp_version says otherwise or a
// querier of an older version is heard (RFC 3376 7.2.1).

import type { Clock, Timer } from '../util/clock.ts';
import { LayerCounters } from '../util/counters.ts';
import { seededRandom } from '../util/random.ts';
import { isMulticast } from './address.ts';
import {
  ALL_HOSTS,
  ALL_ROUTERS,
  ALLOW_NEW_SOURCES,
  BLOCK_OLD_SOURCES,
  CHANGE_TO_EXCLUDE,
  CHANGE_TO_INCLUDE,
  emitIgmpV2,
  emitIgmpV3Report,
  type GroupRecord,
  IGMP_QUERY,
  IGMP_V1_REPORT,
  IGMP_V2_LEAVE,
  IGMP_V2_REPORT,
  IGMP_V3_REPORT,
  IgmpPacket,
  IGMPV3_ROUTERS,
  MODE_IS_EXCLUDE,
  MODE_IS_INCLUDE,
  PROTO_IGMP,
  recordLength,
  ROUTER_ALERT,
} from './igmp-packet.ts';
import type { Ipv4Packet } from './ipv4-packet.ts';
import { type Ipv4Layer, type MulticastMembership, type SendOptions, TX_HEADROOM } from './ipv4.ts';
import { sharedTxScratch } from '../util/tx-scratch.ts';

export interface IgmpOptions {
  /** Linux force_igmp_version: 0 (v3, or what an older querier speaks), 2 or 3. */
  forceVersion?: 0 | 2 | 3;
  /** Robustness variable (RFC 3376 8.1; Linux IGMP_QUERY_ROBUSTNESS_VARIABLE): 2. */
  robustness?: number;
  /** Linux igmpv2_unsolicited_report_interval: 10000 ms. */
  v2UnsolicitedReportIntervalMs?: number;
  /** Linux igmpv3_unsolicited_report_interval: 1000 ms. */
  v3UnsolicitedReportIntervalMs?: number;
  /** Older Version Querier Present Timeout (RFC 3376 8.12): 2 x 125 s + 10 s. */
  olderQuerierTimeoutMs?: number;
  /** Linux igmp_max_memberships: groups one socket may join (more: ENOBUFS). 20. */
  maxMemberships?: number;
  /** Linux igmp_max_msf: sources one socket may list for a group (more: ENOBUFS). 10. */
  maxSourceFilter?: number;
  seed?: number;
}

/** What the interface wants of one group: sockets with no source list, sources asked for. */
interface Group {
  readonly addr: number;
  /** Socket memberships in EXCLUDE {} mode (any source: addMembership). */
  asm: number;
  /** INCLUDE-mode sources (addSourceSpecificMembership), with how many sockets ask each. */
  readonly include: Map<number, number>;
  /** Answer to a query: fires a report of this group. */
  queryTimer: Timer | null;
  /** v3 group-and-source query: the sources asked about (ours only); null: the whole group. */
  queried: Set<number> | null;
  /** Retransmissions of the state-change report (v2: the unsolicited report) still due. */
  changesLeft: number;
  changeTimer: Timer | null;
  /** v3: the change to report, since the last one was fully retransmitted. */
  modeChanged: boolean;
  readonly allow: Set<number>;
  readonly block: Set<number>;
  /** v2: ours was the last report heard for the group (RFC 2236 3: send a leave on drop). */
  reporter: boolean;
}

function isMember(g: Group): boolean {
  return g.asm > 0 || g.include.size > 0;
}

/** v3 report records fit what is left of the MTU after the IPv4 header and Router Alert. */
const IGMP_HEADROOM = TX_HEADROOM + ROUTER_ALERT.length;

export class IgmpLayer implements MulticastMembership {
  readonly counters = new LayerCounters();
  readonly maxMemberships: number;
  readonly maxSourceFilter: number;
  /** Groups joined or still reporting, made at the first join (the all-systems group is implicit). */
  private groups: Map<number, Group> | null = null;
  private readonly forceVersion: 0 | 2 | 3;
  private readonly robustness: number;
  private readonly v2IntervalMs: number;
  private readonly v3IntervalMs: number;
  private readonly olderQuerierMs: number;
  private readonly random: () => number;
  private readonly view = new IgmpPacket();
  private readonly sendOptions: SendOptions = { ttl: 1, ipOptions: ROUTER_ALERT, multicastLoop: false };
  private v1SeenUntil = -Infinity;
  private v2SeenUntil = -Infinity;
  /** v3 general query: the one Current-State Report of every group (RFC 3376 5.2). */
  private generalTimer: Timer | null = null;
  private closed = false;

  constructor(
    private readonly ipv4: Ipv4Layer,
    private readonly clock: Clock,
    private readonly macFilter: { addMulticast(group: number): void; removeMulticast(group: number): void },
    options: IgmpOptions = {},
  ) {
    this.forceVersion = options.forceVersion ?? 0;
    this.robustness = Math.max(1, options.robustness ?? 2);
    this.v2IntervalMs = options.v2UnsolicitedReportIntervalMs ?? 10_000;
    this.v3IntervalMs = options.v3UnsolicitedReportIntervalMs ?? 1_000;
    this.olderQuerierMs = options.olderQuerierTimeoutMs ?? 2 * 125_000 + 10_000;
    this.maxMemberships = options.maxMemberships ?? 20;
    this.maxSourceFilter = options.maxSourceFilter ?? 10;
    this.random = options.seed !== undefined ? seededRandom(options.seed ^ 0x69676d70) : Math.random;
    ipv4.register(PROTO_IGMP, this);
    ipv4.multicast = this;
    // Every host is in the all-systems group (RFC 1112 4; Linux ip_mc_up), never reported: a
    // membership of the interface itself, held with no Group state (so an idle stack of a fleet
    // holds no group table), whatever sockets join or leave it.
    macFilter.addMulticast(ALL_HOSTS);
  }

  /** Reports are built in the process's IGMP scratch (src/util/tx-scratch.ts), not one per stack. */
  private get txBuf(): Buffer {
    return sharedTxScratch('igmp', IGMP_HEADROOM + this.ipv4.mtu);
  }

  /** The version spoken now: forced, or the oldest querier heard lately (RFC 3376 7.2.1). */
  get version(): 1 | 2 | 3 {
    if (this.forceVersion !== 0) return this.forceVersion;
    const now = this.clock.now();
    if (now < this.v1SeenUntil) return 1;
    if (now < this.v2SeenUntil) return 2;
    return 3;
  }

  // --- memberships (UdpSocket asks through these) ---

  /** A socket joined the group for any source (EXCLUDE {}). */
  join(group: number): void {
    this.change(group, (g) => g.asm++);
  }

  leave(group: number): void {
    this.change(group, (g) => (g.asm = Math.max(0, g.asm - 1)));
  }

  /** A socket asks for the group from this source (INCLUDE {source}). */
  addSource(group: number, source: number): void {
    this.change(group, (g) => g.include.set(source, (g.include.get(source) ?? 0) + 1));
  }

  removeSource(group: number, source: number): void {
    this.change(group, (g) => {
      const n = g.include.get(source) ?? 0;
      if (n <= 1) g.include.delete(source);
      else g.include.set(source, n - 1);
    });
  }

  isMember(group: number): boolean {
    if (group === ALL_HOSTS) return true;
    const g = this.groups?.get(group);
    return g !== undefined && isMember(g);
  }

  accepts(group: number, src: number, protocol: number): boolean {
    if (group === ALL_HOSTS) return true;
    const g = this.groups?.get(group);
    if (g === undefined || !isMember(g)) return false;
    return protocol === PROTO_IGMP || g.asm > 0 || g.include.has(src);
  }

  /** The groups joined, for tests and counters: address and mode. */
  memberships(): { group: number; mode: 'include' | 'exclude'; sources: number[] }[] {
    const out: { group: number; mode: 'include' | 'exclude'; sources: number[] }[] = [{ group: ALL_HOSTS, mode: 'exclude', sources: [] }];
    for (const g of this.groups?.values() ?? [])
      if (isMember(g)) out.push({ group: g.addr, mode: g.asm > 0 ? 'exclude' : 'include', sources: g.asm > 0 ? [] : [...g.include.keys()] });
    return out;
  }

  /**
   * Applies one socket's change to the interface state and reports it: v3 a State-Change
   * Report (RFC 3376 5.1), v1/v2 an unsolicited report on join and a leave on drop (RFC 2236 3),
   * each retransmitted [Robustness Variable] - 1 times at random within the unsolicited
   * report interval.
   */
  private change(addr: number, fn: (g: Group) => void): void {
    if (addr === ALL_HOSTS) return; // always a member (see the constructor); never reported
    this.groups ??= new Map();
    let g = this.groups.get(addr);
    if (g === undefined) {
      g = {
        addr,
        asm: 0,
        include: new Map(),
        queryTimer: null,
        queried: null,
        changesLeft: 0,
        changeTimer: null,
        modeChanged: false,
        allow: new Set(),
        block: new Set(),
        reporter: false,
      };
      this.groups.set(addr, g);
    }
    const was = isMember(g);
    const wasExclude = g.asm > 0;
    const oldSources = wasExclude ? [] : [...g.include.keys()];
    fn(g);
    const now = isMember(g);
    const exclude = g.asm > 0;
    if (!was && now) this.macFilter.addMulticast(addr);
    if (was && !now) this.macFilter.removeMulticast(addr);
    if (this.closed) return this.forgetIfIdle(g);
    if (this.version < 3) {
      if (!was && now) this.startChange(g);
      else if (was && !now) {
        this.cancel(g);
        // Only the last reporter leaves (RFC 2236 3); a v1 querier knows no leaves.
        if (g.reporter && this.version === 2) this.sendV2(IGMP_V2_LEAVE, addr, ALL_ROUTERS);
        g.reporter = false;
        this.forgetIfIdle(g);
      }
      return;
    }
    if (!now) this.cancelQuery(g);
    if (wasExclude !== exclude) {
      g.modeChanged = true;
      g.allow.clear();
      g.block.clear();
    } else if (!exclude) {
      const newSources = new Set(g.include.keys());
      let changed = false;
      for (const s of newSources)
        if (!oldSources.includes(s)) {
          g.allow.add(s);
          g.block.delete(s);
          changed = true;
        }
      for (const s of oldSources)
        if (!newSources.has(s)) {
          g.block.add(s);
          g.allow.delete(s);
          changed = true;
        }
      if (!changed) return this.forgetIfIdle(g);
    } else return; // EXCLUDE {} stays EXCLUDE {}: one more socket, nothing to tell
    this.startChange(g);
  }

  private startChange(g: Group): void {
    g.changesLeft = this.robustness;
    if (g.changeTimer !== null) g.changeTimer.cancel();
    g.changeTimer = null;
    this.transmitChange(g);
  }

  private transmitChange(g: Group): void {
    g.changeTimer = null;
    if (this.closed) return;
    const v = this.version;
    if (v < 3) {
      if (!isMember(g)) return this.forgetIfIdle(g);
      this.sendV2(v === 1 ? IGMP_V1_REPORT : IGMP_V2_REPORT, g.addr, g.addr);
      g.reporter = true;
    } else {
      const records: GroupRecord[] = [];
      if (g.modeChanged) records.push({ type: g.asm > 0 ? CHANGE_TO_EXCLUDE : CHANGE_TO_INCLUDE, group: g.addr, sources: g.asm > 0 ? [] : [...g.include.keys()] });
      else {
        if (g.allow.size > 0) records.push({ type: ALLOW_NEW_SOURCES, group: g.addr, sources: [...g.allow] });
        if (g.block.size > 0) records.push({ type: BLOCK_OLD_SOURCES, group: g.addr, sources: [...g.block] });
      }
      this.sendV3(records);
    }
    g.changesLeft--;
    if (g.changesLeft > 0) {
      const interval = v < 3 ? this.v2IntervalMs : this.v3IntervalMs;
      g.changeTimer = this.clock.setTimer(Math.floor(this.random() * interval), () => this.transmitChange(g));
      return;
    }
    g.modeChanged = false;
    g.allow.clear();
    g.block.clear();
    this.forgetIfIdle(g);
  }

  /** A group no socket wants, with nothing left to send, goes. */
  private forgetIfIdle(g: Group): void {
    if (isMember(g) || g.changeTimer !== null || g.queryTimer !== null) return;
    if (this.groups?.get(g.addr) === g) this.groups.delete(g.addr);
  }

  private cancelQuery(g: Group): void {
    if (g.queryTimer !== null) g.queryTimer.cancel();
    g.queryTimer = null;
    g.queried = null;
  }

  private cancel(g: Group): void {
    this.cancelQuery(g);
    this.cancelChange(g);
  }

  /** No more retransmissions of the group's state change. */
  private cancelChange(g: Group): void {
    if (g.changeTimer !== null) g.changeTimer.cancel();
    g.changeTimer = null;
    g.changesLeft = 0;
    g.modeChanged = false;
    g.allow.clear();
    g.block.clear();
  }

  // --- receive ---

  /** An IGMP message for this host (IPv4 let through only those to groups we joined). */
  receive(ip: Ipv4Packet, off: number, len: number): void {
    this.counters.rx++;
    const m = this.view;
    const bad = m.parse(ip.buf, off, len);
    if (bad) return this.counters.drop(bad);
    switch (m.type) {
      case IGMP_QUERY:
        return this.query(m);
      case IGMP_V1_REPORT:
      case IGMP_V2_REPORT:
        return this.heardReport(m.group);
      case IGMP_V2_LEAVE:
      case IGMP_V3_REPORT:
        return this.counters.drop('igmp-for-routers');
      default:
        return this.counters.drop('igmp-unknown-type');
    }
  }

  /** RFC 3376 5.2, RFC 2236 3: schedule the answer at random within the max response time. */
  private query(m: IgmpPacket): void {
    const group = m.group;
    if (group !== 0 && !isMulticast(group)) return this.counters.drop('igmp-bad-query-group');
    const queryVersion = m.queryVersion;
    if (queryVersion === 0) return this.counters.drop('igmp-bad-query-length');
    if (this.forceVersion === 0) {
      const until = this.clock.now() + this.olderQuerierMs;
      if (queryVersion === 1) this.v1SeenUntil = until;
      else if (queryVersion === 2) this.v2SeenUntil = until;
      if (queryVersion < 3) this.dropV3State();
    }
    // Linux igmp_heard_query: a zero max response time still means "soon" (one tick).
    const maxMs = Math.max(1, m.maxResponseMs);
    if (this.version < 3 || queryVersion < 3) {
      for (const g of this.groups?.values() ?? []) {
        if (!isMember(g) || (group !== 0 && g.addr !== group)) continue;
        this.scheduleAnswer(g, maxMs, null);
      }
      return;
    }
    if (group === 0) {
      if (this.generalTimer !== null) return; // one already due sooner or later: RFC 3376 5.2 rule 1
      this.generalTimer = this.clock.setTimer(Math.floor(this.random() * maxMs), () => this.answerGeneral());
      return;
    }
    const g = this.groups?.get(group);
    if (g === undefined || !isMember(g)) return;
    let asked: Set<number> | null = null;
    const n = m.sourceCount;
    // Only sources we ask for can be in our answer: the set stays as small as our own.
    if (n > 0 && g.asm === 0) {
      asked = new Set();
      for (let i = 0; i < n; i++) {
        const s = m.source(i);
        if (g.include.has(s)) asked.add(s);
      }
    }
    this.scheduleAnswer(g, maxMs, asked);
  }

  /** Keeps the sooner of the pending and the new answer time (RFC 2236 3, RFC 3376 5.2). */
  private scheduleAnswer(g: Group, maxMs: number, asked: Set<number> | null): void {
    if (g.queryTimer !== null) {
      // A pending group answer covers more than a narrower query; two source lists merge.
      if (g.queried !== null) {
        if (asked === null) g.queried = null;
        else for (const s of asked) g.queried.add(s);
      }
      return;
    }
    g.queried = asked;
    g.queryTimer = this.clock.setTimer(Math.floor(this.random() * maxMs), () => this.answerGroup(g));
  }

  private answerGroup(g: Group): void {
    g.queryTimer = null;
    const asked = g.queried;
    g.queried = null;
    if (this.closed || !isMember(g)) return this.forgetIfIdle(g);
    const v = this.version;
    if (v < 3) {
      this.sendV2(v === 1 ? IGMP_V1_REPORT : IGMP_V2_REPORT, g.addr, g.addr);
      g.reporter = true;
      return;
    }
    const record = this.currentState(g, asked);
    if (record !== null) this.sendV3([record]);
  }

  private answerGeneral(): void {
    this.generalTimer = null;
    if (this.closed) return;
    const records: GroupRecord[] = [];
    for (const g of this.groups?.values() ?? []) {
      if (!isMember(g)) continue;
      const r = this.currentState(g, null);
      if (r !== null) records.push(r);
    }
    if (records.length > 0) this.sendV3(records);
  }

  /** A Current-State Record (RFC 3376 5.2): IS_EX {} or IS_IN (our sources, or those asked). */
  private currentState(g: Group, asked: Set<number> | null): GroupRecord | null {
    if (asked !== null) return asked.size > 0 ? { type: MODE_IS_INCLUDE, group: g.addr, sources: [...asked] } : null;
    if (g.asm > 0) return { type: MODE_IS_EXCLUDE, group: g.addr, sources: [] };
    return { type: MODE_IS_INCLUDE, group: g.addr, sources: [...g.include.keys()] };
  }

  /** v1/v2: another member answered first; ours is suppressed (RFC 2236 3). */
  private heardReport(group: number): void {
    if (this.version === 3) return;
    const g = this.groups?.get(group);
    if (g === undefined || g.queryTimer === null) return;
    this.cancelQuery(g);
    g.reporter = false;
  }

  /** An older querier is heard: v3 reports pending are not sent (RFC 3376 7.2.1). */
  private dropV3State(): void {
    if (this.generalTimer !== null) this.generalTimer.cancel();
    this.generalTimer = null;
    for (const g of [...(this.groups?.values() ?? [])]) {
      if (g.changeTimer === null && !g.modeChanged) continue;
      this.cancelChange(g);
      this.forgetIfIdle(g);
    }
  }

  // --- transmit ---

  private sendV2(type: number, group: number, dst: number): void {
    const len = emitIgmpV2(this.txBuf, IGMP_HEADROOM, type, group);
    this.transmit(dst, len);
  }

  /** One report per datagram that fits the MTU, the records in order. */
  private sendV3(records: readonly GroupRecord[]): void {
    const room = this.ipv4.mtu - 24 - 8;
    let batch: GroupRecord[] = [];
    let size = 0;
    for (const r of splitRecords(records, room)) {
      const n = recordLength(r);
      if (batch.length > 0 && size + n > room) {
        this.transmit(IGMPV3_ROUTERS, emitIgmpV3Report(this.txBuf, IGMP_HEADROOM, batch));
        batch = [];
        size = 0;
      }
      batch.push(r);
      size += n;
    }
    if (batch.length > 0) this.transmit(IGMPV3_ROUTERS, emitIgmpV3Report(this.txBuf, IGMP_HEADROOM, batch));
  }

  private transmit(dst: number, len: number): void {
    this.counters.tx++;
    const err = this.ipv4.send(PROTO_IGMP, dst, this.txBuf, IGMP_HEADROOM, len, this.sendOptions);
    if (err) this.counters.drop(`igmp-tx-${err}`);
  }

  /** StackModule: stops every timer; no more reports. */
  close(): void {
    this.closed = true;
    if (this.generalTimer !== null) this.generalTimer.cancel();
    this.generalTimer = null;
    for (const g of this.groups?.values() ?? []) this.cancel(g);
  }
}

/** A record with more sources than one report holds becomes several of the same type (RFC 3376 5.1). */
function splitRecords(records: readonly GroupRecord[], room: number): GroupRecord[] {
  const most = Math.max(1, Math.floor((room - 8) / 4));
  const out: GroupRecord[] = [];
  for (const r of records) {
    if (r.sources.length <= most) out.push(r);
    else for (let i = 0; i < r.sources.length; i += most) out.push({ type: r.type, group: r.group, sources: r.sources.slice(i, i + most) });
  }
  return out;
}
