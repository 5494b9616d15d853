// A DNS stub resolver (RFC 1034 5.3.1, RFC 1035 4.2): A queries to the configured servers
// over UDP, each try with its own socket, port and ID (RFC 5452 9.2), retried as glibc's
// resolv.conf defaults do (timeout 5 s, 2 attempts, each attempt going through the server
// list); a truncated answer is asked again over TCP (RFC 1035 4.2.2, RFC 7766). Answers are
// kept in a small cache for their TTL. lookup() has Node's dns.lookup signature and codes.

import { isIP } from 'node:net';
import { formatIpv4, parseIpv4 } from '../ipv4/address.ts';
import { seededRandom } from '../util/random.ts';
import type { Clock, Timer } from '../util/clock.ts';
import type { SocketType, UdpSocket } from '../udp/socket.ts';
import type { ConnectOptions, Socket } from '../tcp/socket.ts';
import { defaultLookup, type LookupAddress, type LookupCallback, type LookupOptions, notFound } from '../tcp/lookup.ts';
import {
  answerAddresses,
  DNS_PORT,
  DNS_UDP_MAX,
  type DnsMessage,
  dnsQuery,
  emitDns,
  parseDns,
  RCODE_FORMERR,
  RCODE_NOERROR,
  RCODE_NOTIMP,
  RCODE_NXDOMAIN,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  TYPE_A,
  TYPE_SOA,
} from './dns-message.ts';

export interface DnsOptions {
  /** Name servers (IPv4 addresses); default those of the DHCP lease (option 6). */
  servers?: string[];
  /** How long one try waits for its answer (resolv.conf `timeout`, default 5000 ms). */
  timeoutMs?: number;
  /** Passes over the server list (resolv.conf `attempts`, default 2). */
  attempts?: number;
  /** resolv.conf `rotate`: each query starts at the next server (default false: the first). */
  rotate?: boolean;
  /**
   * Names the cache holds at most (default 64), answers and negative answers alike; the
   * least recently used go first. 0: no cache.
   */
  cacheSize?: number;
}

/** The dns module's codes (node:dns) a lookup can fail with. */
export type DnsErrorCode = 'ENOTFOUND' | 'ETIMEOUT' | 'EBADRESP' | 'ESERVFAIL' | 'ECONNREFUSED' | 'EREFUSED' | 'EFORMERR' | 'ENOTIMP';

export const DEFAULT_DNS_TIMEOUT_MS = 5000;
export const DEFAULT_DNS_ATTEMPTS = 2;
export const DEFAULT_DNS_CACHE_SIZE = 64;

interface CacheEntry {
  addresses: number[];
  expiresAt: number;
}

/** One try's result: addresses, or a code (and whether trying other servers may help). */
type TryOutcome = { addresses: number[]; ttl: number } | { code: DnsErrorCode; final: false } | { code: 'ENOTFOUND'; final: true; negativeTtl: number };

/**
 * RFC 2308 5: how long NXDOMAIN or NODATA may be cached: the SOA record of the authority
 * section, the lower of its TTL and its MINIMUM field (the last 4 bytes of its RDATA, after
 * two names whose compression does not matter here). Without an SOA: not cached (0).
 */
function negativeTtl(m: DnsMessage): number {
  const soa = m.authorities.find((r) => r.type === TYPE_SOA && r.data !== undefined && r.data.length >= 22);
  if (soa === undefined) return 0;
  const d = soa.data!;
  const minimum = ((d[d.length - 4]! << 24) | (d[d.length - 3]! << 16) | (d[d.length - 2]! << 8) | d[d.length - 1]!) >>> 0;
  return Math.min(soa.ttl, minimum);
}

/** One transmit buffer for every resolver of the process: the UDP layer copies what it sends. */
const scratch = Buffer.alloc(DNS_UDP_MAX);

/** A dns error as Node shapes it (lib/internal/errors.js DNSException). */
export function dnsError(code: DnsErrorCode, hostname: string): NodeJS.ErrnoException & { hostname: string } {
  if (code === 'ENOTFOUND') return notFound(hostname);
  const err = new Error(`getaddrinfo ${code} ${hostname}`) as NodeJS.ErrnoException & { hostname: string };
  err.code = code;
  err.syscall = 'getaddrinfo';
  err.hostname = hostname;
  return err;
}

/** What the resolver needs of its stack. */
export interface DnsHost {
  readonly clock: Clock;
  readonly ip: number;
  readonly seed: number | undefined;
  createSocket(type: SocketType): UdpSocket;
  connect(options: ConnectOptions): Socket;
}

export class DnsResolver {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly random: () => number;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly cacheSize: number;
  private nextServer = 0;
  private readonly inFlight = new Map<string, Promise<number[]>>();
  /** What went on the wire, for tests and counters(): queries over UDP and TCP, cache hits. */
  readonly stats = { udpQueries: 0, tcpQueries: 0, cacheHits: 0 };

  constructor(
    private readonly stack: DnsHost,
    private readonly options: DnsOptions = {},
    /** The lease's servers (option 6) when none are configured. */
    private readonly leaseServers: () => string[] = () => [],
  ) {
    this.random = stack.seed === undefined ? Math.random : seededRandom(stack.seed ^ 0xd25);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
    this.attempts = Math.max(1, options.attempts ?? DEFAULT_DNS_ATTEMPTS);
    this.cacheSize = options.cacheSize ?? DEFAULT_DNS_CACHE_SIZE;
  }

  /** The servers asked, in order: the configured ones, else the DHCP lease's. */
  get servers(): string[] {
    return this.options.servers ?? this.leaseServers();
  }

  /** Names in the cache now (expired ones included until looked up or pushed out). */
  get cached(): number {
    return this.cache.size;
  }

  /**
   * Node's dns.lookup(hostname[, options], callback): family 4 only (an A resolver), `all`
   * for every address. Address literals and 'localhost' need no server.
   */
  lookup(hostname: string, options: LookupOptions | number | LookupCallback, callback?: LookupCallback): void {
    const cb = (typeof options === 'function' ? options : callback)!;
    const opts: LookupOptions = typeof options === 'number' ? { family: options } : typeof options === 'object' && options !== null ? options : {};
    if (isIP(hostname) !== 0 || hostname.toLowerCase() === 'localhost') return defaultLookup(this.stack.ip)(hostname, opts, cb);
    if (opts.family === 6) return void process.nextTick(cb, notFound(hostname));
    // The callback runs on its own tick: what it throws is an uncaught exception, as from
    // Node's dns.lookup, not a rejection of our promise.
    this.resolve4(hostname).then(
      (addresses) => {
        if (opts.all) process.nextTick(cb, null, addresses.map((a): LookupAddress => ({ address: formatIpv4(a), family: 4 })));
        else process.nextTick(cb, null, formatIpv4(addresses[0]!), 4);
      },
      (err: Error) => process.nextTick(cb, err as NodeJS.ErrnoException),
    );
  }

  /** The promise form (dns.promises.lookup): { address, family }, or an array with all. */
  readonly promises = {
    lookup: (hostname: string, options: LookupOptions | number = {}): Promise<LookupAddress | LookupAddress[]> =>
      new Promise((resolve, reject) => {
        this.lookup(hostname, options, (err, address, family) => {
          if (err) reject(err);
          else if (Array.isArray(address)) resolve(address);
          else resolve({ address: address as string, family: family ?? 4 });
        });
      }),
  };

  /** The name's IPv4 addresses (numbers), from the cache or the servers. Rejects with a dns error. */
  async resolve4(hostname: string): Promise<number[]> {
    const name = hostname.toLowerCase().replace(/\.$/, '');
    const now = this.stack.clock.now();
    const hit = this.cache.get(name);
    if (hit !== undefined) {
      this.cache.delete(name);
      if (hit.expiresAt > now) {
        // Most recently used last: the Map's order is the eviction order.
        this.cache.set(name, hit);
        this.stats.cacheHits++;
        if (hit.addresses.length > 0) return hit.addresses;
        // RFC 2308 5: a name known not to exist stays so for the negative TTL.
        throw dnsError('ENOTFOUND', hostname);
      }
    }
    // Lookups of a name already being asked wait for that answer (one query for many connects).
    const asked = this.inFlight.get(name);
    // (The error is made anew: it names the hostname as this caller spelt it.)
    if (asked !== undefined) return asked.catch((err: NodeJS.ErrnoException) => Promise.reject(dnsError((err.code ?? 'EBADRESP') as DnsErrorCode, hostname)));
    const query = this.query(name, hostname);
    this.inFlight.set(name, query);
    try {
      return await query;
    } finally {
      this.inFlight.delete(name);
    }
  }

  private async query(name: string, hostname: string): Promise<number[]> {
    const servers = this.servers.map(parseIpv4).filter((a): a is number => a !== null && a !== 0);
    if (servers.length === 0 || name === '' || emitDns(dnsQuery(0, name), scratch) < 0) throw dnsError('ENOTFOUND', hostname);
    const start = this.options.rotate ? this.nextServer++ % servers.length : 0;
    let last: DnsErrorCode = 'ETIMEOUT';
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      for (let i = 0; i < servers.length; i++) {
        const server = servers[(start + i) % servers.length]!;
        let outcome = await this.tryUdp(name, server);
        if ('truncated' in outcome) outcome = await this.tryTcp(name, server);
        if ('addresses' in outcome) {
          this.remember(name, outcome.addresses, outcome.ttl);
          return outcome.addresses;
        }
        if (outcome.final) {
          if (outcome.negativeTtl > 0) this.remember(name, [], outcome.negativeTtl);
          throw dnsError(outcome.code, hostname);
        }
        // glibc reports the last error; a timeout only when nothing better was heard.
        if (outcome.code !== 'ETIMEOUT' || last === 'ETIMEOUT') last = outcome.code;
      }
    }
    throw dnsError(last, hostname);
  }

  private remember(name: string, addresses: number[], ttl: number): void {
    if (this.cacheSize <= 0 || ttl <= 0) return;
    this.cache.set(name, { addresses, expiresAt: this.stack.clock.now() + ttl * 1000 });
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
  }

  /** What an answer to our question means (RFC 1035 4.1.1 RCODE, RFC 2308 2 NODATA). */
  private judge(m: DnsMessage, name: string): TryOutcome {
    switch (m.rcode) {
      case RCODE_NOERROR: {
        const { addresses, ttl } = answerAddresses(m, name);
        return addresses.length > 0 ? { addresses, ttl } : { code: 'ENOTFOUND', final: true, negativeTtl: negativeTtl(m) };
      }
      case RCODE_NXDOMAIN:
        return { code: 'ENOTFOUND', final: true, negativeTtl: negativeTtl(m) };
      case RCODE_SERVFAIL:
        return { code: 'ESERVFAIL', final: false };
      case RCODE_REFUSED:
        return { code: 'EREFUSED', final: false };
      case RCODE_FORMERR:
        return { code: 'EFORMERR', final: false };
      case RCODE_NOTIMP:
        return { code: 'ENOTIMP', final: false };
      default:
        return { code: 'EBADRESP', final: false };
    }
  }

  /** Is m the answer to our query (RFC 5452 9.1: ID and question must match)? */
  private answers(m: DnsMessage, id: number, name: string): boolean {
    if (!m.response || m.id !== id || m.questions.length !== 1) return false;
    const q = m.questions[0]!;
    return q.type === TYPE_A && q.name.toLowerCase() === name;
  }

  private newId(): number {
    return Math.floor(this.random() * 0x10000);
  }

  /** One UDP try: its own ephemeral port, connected to the server (ICMP errors reach it). */
  private tryUdp(name: string, server: number): Promise<TryOutcome | { truncated: true }> {
    return new Promise((resolve) => {
      const id = this.newId();
      const n = emitDns(dnsQuery(id, name), scratch);
      let socket: UdpSocket | null = this.stack.createSocket('udp4');
      let timer: Timer | null = null;
      const finish = (outcome: TryOutcome | { truncated: true }): void => {
        if (socket === null) return;
        timer?.cancel();
        // (The stack's close may have closed it already.)
        if (socket.isRunning) socket.close();
        socket = null;
        resolve(outcome);
      };
      socket.on('message', (msg: Buffer) => {
        const m = parseDns(msg);
        if (typeof m === 'string') return finish({ code: 'EBADRESP', final: false });
        if (!this.answers(m, id, name)) return; // someone else's, or forged: keep waiting
        if (m.truncated) return finish({ truncated: true });
        finish(this.judge(m, name));
      });
      // ICMP port unreachable on a connected socket (Linux reports it on the next recv).
      socket.on('error', (err: NodeJS.ErrnoException) => finish({ code: err.code === 'ECONNREFUSED' ? 'ECONNREFUSED' : 'ETIMEOUT', final: false }));
      // Sent once connected (as Node's dgram wants): the query is copied until then.
      const query = Buffer.from(scratch.subarray(0, n));
      socket.connect(DNS_PORT, formatIpv4(server), () => socket?.send(query));
      this.stats.udpQueries++;
      timer = this.stack.clock.setTimer(this.timeoutMs, () => finish({ code: 'ETIMEOUT', final: false }));
    });
  }

  /** RFC 1035 4.2.2: the same question over TCP, each message behind a 2-byte length. */
  private tryTcp(name: string, server: number): Promise<TryOutcome> {
    return new Promise((resolve) => {
      const id = this.newId();
      const query = Buffer.alloc(DNS_UDP_MAX + 2);
      const n = emitDns(dnsQuery(id, name), query, 2);
      query.writeUInt16BE(n, 0);
      let socket: Socket | null = this.stack.connect({ host: formatIpv4(server), port: DNS_PORT });
      this.stats.tcpQueries++;
      let received = Buffer.alloc(0);
      let timer: Timer | null = null;
      const finish = (outcome: TryOutcome): void => {
        if (socket === null) return;
        timer?.cancel();
        socket.destroy();
        socket = null;
        resolve(outcome);
      };
      socket.on('connect', () => socket?.write(query.subarray(0, n + 2)));
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        // A TCP answer is at most 65535 bytes: the length prefix bounds what is kept.
        if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
        const m = parseDns(received, 2, received.readUInt16BE(0));
        if (typeof m === 'string' || !this.answers(m, id, name)) return finish({ code: 'EBADRESP', final: false });
        finish(this.judge(m, name));
      });
      socket.on('error', (err: NodeJS.ErrnoException) => finish({ code: err.code === 'ECONNREFUSED' ? 'ECONNREFUSED' : 'ETIMEOUT', final: false }));
      socket.on('close', () => finish({ code: 'EBADRESP', final: false }));
      timer = this.stack.clock.setTimer(this.timeoutMs, () => finish({ code: 'ETIMEOUT', final: false }));
    });
  }
}
