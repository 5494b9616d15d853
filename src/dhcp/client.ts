// A DHCP client (RFC 2131 4.4, figure 5): INIT -> SELECTING -> REQUESTING -> BOUND, renewal
// at T1 (unicast to the server), REBINDING at T2 (broadcast), expiry drops the address, a
// NAK starts over, an address another host answers for (RFC 5227 probe) is declined.
// INIT-REBOOT asks for a remembered address first. All timers run on the stack's clock and
// all randomness comes from the stack's seed. Idle (BOUND) a client holds one timer and no
// socket: the socket is opened for an exchange and closed when it ends.

import { EventEmitter } from 'node:events';
import { formatIpv4, parseIpv4, prefixMask } from '../ipv4/address.ts';
import { seededRandom } from '../util/random.ts';
import type { GuardedClock, Timer } from '../util/clock.ts';
import type { ArpLayer } from '../arp/arp.ts';
import type { Mac } from '../link/ethernet.ts';
import type { SocketOptions, UdpSocket } from '../udp/socket.ts';
import {
  BOOTREPLY,
  BOOTREQUEST,
  DHCP_CLIENT_PORT,
  DHCP_MAX_LENGTH,
  DHCP_SERVER_PORT,
  DHCPACK,
  DHCPDECLINE,
  DHCPDISCOVER,
  DHCPNAK,
  DHCPOFFER,
  DHCPRELEASE,
  DHCPREQUEST,
  type DhcpMessage,
  emitDhcp,
  emptyDhcpMessage,
  parseDhcp,
} from './dhcp-message.ts';

export interface DhcpOptions {
  /** INIT-REBOOT: ask for this address (a lease remembered from an earlier run) first. */
  requestAddress?: string;
  /** Option 12, so the server can name us (dnsmasq puts it in DNS). */
  hostName?: string;
  /** RFC 5227 probe of an offered address before using it (RFC 2131 3.1.5 SHOULD); default true. */
  arpProbe?: boolean;
  /** Unanswered DISCOVERs before a 'warning' (default 4: about 60 s of RFC 2131 backoff). */
  warnAfter?: number;
}

export type DhcpState = 'init' | 'selecting' | 'requesting' | 'probing' | 'bound' | 'renewing' | 'rebinding' | 'rebooting' | 'declined' | 'stopped';

export interface DhcpLease {
  address: string;
  prefix: number;
  /** The first router of option 3, the default gateway. */
  gateway: string | null;
  dnsServers: string[];
  serverId: string;
  /** Seconds (Infinity: an infinite lease), and T1, T2. */
  leaseTime: number;
  renewalTime: number;
  rebindingTime: number;
  /** Clock times (ms) of the ACK and of the lease's end. */
  obtainedAt: number;
  expiresAt: number;
  hostName: string | null;
}

/** RFC 2131 4.1: the first retransmission after 4 s, doubling up to 64 s, +/- 1 s at random. */
const FIRST_BACKOFF_MS = 4000;
const MAX_BACKOFF_MS = 64_000;
/** REQUESTs (and INIT-REBOOT REQUESTs) retransmitted before starting over from INIT. */
const REQUEST_RETRIES = 4;
/** RFC 2131 4.4.5: in RENEWING and REBINDING, retransmit no sooner than 60 s. */
const MIN_RENEW_RETRY_MS = 60_000;
/** RFC 2131 3.1.5: after a DECLINE, wait at least 10 s before starting again. */
const DECLINE_WAIT_MS = 10_000;
/** RFC 5227 1.1: PROBE_WAIT, PROBE_NUM, PROBE_MIN, PROBE_MAX, ANNOUNCE_WAIT. */
const PROBE_WAIT_MS = 1000;
const PROBE_NUM = 3;
const PROBE_MIN_MS = 1000;
const PROBE_MAX_MS = 2000;
const ANNOUNCE_WAIT_MS = 2000;
/** A lease with no option 51 is taken as one hour (dhclient's default-lease-time is 12 h; dnsmasq's 1 h). */
const DEFAULT_LEASE_S = 3600;
const INFINITE_LEASE = 0xffffffff;
/** Node's timers take at most 2^31 - 1 ms; longer waits are cut in steps. */
const MAX_TIMER_MS = 0x7fffffff;
/** Option 55: subnet, router, DNS, host name, lease, server id, T1, T2. */
const PARAMETER_LIST = [1, 3, 6, 12, 51, 54, 58, 59];

/** One transmit buffer for every client of the process: the UDP layer copies what it sends. */
const scratch = Buffer.alloc(DHCP_MAX_LENGTH);

/** What the client needs of its stack (the Stack is one; a fleet's device would be another). */
export interface DhcpHost {
  readonly clock: GuardedClock;
  readonly mac: Mac;
  readonly ip: number;
  readonly seed: number | undefined;
  readonly arp: Pick<ArpLayer, 'announce' | 'sendProbe' | 'addressWatcher' | 'lookup'>;
  setAddress(ip: number, prefix: number, gateway: number | null): void;
  createSocket(options: SocketOptions): UdpSocket;
}

/** What a bound lease is, in numbers. */
interface Binding {
  address: number;
  prefix: number;
  gateway: number | null;
  serverId: number;
  lease: DhcpLease;
}

export class DhcpClient extends EventEmitter {
  state: DhcpState = 'init';
  /** The lease in force (BOUND, RENEWING, REBINDING), else null. */
  lease: DhcpLease | null = null;
  /** DISCOVERs (or REQUESTs) sent in the exchange under way. */
  attempts = 0;
  private binding: Binding | null = null;
  /** What the OFFER or the INIT-REBOOT proposes, until ACKed. */
  private candidate = 0;
  private candidateServer = 0;
  private xid = 0;
  /** When this acquisition began: the `secs` field (RFC 2131 2). */
  private exchangeStart = 0;
  private socket: UdpSocket | null = null;
  private stepTimer: Timer | null = null;
  private leaseTimer: Timer | null = null;
  private warned = false;
  private readonly random: () => number;
  private readonly requestAddress: number | null;

  constructor(
    private readonly stack: DhcpHost,
    private readonly options: DhcpOptions = {},
  ) {
    super();
    this.random = stack.seed === undefined ? Math.random : seededRandom(stack.seed ^ 0xd4c9);
    this.requestAddress = options.requestAddress !== undefined ? parseIpv4(options.requestAddress) : null;
  }

  /** Starts acquiring: INIT-REBOOT with a remembered address, else INIT. */
  start(): void {
    if (this.requestAddress !== null) this.reboot(this.requestAddress);
    else this.init();
  }

  /** Stops the client; the address stays as it is (Linux's dhclient -x releases nothing). */
  stop(): void {
    this.state = 'stopped';
    this.cancelStep();
    this.leaseTimer?.cancel();
    this.leaseTimer = null;
    this.stack.arp.addressWatcher = null;
    this.closeSocket();
  }

  /**
   * RFC 2131 4.4.6: hands the lease back (DHCPRELEASE, unicast to the server), stops using
   * the address and stops the client.
   */
  release(): void {
    const binding = this.binding;
    if (binding !== null) {
      this.openSocket();
      const m = this.message(DHCPRELEASE);
      m.ciaddr = binding.address;
      m.serverId = binding.serverId;
      // Unicast when the server's MAC is known; else broadcast, since the address goes now
      // and an ARP reply to it would not be taken (servers take a broadcast RELEASE by its
      // server id, as dnsmasq does).
      this.transmit(m, this.stack.arp.lookup(binding.serverId) !== null ? binding.serverId : 0xffffffff);
      this.dropAddress();
    }
    this.stop();
  }

  // --- states ---

  /** RFC 2131 4.4.1: INIT, broadcast a DISCOVER and collect an offer (SELECTING). */
  private init(): void {
    this.beginExchange('selecting');
    this.sendDiscover();
  }

  /** RFC 2131 3.2: INIT-REBOOT, broadcast a REQUEST for the remembered address. */
  private reboot(address: number): void {
    this.beginExchange('rebooting');
    this.candidate = address;
    this.candidateServer = 0;
    this.sendRequest();
  }

  private beginExchange(state: DhcpState): void {
    this.state = state;
    this.cancelStep();
    this.xid = (this.random() * 0x100000000) >>> 0;
    this.exchangeStart = this.stack.clock.now();
    this.attempts = 0;
    this.openSocket();
  }

  private sendDiscover(): void {
    this.attempts++;
    if (this.attempts > (this.options.warnAfter ?? 4) && !this.warned) {
      this.warned = true;
      this.emit('warning', `dhcp: no DHCPOFFER after ${this.attempts - 1} DHCPDISCOVERs; still trying`);
    }
    const m = this.message(DHCPDISCOVER);
    this.transmit(m, 0xffffffff);
    this.retransmitLater(() => this.sendDiscover());
  }

  /** REQUEST in REQUESTING, REBOOTING, RENEWING or REBINDING (RFC 2131 4.3.2 table 5). */
  private sendRequest(): void {
    this.attempts++;
    const m = this.message(DHCPREQUEST);
    const state = this.state;
    let to = 0xffffffff;
    if (state === 'requesting' || state === 'rebooting') {
      m.requestedIp = this.candidate;
      if (state === 'requesting') m.serverId = this.candidateServer;
    } else {
      // RENEWING and REBINDING: ciaddr, no server id nor requested address; to the server
      // itself when renewing.
      m.ciaddr = this.binding!.address;
      if (state === 'renewing') to = this.binding!.serverId;
    }
    this.transmit(m, to);
    if (state === 'requesting' || state === 'rebooting') {
      if (this.attempts > REQUEST_RETRIES) {
        // No ACK: start over (RFC 2131 3.1.5 and, for INIT-REBOOT, 3.2 5).
        this.retransmitLater(() => this.init());
        return;
      }
      this.retransmitLater(() => this.sendRequest());
    } else {
      // RFC 2131 4.4.5: half the time left before T2 (or the lease's end), at least 60 s.
      const b = this.binding!.lease;
      const until = state === 'renewing' ? b.obtainedAt + b.rebindingTime * 1000 : b.expiresAt;
      const wait = Math.max(MIN_RENEW_RETRY_MS, (until - this.stack.clock.now()) / 2);
      this.stepTimer = this.later(wait, () => this.sendRequest());
    }
  }

  private message(type: number): DhcpMessage {
    const m = emptyDhcpMessage(BOOTREQUEST, this.xid, this.stack.mac);
    m.messageType = type;
    m.secs = Math.min(0xffff, Math.floor((this.stack.clock.now() - this.exchangeStart) / 1000));
    // RFC 2131 4.1: we cannot take unicast to an address we do not have yet.
    m.broadcast = this.stack.ip === 0;
    m.clientId = Uint8Array.of(1, ...this.stack.mac);
    // RFC 2131 table 5: DECLINE and RELEASE carry no parameter list (nor, here, a name).
    const asks = type !== DHCPDECLINE && type !== DHCPRELEASE;
    if (asks) m.parameterList = PARAMETER_LIST;
    if (this.options.hostName !== undefined && asks) m.hostName = this.options.hostName;
    return m;
  }

  private transmit(m: DhcpMessage, to: number): void {
    const n = emitDhcp(m, scratch);
    if (n < 0 || this.socket === null) return;
    this.socket.send(scratch.subarray(0, n), DHCP_SERVER_PORT, formatIpv4(to));
  }

  /** RFC 2131 4.1's exponential backoff for the attempt just sent. */
  private retransmitLater(fn: () => void): void {
    const base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (this.attempts - 1));
    const jitter = (this.random() * 2 - 1) * 1000;
    this.stepTimer = this.later(base + jitter, fn);
  }

  // --- replies ---

  private readonly onMessage = (msg: Buffer): void => {
    // Run from the receive path: a bug here is the stack's, counted, never the application's.
    try {
      this.handleReply(msg);
    } catch (err) {
      this.stack.clock.internalError(err);
    }
  };

  private handleReply(msg: Buffer): void {
    const m = parseDhcp(msg);
    if (typeof m === 'string') return;
    if (m.op !== BOOTREPLY || m.xid !== this.xid || !m.chaddr.equals(this.stack.mac)) return;
    const state = this.state;
    if (m.messageType === DHCPOFFER && state === 'selecting') return this.onOffer(m);
    const waiting = state === 'requesting' || state === 'rebooting' || state === 'renewing' || state === 'rebinding';
    if (!waiting) return;
    if (m.messageType === DHCPACK) this.onAck(m);
    else if (m.messageType === DHCPNAK) this.onNak(m);
  }

  /** RFC 2131 4.4.1: the first offer is taken (a client may wait for more; dhclient does not). */
  private onOffer(m: DhcpMessage): void {
    if (m.yiaddr === 0 || m.serverId === null) return;
    this.cancelStep();
    this.state = 'requesting';
    this.candidate = m.yiaddr;
    this.candidateServer = m.serverId;
    this.attempts = 0;
    this.sendRequest();
  }

  private onAck(m: DhcpMessage): void {
    const address = this.state === 'renewing' || this.state === 'rebinding' ? this.binding!.address : this.candidate;
    if (m.yiaddr !== address && m.yiaddr !== 0) {
      if (this.state !== 'requesting' && this.state !== 'rebooting') return;
    }
    this.cancelStep();
    this.warned = false;
    const binding = this.bindingFrom(m, m.yiaddr || address);
    if ((this.state === 'requesting' || this.state === 'rebooting') && (this.options.arpProbe ?? true)) return this.probe(binding);
    this.bind(binding);
  }

  private onNak(m: DhcpMessage): void {
    this.cancelStep();
    this.emit('nak', m.message ?? 'DHCPNAK');
    if (this.binding !== null) this.dropAddress();
    this.init();
  }

  private bindingFrom(m: DhcpMessage, address: number): Binding {
    const now = this.stack.clock.now();
    const raw = m.leaseTime ?? DEFAULT_LEASE_S;
    const leaseTime = raw === INFINITE_LEASE ? Infinity : raw;
    // RFC 2131 4.4.5: T1 defaults to half the lease, T2 to seven eighths; T1 < T2 < lease.
    let rebindingTime = m.rebindingTime !== null && m.rebindingTime < leaseTime ? m.rebindingTime : leaseTime * 0.875;
    let renewalTime = m.renewalTime !== null && m.renewalTime < rebindingTime ? m.renewalTime : leaseTime * 0.5;
    if (renewalTime >= rebindingTime) renewalTime = rebindingTime * (4 / 7);
    if (!Number.isFinite(leaseTime)) rebindingTime = renewalTime = Infinity;
    const mask = m.subnetMask ?? defaultMask(address);
    const prefix = maskPrefix(mask);
    const serverId = m.serverId ?? this.candidateServer;
    // A router off our subnet cannot be the first hop (RFC 1122 3.3.1.1): ignore it.
    const gateway = m.routers.find((r) => ((r ^ address) & prefixMask(prefix)) === 0 && r !== address) ?? null;
    const lease: DhcpLease = {
      address: formatIpv4(address),
      prefix,
      gateway: gateway === null ? null : formatIpv4(gateway),
      dnsServers: m.dnsServers.map(formatIpv4),
      serverId: formatIpv4(serverId),
      leaseTime,
      renewalTime,
      rebindingTime,
      obtainedAt: now,
      expiresAt: now + leaseTime * 1000,
      hostName: m.hostName,
    };
    return { address, prefix, gateway, serverId, lease };
  }

  /**
   * RFC 5227 2.1: wait 0..PROBE_WAIT, send PROBE_NUM probes PROBE_MIN..PROBE_MAX apart, then
   * ANNOUNCE_WAIT; any ARP from another host with the address as sender, or another host's
   * probe for it, is a conflict.
   */
  private probe(binding: Binding): void {
    this.state = 'probing';
    const target = binding.address;
    this.stack.arp.addressWatcher = (sender, wanted, senderIsUs) => {
      if (senderIsUs) return;
      if (sender === target || (sender === 0 && wanted === target)) this.conflict(binding);
    };
    let sent = 0;
    const step = (): void => {
      if (sent === PROBE_NUM) {
        this.stack.arp.addressWatcher = null;
        this.bind(binding);
        return;
      }
      this.stack.arp.sendProbe(target);
      sent++;
      const wait = sent === PROBE_NUM ? ANNOUNCE_WAIT_MS : PROBE_MIN_MS + this.random() * (PROBE_MAX_MS - PROBE_MIN_MS);
      this.stepTimer = this.later(wait, step);
    };
    this.stepTimer = this.later(this.random() * PROBE_WAIT_MS, step);
  }

  /** RFC 2131 3.1.5: DECLINE the address, wait 10 s, start over. */
  private conflict(binding: Binding): void {
    this.stack.arp.addressWatcher = null;
    this.cancelStep();
    const m = this.message(DHCPDECLINE);
    m.requestedIp = binding.address;
    m.serverId = binding.serverId;
    this.transmit(m, 0xffffffff);
    this.state = 'declined';
    this.emit('declined', binding.lease.address);
    this.stepTimer = this.later(DECLINE_WAIT_MS, () => this.init());
  }

  private bind(binding: Binding): void {
    const renewed = this.binding !== null && this.binding.address === binding.address;
    if (!renewed) {
      this.stack.setAddress(binding.address, binding.prefix, binding.gateway);
      // RFC 5227 2.3: announce the address we now use.
      this.stack.arp.announce();
    }
    this.binding = binding;
    this.lease = binding.lease;
    this.state = 'bound';
    this.closeSocket();
    this.scheduleLease();
    this.emit(renewed ? 'renewed' : 'bound', binding.lease);
  }

  /** The one timer a bound client holds: T1, then T2, then the lease's end. */
  private scheduleLease(): void {
    this.leaseTimer?.cancel();
    this.leaseTimer = null;
    const lease = this.binding!.lease;
    if (!Number.isFinite(lease.leaseTime)) return;
    const t1 = lease.obtainedAt + lease.renewalTime * 1000;
    const t2 = lease.obtainedAt + lease.rebindingTime * 1000;
    if (this.state === 'bound') this.leaseTimer = this.laterAt(t1, () => this.renew('renewing'));
    else if (this.state === 'renewing') this.leaseTimer = this.laterAt(t2, () => this.renew('rebinding'));
    else this.leaseTimer = this.laterAt(lease.expiresAt, () => this.expire());
  }

  /** T1: RENEWING (unicast to our server); T2: REBINDING (broadcast to any server). */
  private renew(state: 'renewing' | 'rebinding'): void {
    this.beginExchange(state);
    this.scheduleLease();
    this.emit(state, this.lease);
    this.sendRequest();
  }

  /** RFC 2131 4.4.5: the lease ran out: stop using the address, start over. */
  private expire(): void {
    const lease = this.lease;
    this.dropAddress();
    this.emit('expired', lease);
    this.init();
  }

  private dropAddress(): void {
    this.binding = null;
    this.lease = null;
    this.leaseTimer?.cancel();
    this.leaseTimer = null;
    this.stack.setAddress(0, 32, null);
  }

  // --- plumbing ---

  private openSocket(): void {
    if (this.socket !== null) return;
    const s = this.stack.createSocket({ type: 'udp4', reuseAddr: true });
    s.on('message', this.onMessage);
    // A send error (no route yet) is the exchange's to retry, never the application's.
    s.on('error', () => {});
    s.bind(DHCP_CLIENT_PORT);
    s.setBroadcast(true);
    // The stack is not a handle (src/util/loop-hold.ts): its DHCP socket holds no event loop.
    s.unref();
    this.socket = s;
  }

  private closeSocket(): void {
    if (this.socket?.isRunning) this.socket.close();
    this.socket = null;
  }

  private cancelStep(): void {
    this.stepTimer?.cancel();
    this.stepTimer = null;
  }

  private later(ms: number, fn: () => void): Timer {
    return this.laterAt(this.stack.clock.now() + ms, fn);
  }

  /** A timer at an absolute clock time, in steps for waits longer than Node's timers take. */
  private laterAt(at: number, fn: () => void): Timer {
    const clock = this.stack.clock;
    let current: Timer;
    const handle: Timer = { cancel: () => current.cancel() };
    const arm = (): void => {
      const wait = at - clock.now();
      current = clock.setTimer(Math.min(wait, MAX_TIMER_MS), () => (at - clock.now() > 0 && wait > MAX_TIMER_MS ? arm() : fn()));
    };
    arm();
    return handle;
  }
}

/** RFC 2131 says the server should send option 1; without it, the address's class. */
function defaultMask(address: number): number {
  const top = address >>> 24;
  return top < 128 ? 0xff000000 : top < 192 ? 0xffff0000 : 0xffffff00;
}

function maskPrefix(mask: number): number {
  let prefix = 0;
  while (prefix < 32 && (mask & (0x80000000 >>> prefix)) !== 0) prefix++;
  return prefix;
}
