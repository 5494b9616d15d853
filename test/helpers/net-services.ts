// Small in-memory DHCP and DNS servers on a stack, for the client and resolver tests in
// virtual time, and the helper that runs virtual time with promise callbacks in between.

import { formatIpv4, parseIpv4 } from '../../src/ipv4/address.ts';
import {
  BOOTREPLY,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  DHCPACK,
  DHCPDECLINE,
  DHCPDISCOVER,
  DHCPNAK,
  DHCPOFFER,
  DHCPREQUEST,
  type DhcpMessage,
  emitDhcp,
  emptyDhcpMessage,
  parseDhcp,
} from '../../src/dhcp/dhcp-message.ts';
import { CLASS_IN, type DnsMessage, type DnsRecord, emitDns, parseDns, RCODE_NXDOMAIN, TYPE_A } from '../../src/dns/dns-message.ts';
import type { Stack } from '../../src/stack.ts';
import type { VirtualClock } from '../../src/util/clock.ts';

/** Runs virtual time for ms, letting promise and nextTick callbacks run between timers. */
export async function runFor(clock: VirtualClock, ms: number): Promise<void> {
  const end = clock.now() + ms;
  for (let guard = 0; guard < 1_000_000; guard++) {
    await new Promise<void>((r) => setImmediate(r));
    const next = clock.nextTimerAt();
    if (next === null || next > end) break;
    clock.runUntil(next);
  }
  clock.runUntil(end);
  await new Promise<void>((r) => setImmediate(r));
}

export interface SeenDhcp {
  at: number;
  type: number | null;
  message: DhcpMessage;
  /** The sender's address, and the message's bytes. */
  to: string;
  raw: Buffer;
}

export interface DhcpServerOptions {
  /** Addresses handed out, in turn, one per DISCOVER. */
  pool: string[];
  leaseTime?: number;
  renewalTime?: number;
  rebindingTime?: number;
  dnsServers?: string[];
  /** Option 1 and 3 (default /24 and the server's own address). */
  subnetMask?: number;
  routers?: string[];
  /** Decides whether to answer a message (default: always). */
  answer?: (m: DhcpMessage, seen: SeenDhcp[]) => boolean;
  /** NAK this REQUEST instead of ACKing it. */
  nak?: (m: DhcpMessage) => boolean;
}

/** A DHCP server on `stack` (its address is the router and server id). */
export function dhcpServer(stack: Stack, options: DhcpServerOptions) {
  const seen: SeenDhcp[] = [];
  let next = 0;
  const offered = new Map<string, number>();
  const socket = stack.createSocket('udp4');
  socket.bind(DHCP_SERVER_PORT);
  socket.setBroadcast(true);
  const buf = Buffer.alloc(600);
  const reply = (req: DhcpMessage, type: number, yiaddr: number): void => {
    const m = emptyDhcpMessage(BOOTREPLY, req.xid, Buffer.from(req.chaddr));
    m.messageType = type;
    m.giaddr = req.giaddr;
    // RFC 2131 4.3.2: a NAK through a relay asks it to broadcast.
    m.broadcast = req.broadcast || (type === DHCPNAK && req.giaddr !== 0);
    m.yiaddr = yiaddr;
    m.serverId = stack.ip;
    if (type !== DHCPNAK) {
      m.subnetMask = options.subnetMask ?? 0xffffff00;
      m.routers = options.routers?.map((r) => parseIpv4(r)!) ?? [stack.ip];
      m.dnsServers = (options.dnsServers ?? []).map((s) => parseIpv4(s)!);
      m.leaseTime = options.leaseTime ?? 3600;
      m.renewalTime = options.renewalTime ?? null;
      m.rebindingTime = options.rebindingTime ?? null;
    } else m.message = 'wrong address';
    const n = emitDhcp(m, buf);
    // RFC 2131 4.1: to the relay agent (giaddr, port 67) if one passed the request on; else
    // broadcast to a client without an address (or asking for it), else unicast.
    if (req.giaddr !== 0) return socket.send(buf.subarray(0, n), DHCP_SERVER_PORT, formatIpv4(req.giaddr));
    const to = req.ciaddr !== 0 && !req.broadcast ? formatIpv4(req.ciaddr) : '255.255.255.255';
    socket.send(buf.subarray(0, n), DHCP_CLIENT_PORT, to);
  };
  socket.on('message', (msg: Buffer, rinfo) => {
    const m = parseDhcp(msg);
    if (typeof m === 'string') return;
    const entry = { at: stack.clock.now(), type: m.messageType, message: m, to: rinfo.address, raw: Buffer.from(msg) };
    seen.push(entry);
    if (options.answer && !options.answer(m, seen)) return;
    const key = Buffer.from(m.chaddr).toString('hex');
    if (m.messageType === DHCPDISCOVER) {
      const addr = parseIpv4(options.pool[next++ % options.pool.length]!)!;
      offered.set(key, addr);
      reply(m, DHCPOFFER, addr);
    } else if (m.messageType === DHCPREQUEST) {
      const wanted = m.requestedIp ?? m.ciaddr;
      if (options.nak?.(m)) return reply(m, DHCPNAK, 0);
      reply(m, DHCPACK, wanted);
    } else if (m.messageType === DHCPDECLINE) {
      offered.delete(key);
    }
  });
  return { seen, socket, types: () => seen.map((s) => s.type) };
}

export interface DnsServerOptions {
  /** name -> addresses; a name not here is NXDOMAIN. */
  zone: Record<string, string[]>;
  ttl?: number;
  /** CNAMEs: alias -> canonical name. */
  aliases?: Record<string, string>;
  /** Per query (0-based count): 'answer' (default), 'silent', 'garbage', 'servfail', 'truncate'. */
  behaviour?: (index: number, q: DnsMessage) => 'answer' | 'silent' | 'garbage' | 'servfail' | 'truncate';
  /** Answer TCP queries on port 53 too. */
  tcp?: boolean;
  /** With NXDOMAIN, an SOA (TTL 3600) with this MINIMUM in the authority section (RFC 2308 3). */
  soaMinimum?: number;
}

/** An SOA for the root: two root names, then serial, refresh, retry, expire, minimum. */
function soa(minimum: number): DnsRecord {
  const data = Buffer.alloc(22);
  data.writeUInt32BE(minimum, 18);
  return { name: '', type: 6, class: CLASS_IN, ttl: 3600, data };
}

/** A DNS server on `stack`, port 53, UDP (and TCP). */
export function dnsServer(stack: Stack, options: DnsServerOptions) {
  const queries: { at: number; name: string; transport: 'udp' | 'tcp' }[] = [];
  const out = Buffer.alloc(4096);
  const answer = (q: DnsMessage, truncate: boolean, servfail: boolean): Buffer => {
    const name = q.questions[0]?.name ?? '';
    const answers: DnsRecord[] = [];
    let current = name;
    const alias = options.aliases?.[current];
    if (alias !== undefined) {
      answers.push({ name: current, type: 5, class: CLASS_IN, ttl: options.ttl ?? 300, target: alias });
      current = alias;
    }
    const addresses = options.zone[current];
    for (const a of addresses ?? []) answers.push({ name: current, type: TYPE_A, class: CLASS_IN, ttl: options.ttl ?? 300, address: parseIpv4(a)! });
    const m: DnsMessage = {
      ...q,
      response: true,
      recursionAvailable: true,
      truncated: truncate,
      rcode: servfail ? 2 : addresses === undefined ? RCODE_NXDOMAIN : 0,
      answers: truncate || servfail ? [] : answers,
      authorities: addresses === undefined && options.soaMinimum !== undefined ? [soa(options.soaMinimum)] : [],
      additionals: [],
    };
    const n = emitDns(m, out);
    return Buffer.from(out.subarray(0, n));
  };
  const socket = stack.createSocket('udp4');
  socket.bind(53);
  socket.on('message', (msg: Buffer, rinfo) => {
    const q = parseDns(msg);
    if (typeof q === 'string') return;
    const index = queries.length;
    queries.push({ at: stack.clock.now(), name: q.questions[0]?.name ?? '', transport: 'udp' });
    const b = options.behaviour?.(index, q) ?? 'answer';
    if (b === 'silent') return;
    if (b === 'garbage') return socket.send(Buffer.from('this is not DNS'), rinfo.port, rinfo.address);
    socket.send(answer(q, b === 'truncate', b === 'servfail'), rinfo.port, rinfo.address);
  });
  let server: ReturnType<Stack['createServer']> | null = null;
  if (options.tcp) {
    server = stack.createServer((conn) => {
      let got = Buffer.alloc(0);
      conn.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length < 2 || got.length < 2 + got.readUInt16BE(0)) return;
        const q = parseDns(got, 2, got.readUInt16BE(0));
        if (typeof q === 'string') return void conn.destroy();
        queries.push({ at: stack.clock.now(), name: q.questions[0]?.name ?? '', transport: 'tcp' });
        const a = answer(q, false, false);
        const len = Buffer.alloc(2);
        len.writeUInt16BE(a.length);
        conn.end(Buffer.concat([len, a]));
      });
    });
    server.listen(53);
  }
  return { queries, socket, server };
}
