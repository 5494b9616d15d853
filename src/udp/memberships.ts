// One socket's multicast memberships, as Linux keeps them per socket (inet->mc_list,
// net/ipv4/igmp.c): groups joined for any source (EXCLUDE {}) or from listed sources (INCLUDE),
// with Linux's errno for each misuse and its bounds (igmp_max_memberships, igmp_max_msf). The
// interface-wide state and the reports are the IGMP layer's (MulticastContext).

import { isMulticast, parseIpv4 } from '../ipv4/address.ts';
import { systemError } from '../util/errors.ts';

/** The interface-wide memberships (the IGMP layer) and Linux's per-socket bounds on them. */
export interface MulticastContext {
  readonly maxMemberships: number;
  readonly maxSourceFilter: number;
  join(group: number): void;
  leave(group: number): void;
  addSource(group: number, source: number): void;
  removeSource(group: number, source: number): void;
}

export class SocketMemberships {
  /** Group: null for any source (EXCLUDE {}), else the INCLUDE source list. */
  private readonly groups = new Map<number, Set<number> | null>();

  constructor(
    private readonly multicast: MulticastContext,
    private readonly ourIp: number,
  ) {}

  /**
   * Does a datagram to the group from src reach this socket (Linux ip_mc_sf_allow)? Without
   * a membership of its own, yes: IP_MULTICAST_ALL is on by default, so a socket bound to the
   * port hears every group the host joined. With one, its source list decides.
   */
  allows(group: number, src: number): boolean {
    const m = this.groups.get(group);
    return m === undefined || m === null || m.has(src);
  }

  /** IP_ADD_MEMBERSHIP (ip_mc_join_group): EINVAL, ENODEV, EADDRINUSE, ENOBUFS in that order. */
  join(groupText: unknown, interfaceText: unknown): void {
    const syscall = 'addMembership';
    const group = this.parse(syscall, groupText, interfaceText);
    if (!isMulticast(group)) throw systemError('EINVAL', syscall);
    this.checkInterface(syscall, interfaceText);
    if (this.groups.has(group)) throw systemError('EADDRINUSE', syscall);
    if (this.groups.size >= this.multicast.maxMemberships) throw systemError('ENOBUFS', syscall);
    this.groups.set(group, null);
    this.multicast.join(group);
  }

  /** IP_DROP_MEMBERSHIP (ip_mc_leave_group): the group whatever its source list. */
  drop(groupText: unknown, interfaceText: unknown): void {
    const syscall = 'dropMembership';
    const group = this.parse(syscall, groupText, interfaceText);
    this.checkInterface(syscall, interfaceText);
    if (!this.groups.has(group)) throw systemError('EADDRNOTAVAIL', syscall);
    this.leave(group);
  }

  /** MCAST_JOIN_SOURCE_GROUP (ip_mc_source, add). */
  joinSource(sourceText: string, groupText: string, interfaceText: unknown): void {
    const syscall = 'addSourceSpecificMembership';
    const [source, group] = this.parseSource(syscall, sourceText, groupText, interfaceText);
    const m = this.multicast;
    const list = this.groups.get(group);
    if (list === undefined) {
      if (this.groups.size >= m.maxMemberships) throw systemError('ENOBUFS', syscall);
      this.groups.set(group, new Set([source]));
      m.addSource(group, source);
      return;
    }
    if (list === null) {
      // An empty EXCLUDE filter may switch mode (ip_mc_source: "allow mode switches for empty-set filters").
      this.groups.set(group, new Set([source]));
      m.addSource(group, source);
      m.leave(group);
      return;
    }
    if (list.has(source)) throw systemError('EADDRNOTAVAIL', syscall);
    if (list.size >= m.maxSourceFilter) throw systemError('ENOBUFS', syscall);
    list.add(source);
    m.addSource(group, source);
  }

  /** MCAST_LEAVE_SOURCE_GROUP: drops one source; the last one leaves the group (ip_mc_source). */
  dropSource(sourceText: string, groupText: string, interfaceText: unknown): void {
    const syscall = 'dropSourceSpecificMembership';
    const [source, group] = this.parseSource(syscall, sourceText, groupText, interfaceText);
    const list = this.groups.get(group);
    if (list === undefined) throw systemError('EINVAL', syscall); // "must have a prior join"
    if (list === null || !list.has(source)) throw systemError('EADDRNOTAVAIL', syscall);
    list.delete(source);
    this.multicast.removeSource(group, source);
    if (list.size === 0) this.groups.delete(group);
  }

  /** The socket closes: it leaves every group (ip_mc_drop_socket). */
  leaveAll(): void {
    for (const group of [...this.groups.keys()]) this.leave(group);
  }

  private leave(group: number): void {
    const list = this.groups.get(group);
    this.groups.delete(group);
    if (list === null) this.multicast.leave(group);
    else if (list) for (const s of list) this.multicast.removeSource(group, s);
  }

  /** libuv parses both addresses first: EINVAL. */
  private parse(syscall: string, groupText: unknown, interfaceText: unknown): number {
    const group = parseIpv4(String(groupText));
    if (group === null) throw systemError('EINVAL', syscall);
    if (interfaceText !== undefined && parseIpv4(String(interfaceText)) === null) throw systemError('EINVAL', syscall);
    return group;
  }

  private parseSource(syscall: string, sourceText: string, groupText: string, interfaceText: unknown): [number, number] {
    const group = this.parse(syscall, groupText, interfaceText);
    const source = parseIpv4(sourceText);
    if (source === null || !isMulticast(group)) throw systemError('EINVAL', syscall);
    this.checkInterface(syscall, interfaceText);
    return [source, group];
  }

  /** A membership on an interface not ours: ENODEV (ip_mc_find_dev). */
  private checkInterface(syscall: string, interfaceText: unknown): void {
    if (interfaceText === undefined) return;
    const addr = parseIpv4(String(interfaceText));
    if (addr !== 0 && addr !== this.ourIp) throw systemError('ENODEV', syscall);
  }
}
