// A script's system calls on the stack's net-like API, with Linux's return values and errnos:
// file descriptors from 3 up, listen/accept on a Server, connect on a Socket, read and
// write on bytes the runner keeps (so that a close with unread bytes resets, as Linux's
// tcp_close does), blocking calls that complete when the stack lets them.

import type { Stack } from '../stack.ts';
import type { Server } from '../tcp/server.ts';
import type { Socket } from '../tcp/socket.ts';
import type { TcpInfo } from '../tcp/info.ts';
import type { Expr, SyscallLine } from './parse.ts';
import { DrillUnsupported } from './sysctl.ts';
import type { SyscallOutcome, SyscallTarget } from './target.ts';

/** Linux's values of the constants scripts use (asm-generic and netinet headers). */
export const CONSTANTS: Record<string, number> = {
  AF_INET: 2,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  IPPROTO_TCP: 6,
  IPPROTO_IP: 0,
  IPPROTO_UDP: 17,
  SOL_SOCKET: 1,
  SOL_TCP: 6,
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_KEEPALIVE: 9,
  SO_LINGER: 13,
  TCP_NODELAY: 1,
  TCP_MAXSEG: 2,
  TCP_KEEPIDLE: 4,
  TCP_KEEPINTVL: 5,
  TCP_KEEPCNT: 6,
  F_GETFL: 3,
  F_SETFL: 4,
  O_RDONLY: 0,
  O_WRONLY: 1,
  O_RDWR: 2,
  O_NONBLOCK: 0x800,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  POLLIN: 0x1,
  POLLPRI: 0x2,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  POLLNVAL: 0x20,
  POLLRDNORM: 0x40,
  POLLWRNORM: 0x100,
  POLLRDHUP: 0x2000,
  EPIPE: 32,
  EAGAIN: 11,
  ECONNRESET: 104,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EINPROGRESS: 115,
  ENOTCONN: 107,
};

const SUPPORTED = new Set(['socket', 'bind', 'listen', 'accept', 'connect', 'read', 'write', 'send', 'recv', 'close', 'shutdown', 'fcntl', 'poll', 'setsockopt', 'getsockopt']);
const SETSOCKOPT = new Set(['SO_REUSEADDR', 'TCP_NODELAY', 'SO_KEEPALIVE', 'TCP_KEEPIDLE', 'TCP_KEEPINTVL', 'TCP_KEEPCNT', 'SO_LINGER']);
const GETSOCKOPT = new Set(['SO_ERROR', 'TCP_MAXSEG']);
/** Errnos and the errno names a connection's error code maps to. */
const ERRNO_NAMES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH']);

export function constant(name: string): number {
  const v = CONSTANTS[name];
  if (v === undefined) throw new DrillUnsupported(`constant ${name}`);
  return v;
}

/** An integer expression: a literal, a constant, or an `|` of them. */
export function intValue(e: Expr): number {
  switch (e.kind) {
    case 'int':
      return e.value;
    case 'word':
      return constant(e.name);
    case 'or':
      return intValue(e.left) | intValue(e.right);
    case 'array':
      if (e.items.length === 1) return intValue(e.items[0]!);
      break;
    default:
      break;
  }
  throw new DrillUnsupported(`expression ${JSON.stringify(e)}`);
}

/** The port of a sockaddr literal {sa_family=AF_INET, sin_port=htons(8080), ...}, or null for `...`. */
export function sockaddrPort(e: Expr | undefined): number | null {
  if (!e || e.kind === 'ellipsis') return null;
  if (e.kind === 'struct') {
    for (const item of e.items) {
      if (item.kind === 'assign' && item.name === 'sin_port') {
        const v = item.value;
        if (v.kind === 'call' && v.name === 'htons' && v.args[0]) return intValue(v.args[0]);
        return intValue(v);
      }
      if (item.kind === 'assign' && item.name === 'sin_addr') {
        const v = item.value;
        if (!(v.kind === 'call' && v.name === 'inet_addr')) throw new DrillUnsupported('sin_addr other than inet_addr()');
      }
    }
  }
  throw new DrillUnsupported(`socket address ${JSON.stringify(e)}`);
}

/** poll()'s pollfd array: [{fd=4, events=POLLIN, revents=POLLIN}], revents as the script expects it (or none). */
export function pollEntries(call: SyscallLine): { fd: number; events: number; revents: Expr | undefined }[] {
  const list = call.args[0];
  if (list?.kind !== 'array') throw new DrillUnsupported('poll() without a pollfd array');
  return list.items.map((item) => {
    if (item.kind !== 'struct') throw new DrillUnsupported('pollfd');
    const field = (n: string): Expr | undefined => {
      const f = item.items.find((i) => i.kind === 'assign' && i.name === n);
      return f && f.kind === 'assign' ? f.value : undefined;
    };
    return { fd: intValue(field('fd')!), events: intValue(field('events')!), revents: field('revents') };
  });
}

/** Rejects before the run what the mapping cannot express. */
export function checkSupported(call: SyscallLine): void {
  if (!SUPPORTED.has(call.name)) throw new DrillUnsupported(`system call ${call.name}`);
  const arg = (i: number): Expr | undefined => call.args[i];
  const word = (i: number): string | null => {
    const a = arg(i);
    return a?.kind === 'word' ? a.name : null;
  };
  switch (call.name) {
    case 'socket':
      if (word(1) !== 'SOCK_STREAM' && arg(1)?.kind !== 'ellipsis') throw new DrillUnsupported(`socket type ${JSON.stringify(arg(1))}`);
      if (word(0) !== null && word(0) !== 'AF_INET' && word(0) !== 'PF_INET') throw new DrillUnsupported(`socket family ${word(0)}`);
      break;
    case 'send':
    case 'recv':
      if (arg(3) && intValue(arg(3)!) !== 0) throw new DrillUnsupported(`${call.name} flags ${JSON.stringify(arg(3))}`);
      break;
    case 'setsockopt':
      if (!SETSOCKOPT.has(word(2) ?? '')) throw new DrillUnsupported(`setsockopt ${word(2) ?? JSON.stringify(arg(2))}`);
      break;
    case 'getsockopt':
      if (!GETSOCKOPT.has(word(2) ?? '')) throw new DrillUnsupported(`getsockopt ${word(2) ?? JSON.stringify(arg(2))}`);
      break;
    case 'fcntl':
      if (word(1) !== 'F_GETFL' && word(1) !== 'F_SETFL') throw new DrillUnsupported(`fcntl ${word(1)}`);
      break;
    case 'bind':
    case 'connect':
      sockaddrPort(arg(1));
      break;
    default:
      break;
  }
  if (call.result.kind !== 'int' && call.result.kind !== 'word' && call.result.kind !== 'or') throw new DrillUnsupported(`return value ${JSON.stringify(call.result)}`);
}

export type { SyscallOutcome };

interface Descriptor {
  fd: number;
  nonblocking: boolean;
  port: number | null;
  server: Server | null;
  /** Established connections not accepted yet (the listener's accept queue). */
  acceptQueue: Descriptor[];
  socket: Socket | null;
  received: Buffer[];
  receivedBytes: number;
  /** The peer's FIN was read into `received`. */
  eof: boolean;
  /** The connection's error (an errno name), reported by read, write and SO_ERROR. */
  error: string | null;
  /** SO_ERROR's pending error, cleared by getsockopt. */
  pendingError: string | null;
  connected: boolean;
  connecting: boolean;
  readShut: boolean;
  writeShut: boolean;
  closed: boolean;
  lingerZero: boolean;
  noDelay: boolean;
  keepAlive: boolean;
  keepIdleS: number;
}

function newDescriptor(fd: number): Descriptor {
  return {
    fd,
    nonblocking: false,
    port: null,
    server: null,
    acceptQueue: [],
    socket: null,
    received: [],
    receivedBytes: 0,
    eof: false,
    error: null,
    pendingError: null,
    connected: false,
    connecting: false,
    readShut: false,
    writeShut: false,
    closed: false,
    lingerZero: false,
    noDelay: false,
    keepAlive: false,
    keepIdleS: 7200,
  };
}

interface FlowPorts {
  localPort: number;
  remotePort: number;
}

export class SyscallHost implements SyscallTarget {
  private readonly fds = new Map<number, Descriptor>();
  /** The descriptor of the last call on a connection: the one tcpi_* asserts read. */
  private underTest: Descriptor | null = null;

  constructor(
    private readonly stack: Stack,
    private readonly flow: FlowPorts,
  ) {}

  /** The return value the script expects, as a number (null: any). */
  expectedReturn(call: SyscallLine): number | null {
    return intValue(call.result);
  }

  infoOfSocketUnderTest(): TcpInfo | null {
    return this.underTest?.socket?.info() ?? null;
  }

  closeAll(): void {
    for (const d of this.fds.values()) {
      d.socket?.destroy();
      d.server?.close();
    }
  }

  /**
   * The descriptor number for a new socket: the one the script expects, as packetdrill maps
   * the script's fds onto the live ones (a script may call its first socket 4).
   */
  private scriptFd(expected: number): number {
    return expected >= 0 && !this.fds.has(expected) ? expected : this.nextFd();
  }

  private nextFd(): number {
    let fd = 3;
    while (this.fds.has(fd)) fd++;
    return fd;
  }

  private descriptor(e: Expr | undefined): Descriptor | null {
    if (!e) return null;
    const fd = intValue(e);
    return this.fds.get(fd) ?? null;
  }

  /** Follows a socket's events into its descriptor. */
  private watch(d: Descriptor, s: Socket): void {
    d.socket = s;
    s.on('data', (chunk: Buffer) => {
      d.received.push(chunk);
      d.receivedBytes += chunk.length;
    });
    s.on('end', () => (d.eof = true));
    s.on('error', (err: Error & { code?: string }) => {
      const code = err.code && ERRNO_NAMES.has(err.code) ? err.code : 'ECONNRESET';
      d.error = code;
      d.pendingError = code;
      d.connecting = false;
    });
    if (d.noDelay) s.setNoDelay(true);
    if (d.keepAlive) s.setKeepAlive(true, d.keepIdleS * 1000);
  }

  /** Starts a call: poll() gives its outcome once it can complete (null while it blocks). */
  start(call: SyscallLine): { poll: () => SyscallOutcome | null } {
    const now = (o: SyscallOutcome) => ({ poll: () => o });
    const args = call.args;
    // socket() makes a descriptor and poll() takes an array of them; every other call names one.
    const ownsFd = call.name !== 'socket' && call.name !== 'poll';
    const d = ownsFd ? this.descriptor(args[0]) : null;
    if (ownsFd && !d) return now({ ret: -1, errno: 'EBADF' });
    if (d && d.socket) this.underTest = d;
    switch (call.name) {
      case 'socket': {
        // Linux's inet_create: a stream socket's protocol must be TCP (or 0).
        const protocol = args[2] && args[2].kind !== 'ellipsis' ? intValue(args[2]) : 0;
        if (protocol !== 0 && protocol !== CONSTANTS.IPPROTO_TCP) return now({ ret: -1, errno: 'EPROTONOSUPPORT' });
        const fd = this.scriptFd(intValue(call.result));
        this.fds.set(fd, newDescriptor(fd));
        return now({ ret: fd });
      }
      case 'bind':
        d!.port = sockaddrPort(args[1]) ?? 8080;
        return now({ ret: 0 });
      case 'listen':
        return now(this.listen(d!, args[1] ? intValue(args[1]) : 128));
      case 'accept':
        return this.accept(d!, intValue(call.result));
      case 'connect':
        return this.connect(d!, sockaddrPort(args[1]) ?? 8080);
      case 'write':
      case 'send':
        return now(this.write(d!, intValue(args[2]!)));
      case 'read':
      case 'recv':
        return this.read(d!, intValue(args[2]!));
      case 'close':
        return now(this.close(d!));
      case 'shutdown':
        return now(this.shutdown(d!, intValue(args[1]!)));
      case 'fcntl':
        if (intValue(args[1]!) === CONSTANTS.F_GETFL) return now({ ret: CONSTANTS.O_RDWR! | (d!.nonblocking ? CONSTANTS.O_NONBLOCK! : 0) });
        d!.nonblocking = (intValue(args[2]!) & CONSTANTS.O_NONBLOCK!) !== 0;
        return now({ ret: 0 });
      case 'setsockopt':
        return now(this.setsockopt(d!, args));
      case 'getsockopt':
        return now(this.getsockopt(d!, args));
      case 'poll':
        return this.poll(call);
      default:
        throw new DrillUnsupported(`system call ${call.name}`);
    }
  }

  private listen(d: Descriptor, backlog: number): SyscallOutcome {
    const port = d.port ?? 8080;
    // allowHalfOpen: a FIN from the peer ends only its direction, as with a kernel socket.
    const server = this.stack.createServer({ allowHalfOpen: true }, (s) => {
      const child = newDescriptor(-1);
      child.noDelay = d.noDelay;
      child.keepAlive = d.keepAlive;
      child.keepIdleS = d.keepIdleS;
      child.connected = true;
      this.watch(child, s);
      d.acceptQueue.push(child);
    });
    server.listen({ port, backlog });
    d.server = server;
    d.port = port;
    this.flow.localPort = port;
    return { ret: 0 };
  }

  private accept(d: Descriptor, expectedFd: number): { poll: () => SyscallOutcome | null } {
    const take = (): SyscallOutcome | null => {
      if (d.closed) return { ret: -1, errno: 'EBADF' };
      const child = d.acceptQueue.shift();
      if (!child) return d.nonblocking ? { ret: -1, errno: 'EAGAIN' } : null;
      child.fd = this.scriptFd(expectedFd);
      this.fds.set(child.fd, child);
      this.underTest = child;
      return { ret: child.fd };
    };
    let done: SyscallOutcome | null = null;
    return { poll: () => (done ??= take()) };
  }

  private connect(d: Descriptor, port: number): { poll: () => SyscallOutcome | null } {
    if (d.connected) return { poll: () => ({ ret: -1, errno: 'EISCONN' }) };
    if (d.connecting) return { poll: () => ({ ret: -1, errno: 'EALREADY' }) };
    d.connecting = true;
    this.underTest = d;
    this.flow.remotePort = port;
    const socket = this.stack.connect({ port, host: '192.0.2.1', allowHalfOpen: true });
    socket.on('connect', () => {
      d.connected = true;
      d.connecting = false;
    });
    this.watch(d, socket);
    if (d.nonblocking) return { poll: () => ({ ret: -1, errno: 'EINPROGRESS' }) };
    return {
      poll: () => {
        if (d.connected) return { ret: 0 };
        if (d.error) {
          d.pendingError = null;
          return { ret: -1, errno: d.error };
        }
        return null;
      },
    };
  }

  private write(d: Descriptor, length: number): SyscallOutcome {
    if (d.error) {
      // Linux reports the reset once (ECONNRESET), then EPIPE.
      const errno = d.pendingError ?? 'EPIPE';
      d.pendingError = null;
      return { ret: -1, errno };
    }
    if (!d.socket || d.writeShut || d.closed) return { ret: -1, errno: d.socket ? 'EPIPE' : 'ENOTCONN' };
    if (!d.connected) return { ret: -1, errno: d.nonblocking ? 'EAGAIN' : 'ENOTCONN' };
    d.socket.write(Buffer.alloc(length));
    return { ret: length };
  }

  private read(d: Descriptor, length: number): { poll: () => SyscallOutcome | null } {
    let done: SyscallOutcome | null = null;
    const attempt = (): SyscallOutcome | null => {
      if (d.receivedBytes > 0) return { ret: this.consume(d, length) };
      if (d.readShut || d.eof) return { ret: 0 };
      if (d.error) {
        // The error is reported once (sock_error clears it); later reads see end of file.
        const errno = d.pendingError;
        d.pendingError = null;
        return errno ? { ret: -1, errno } : { ret: 0 };
      }
      if (!d.socket) return { ret: -1, errno: 'ENOTCONN' };
      return d.nonblocking ? { ret: -1, errno: 'EAGAIN' } : null;
    };
    return { poll: () => (done ??= attempt()) };
  }

  private consume(d: Descriptor, length: number): number {
    let taken = 0;
    while (taken < length && d.received.length > 0) {
      const head = d.received[0]!;
      const n = Math.min(head.length, length - taken);
      taken += n;
      if (n === head.length) d.received.shift();
      else d.received[0] = head.subarray(n);
    }
    d.receivedBytes -= taken;
    return taken;
  }

  private close(d: Descriptor): SyscallOutcome {
    this.fds.delete(d.fd);
    d.closed = true;
    if (d.server) {
      // Connections not accepted yet are reset with the listener (Linux inet_csk_listen_stop).
      for (const child of d.acceptQueue) child.socket?.resetAndDestroy();
      d.server.close();
    }
    const s = d.socket;
    if (s) {
      // SO_LINGER {1, 0} and unread received bytes both make close() reset (RFC 2525 2.17, tcp_close).
      if (d.lingerZero || d.receivedBytes > 0) s.resetAndDestroy();
      // In SYN-SENT there is nothing to finish: the connection just goes (tcp_close, no RST).
      else if (d.connecting) s.destroy();
      else s.destroySoon();
    }
    return { ret: 0 };
  }

  private shutdown(d: Descriptor, how: number): SyscallOutcome {
    if (!d.socket || !d.connected) return { ret: -1, errno: 'ENOTCONN' };
    if (how === CONSTANTS.SHUT_RD || how === CONSTANTS.SHUT_RDWR) d.readShut = true;
    if (how === CONSTANTS.SHUT_WR || how === CONSTANTS.SHUT_RDWR) {
      d.writeShut = true;
      d.socket.end();
    }
    return { ret: 0 };
  }

  private setsockopt(d: Descriptor, args: Expr[]): SyscallOutcome {
    const name = args[2]?.kind === 'word' ? args[2].name : '';
    const value = args[3];
    switch (name) {
      case 'SO_REUSEADDR':
        return { ret: 0 };
      case 'TCP_NODELAY':
        d.noDelay = intValue(value!) !== 0;
        d.socket?.setNoDelay(d.noDelay);
        return { ret: 0 };
      case 'SO_KEEPALIVE':
        d.keepAlive = intValue(value!) !== 0;
        d.socket?.setKeepAlive(d.keepAlive, d.keepIdleS * 1000);
        return { ret: 0 };
      case 'TCP_KEEPIDLE':
        d.keepIdleS = intValue(value!);
        if (d.keepAlive) d.socket?.setKeepAlive(true, d.keepIdleS * 1000);
        return { ret: 0 };
      case 'SO_LINGER': {
        if (value?.kind !== 'struct') throw new DrillUnsupported('SO_LINGER value');
        const field = (n: string): number => {
          const f = value.items.find((i) => i.kind === 'assign' && i.name === n);
          return f && f.kind === 'assign' ? intValue(f.value) : 0;
        };
        if (field('onoff') !== 0 && field('linger') !== 0) throw new DrillUnsupported('SO_LINGER with a timeout (close blocks)');
        d.lingerZero = field('onoff') !== 0;
        return { ret: 0 };
      }
      default:
        throw new DrillUnsupported(`setsockopt ${name}`);
    }
  }

  private getsockopt(d: Descriptor, args: Expr[]): SyscallOutcome {
    if (args[2]?.kind === 'word' && args[2].name === 'TCP_MAXSEG') {
      // Linux: the MSS in use once connected (mss_cache), else the default 536 (TCP_MSS_DEFAULT).
      const mss = d.socket && d.connected ? d.socket.info().tcpi_snd_mss : 536;
      const want = args[3];
      if (want && want.kind !== 'ellipsis' && intValue(want) !== mss) return { ret: 0, mismatch: `TCP_MAXSEG is ${mss}, expected ${intValue(want)}` };
      return { ret: 0 };
    }
    // SO_ERROR: the pending error, then cleared (sock_error).
    const errno = d.pendingError;
    d.pendingError = null;
    const value = errno ? constant(errno) : 0;
    const want = args[3];
    if (want && want.kind !== 'ellipsis') {
      const expected = intValue(want);
      if (expected !== value) return { ret: 0, mismatch: `SO_ERROR is ${errno ?? 0}, expected ${want.kind === 'array' && want.items[0]?.kind === 'word' ? want.items[0].name : expected}` };
    }
    return { ret: 0 };
  }

  private revents(d: Descriptor | null, events: number): number {
    if (!d) return CONSTANTS.POLLNVAL!;
    let r = 0;
    const readable = d.receivedBytes > 0 || d.eof || d.readShut || d.acceptQueue.length > 0 || d.error !== null;
    if (readable) r |= CONSTANTS.POLLIN! | CONSTANTS.POLLRDNORM!;
    if (d.connected && !d.writeShut && !d.error) r |= CONSTANTS.POLLOUT! | CONSTANTS.POLLWRNORM!;
    if (d.error) r |= CONSTANTS.POLLERR!;
    if (d.error || (d.eof && d.writeShut)) r |= CONSTANTS.POLLHUP!;
    if (d.eof || d.readShut) r |= CONSTANTS.POLLRDHUP!;
    return r & (events | CONSTANTS.POLLERR! | CONSTANTS.POLLHUP! | CONSTANTS.POLLNVAL!);
  }

  private poll(call: SyscallLine): { poll: () => SyscallOutcome | null } {
    const entries = pollEntries(call);
    const timeoutMs = call.args[2] ? intValue(call.args[2]) : -1;
    const started = this.stack.clock.now();
    let done: SyscallOutcome | null = null;
    const attempt = (): SyscallOutcome | null => {
      const got = entries.map((e) => this.revents(this.fds.get(e.fd) ?? null, e.events));
      const ready = got.filter((r) => r !== 0).length;
      if (ready === 0 && (timeoutMs < 0 || this.stack.clock.now() - started < timeoutMs)) return null;
      for (let i = 0; i < entries.length; i++) {
        const want = entries[i]!.revents;
        if (want && intValue(want) !== got[i]) return { ret: ready, mismatch: `fd ${entries[i]!.fd} revents 0x${got[i]!.toString(16)}, expected 0x${intValue(want).toString(16)}` };
      }
      return { ret: ready };
    };
    // A timeout is a timer of its own, so virtual time stops at it.
    if (timeoutMs > 0) this.stack.clock.setTimer(timeoutMs, () => {});
    return { poll: () => (done ??= attempt()) };
  }
}
