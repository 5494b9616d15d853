// A DHCP relay agent (RFC 1542 4, RFC 2131 4.1), for a router whose clients' segments have
// no DHCP server (what ISC dhcrelay or dnsmasq --dhcp-relay do for Linux, which has no
// relay in the kernel). A client's broadcast BOOTREQUEST, heard on a client-side interface,
// goes to the server by unicast with giaddr = that interface's address and hops + 1; the
// server answers to giaddr, port 67, and the relay hands the BOOTREPLY to the client on the
// interface giaddr names. The message's bytes go on as they came but for hops and giaddr
// (options it does not know included). The relay keeps no state per client: nothing a client
// or server sends makes it hold anything.

import { formatIpv4, parseIpv4 } from '../ipv4/address.ts';
import { type Ipv4Packet, PROTO_UDP } from '../ipv4/ipv4-packet.ts';
import type { Stack } from '../stack.ts';
import type { UdpSocket } from '../udp/socket.ts';
import { UDP_MAX_PAYLOAD } from '../udp/udp-packet.ts';
import { BOOTREPLY, BOOTREQUEST, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, parseDhcp, setRelayFields } from './dhcp-message.ts';

export interface DhcpRelayOptions {
  /** The DHCP server's address, on a connected subnet or behind the default route. */
  server: string;
  /** The interfaces (indexes into RouterOptions.interfaces) whose clients are served; default every one the server is not reached through. */
  interfaces?: number[];
  /** RFC 1542 4.1.1: a request that has been through more relays than this is dropped (default 4, at most 16). */
  maxHops?: number;
}

export interface DhcpRelayCounters {
  /** BOOTREQUESTs sent on to the server, BOOTREPLYs handed to clients. */
  requests: number;
  replies: number;
  /** Replies that asked for unicast to an address not yet the client's, broadcast instead (RFC 2131 4.1 allows it). */
  broadcastInstead: number;
  /** Dropped: malformed, over the hop limit, a reply for a giaddr not ours, a send that failed. */
  malformed: number;
  tooManyHops: number;
  notOurGiaddr: number;
  sendErrors: number;
}

/** RFC 1542 4.1.1: 16 at the most, 4 by default. */
const DEFAULT_MAX_HOPS = 4;
const MAX_HOPS_LIMIT = 16;
const UDP_DST_PORT_AT = 2;

export class DhcpRelay {
  readonly counters: DhcpRelayCounters = { requests: 0, replies: 0, broadcastInstead: 0, malformed: 0, tooManyHops: 0, notOurGiaddr: 0, sendErrors: 0 };
  private readonly server: string;
  private readonly maxHops: number;
  private readonly sockets: UdpSocket[] = [];
  private readonly toServer: UdpSocket;
  /** One copy buffer for every message relayed (the UDP layer copies what it sends), as large as a datagram's payload. */
  private readonly scratch = Buffer.alloc(UDP_MAX_PAYLOAD);

  /** `clientSides`: the interfaces whose clients are served; `serverSide`: the one the server is reached through. */
  constructor(
    private readonly clientSides: readonly Stack[],
    serverSide: Stack,
    options: DhcpRelayOptions,
  ) {
    if (parseIpv4(options.server) === null) throw new Error(`dhcpRelay: not an address: ${options.server}`);
    this.server = options.server;
    this.maxHops = options.maxHops ?? DEFAULT_MAX_HOPS;
    if (!Number.isInteger(this.maxHops) || this.maxHops < 0 || this.maxHops > MAX_HOPS_LIMIT) throw new Error(`dhcpRelay: maxHops ${this.maxHops} is not 0..${MAX_HOPS_LIMIT}`);
    for (const side of clientSides) {
      const socket = this.open(side, (msg) => this.fromClientSide(side, msg));
      socket.setBroadcast(true);
    }
    // The server's replies come to giaddr (a client side's address); anything it sends to
    // this interface's own address is taken the same way.
    this.toServer = this.open(serverSide, (msg) => this.fromClientSide(null, msg));
  }

  private open(stack: Stack, onMessage: (msg: Buffer) => void): UdpSocket {
    const socket = stack.createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (msg: Buffer) => {
      // Run from the receive path: a bug here is the stack's, counted, never thrown.
      try {
        onMessage(msg);
      } catch (err) {
        stack.clock.internalError(err);
      }
    });
    socket.on('error', () => this.counters.sendErrors++);
    socket.bind(DHCP_SERVER_PORT);
    // The router's sockets hold no event loop (as the DHCP client's: src/util/loop-hold.ts).
    socket.unref();
    this.sockets.push(socket);
    return socket;
  }

  /**
   * For a router's forwarding path: a datagram for a client side's own address that came in
   * on another interface (the server's reply to giaddr, RFC 2131 4.1), which the relay's
   * socket on that side is to receive. The stack to deliver it to, or null.
   */
  receiverOf(ip: Ipv4Packet): Stack | null {
    if (ip.protocol !== PROTO_UDP || ip.isFragment || ip.payloadLength < 8) return null;
    if (ip.buf.readUInt16BE(ip.payloadOffset + UDP_DST_PORT_AT) !== DHCP_SERVER_PORT) return null;
    return this.clientSides.find((s) => s.ipv4.ip === ip.dst) ?? null;
  }

  /** Port 67 on a client side hears both the clients' requests and the server's replies to giaddr. */
  private fromClientSide(side: Stack | null, msg: Buffer): void {
    const m = parseDhcp(msg);
    if (typeof m === 'string') {
      this.counters.malformed++;
      return;
    }
    if (m.op === BOOTREQUEST && side !== null) this.relayRequest(side, msg, m.hops, m.giaddr);
    else if (m.op === BOOTREPLY) this.relayReply(msg, m.giaddr, m.broadcast, m.ciaddr);
  }

  /** RFC 1542 4.1.1: hops + 1, giaddr filled in if zero (another relay's is kept), unicast to the server. */
  private relayRequest(side: Stack, msg: Buffer, hops: number, giaddr: number): void {
    if (hops >= this.maxHops) {
      this.counters.tooManyHops++;
      return;
    }
    const n = msg.copy(this.scratch);
    setRelayFields(this.scratch, 0, hops + 1, giaddr !== 0 ? giaddr : side.ipv4.ip);
    this.counters.requests++;
    this.toServer.send(this.scratch.subarray(0, n), DHCP_SERVER_PORT, this.server);
  }

  /**
   * RFC 1542 4.1.2, RFC 2131 4.1: to the client on the interface giaddr names: broadcast if
   * it set the BROADCAST flag, else to ciaddr if it has one; a client still without an
   * address would want unicast to yiaddr at chaddr without ARP, which this relay cannot
   * send, so that one is broadcast too (the MAY of RFC 2131 4.1).
   */
  private relayReply(msg: Buffer, giaddr: number, broadcast: boolean, ciaddr: number): void {
    const side = this.clientSides.find((s) => s.ipv4.ip === giaddr);
    if (side === undefined) {
      this.counters.notOurGiaddr++;
      return;
    }
    let to = '255.255.255.255';
    if (!broadcast && ciaddr !== 0) to = formatIpv4(ciaddr);
    else if (!broadcast) this.counters.broadcastInstead++;
    this.counters.replies++;
    this.sockets[this.clientSides.indexOf(side)]!.send(msg, DHCP_CLIENT_PORT, to);
  }

  close(): void {
    for (const s of this.sockets.splice(0)) if (s.isRunning) s.close();
  }
}
