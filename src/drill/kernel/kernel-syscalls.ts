// A script's system calls made on the host's Linux, as packetdrill makes them: the script's
// file descriptors map onto the kernel's, addresses are packetdrill's defaults unless the
// script names one, option values are passed as the script writes them, and a call on a
// blocking descriptor runs on a thread of its own (libc.ts) so that it can block in the
// kernel while the runner goes on. Return values and errnos are the kernel's own.

import { parseIpv4 } from '../../ipv4/address.ts';
import type { Expr, SyscallLine } from '../parse.ts';
import { CONSTANTS, constant, intValue, pollEntries, sockaddrPort } from '../syscalls.ts';
import { DrillUnsupported } from '../sysctl.ts';
import { LOCAL_IP, REMOTE_IP, type StartedCall, type SyscallOutcome, type SyscallTarget } from '../target.ts';
import { type CallName, type CallResult, errnoName, libcCall, libcCallBlocking } from './libc.ts';
import { decodeTcpInfo, TCP_INFO_SIZE } from './tcp-info-struct.ts';

const AF_INET = 2;
const SOCKADDR_IN_LEN = 16;
const TCP_INFO = 11;
const TCP_CONGESTION = 13;
/** recv/send flag: this call only, as if O_NONBLOCK. */
const MSG_DONTWAIT = 0x40;

/** Options beyond the stack's (syscalls.ts CONSTANTS), with Linux's numbers, for the kernel's setsockopt/getsockopt. */
const MORE_CONSTANTS: Record<string, number> = {
  SOL_IP: 0,
  IP_TOS: 1,
  IP_MTU_DISCOVER: 10,
  IP_FREEBIND: 15,
  SO_MARK: 36,
  TCP_CORK: 3,
  TCP_SYNCNT: 7,
  TCP_WINDOW_CLAMP: 10,
  TCP_QUICKACK: 12,
  TCP_USER_TIMEOUT: 18,
  TCP_NOTSENT_LOWAT: 25,
  TCP_INQ: 36,
  IP_PMTUDISC_DONT: 0,
  IP_PMTUDISC_DO: 2,
  ...CONSTANTS,
};

function value(name: string): number {
  const v = MORE_CONSTANTS[name];
  if (v === undefined) return constant(name);
  return v;
}

/** An integer expression, with the kernel's larger set of names. */
function int(e: Expr): number {
  if (e.kind === 'word') return value(e.name);
  if (e.kind === 'or') return int(e.left) | int(e.right);
  if (e.kind === 'array' && e.items.length === 1) return int(e.items[0]!);
  return intValue(e);
}

const CALLS = new Set(['socket', 'bind', 'listen', 'accept', 'connect', 'read', 'write', 'send', 'recv', 'close', 'shutdown', 'fcntl', 'poll', 'setsockopt', 'getsockopt']);

/** The address of a sockaddr literal's sin_addr=inet_addr("..."), or null. */
function sockaddrAddress(e: Expr | undefined): string | null {
  if (e?.kind !== 'struct') return null;
  for (const item of e.items) {
    if (item.kind === 'assign' && item.name === 'sin_addr' && item.value.kind === 'call' && item.value.name === 'inet_addr') {
      const arg = item.value.args[0];
      if (arg?.kind === 'string') return arg.value;
    }
  }
  return null;
}

function sockaddr(ip: string, port: number): Buffer {
  const sa = Buffer.alloc(SOCKADDR_IN_LEN);
  sa.writeUInt16LE(AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  sa.writeUInt32BE(parseIpv4(ip)! >>> 0, 4);
  return sa;
}

/** An option value as the kernel takes it: an int (`[1]`), struct linger, or a string (TCP_CONGESTION). */
function optionBytes(e: Expr | undefined): Buffer {
  if (!e) throw new DrillUnsupported('setsockopt without a value');
  if (e.kind === 'string') return Buffer.from(e.value + '\0', 'latin1');
  if (e.kind === 'struct') {
    const field = (...names: string[]): number => {
      const f = e.items.find((i) => i.kind === 'assign' && names.includes(i.name));
      return f && f.kind === 'assign' ? int(f.value) : 0;
    };
    // struct linger { int l_onoff; int l_linger; } (packetdrill also writes onoff/linger)
    const b = Buffer.alloc(8);
    b.writeInt32LE(field('onoff', 'l_onoff'), 0);
    b.writeInt32LE(field('linger', 'l_linger'), 4);
    return b;
  }
  const b = Buffer.alloc(4);
  b.writeInt32LE(int(e), 0);
  return b;
}

interface KernelFd {
  real: number;
  nonblocking: boolean;
  /** A socket a connect() or accept() made into a connection: what tcpi_* asserts read. */
  connection: boolean;
  /** SO_LINGER with a timeout: close() blocks. */
  lingerTimeout: boolean;
}

/** Outcomes of calls made on a thread, which the runner polls. */
class ThreadCall implements StartedCall {
  private outcome: SyscallOutcome | null = null;
  readonly startedAt = performance.now();
  constructor(
    promise: Promise<SyscallOutcome>,
    onDone: () => void,
  ) {
    void promise.then(
      (o) => {
        this.outcome = o;
        onDone();
      },
      (err: Error) => {
        this.outcome = { ret: -1, errno: 'EFAULT', detail: `ffi: ${err.message}` };
        onDone();
      },
    );
  }
  /** A property, not a method: the runner keeps the function and calls it on its own. */
  readonly poll = (): SyscallOutcome | null => this.outcome;
  get done(): boolean {
    return this.outcome !== null;
  }
}

export class KernelSyscalls implements SyscallTarget {
  private readonly fds = new Map<number, KernelFd>();
  private underTest: KernelFd | null = null;
  /** Thread calls under way (settle() waits briefly for those just started). */
  readonly inFlight = new Set<ThreadCall>();

  /** A congestion control each new socket takes (TCP_CONGESTION), when the namespace's default cannot be set. */
  congestion: string | null = null;

  /** @param wake called when a thread call returns, so that the runner looks at once */
  constructor(private readonly wake: () => void) {}

  static checkSupported(call: SyscallLine): void {
    if (!CALLS.has(call.name)) throw new DrillUnsupported(`system call ${call.name}`);
    const word = (i: number): string | null => (call.args[i]?.kind === 'word' ? (call.args[i] as { name: string }).name : null);
    if (call.name === 'socket' && word(0) !== null && word(0) !== 'AF_INET' && word(0) !== 'PF_INET') throw new DrillUnsupported(`socket family ${word(0)}`);
    if ((call.name === 'send' || call.name === 'recv') && call.args[3] && int(call.args[3]) !== 0) throw new DrillUnsupported(`${call.name} flags`);
    if (call.name === 'setsockopt' || call.name === 'getsockopt') {
      int(call.args[1]!);
      int(call.args[2]!);
    }
    if (call.result.kind !== 'int' && call.result.kind !== 'word' && call.result.kind !== 'or') throw new DrillUnsupported(`return value ${JSON.stringify(call.result)}`);
  }

  expectedReturn(call: SyscallLine): number | null {
    return int(call.result);
  }

  infoOfSocketUnderTest(): Record<string, number> | null {
    const d = this.underTest;
    if (!d) return null;
    const buf = Buffer.alloc(TCP_INFO_SIZE);
    const len = Buffer.alloc(4);
    len.writeInt32LE(TCP_INFO_SIZE, 0);
    const r = libcCall('getsockopt', [d.real, CONSTANTS.IPPROTO_TCP, TCP_INFO, buf, len]);
    if (r.ret < 0) return null;
    return decodeTcpInfo(buf, len.readInt32LE(0));
  }

  /** Shuts every socket down (waking calls blocked on them) and closes it. */
  closeAll(): void {
    for (const d of this.fds.values()) {
      libcCall('shutdown', [d.real, CONSTANTS.SHUT_RDWR]);
      libcCall('close', [d.real]);
    }
    this.fds.clear();
  }

  private scriptFd(expected: number): number {
    if (expected >= 0 && !this.fds.has(expected)) return expected;
    let fd = 3;
    while (this.fds.has(fd)) fd++;
    return fd;
  }

  private outcome(r: CallResult): SyscallOutcome {
    return r.ret < 0 ? { ret: -1, errno: errnoName(r.errno) } : { ret: r.ret };
  }

  start(call: SyscallLine): StartedCall {
    const now = (o: SyscallOutcome): StartedCall => ({ poll: () => o });
    const args = call.args;
    if (call.name === 'socket') return now(this.socket(call));
    if (call.name === 'poll') return this.poll(call);
    const d = args[0] ? this.fds.get(int(args[0])) : undefined;
    if (!d) return now({ ret: -1, errno: 'EBADF' });
    if (d.connection) this.underTest = d;
    // A call that cannot block (or a non-blocking descriptor's): made here and now.
    const run = (name: CallName, values: unknown[], after: (o: SyscallOutcome) => SyscallOutcome = (o) => o): StartedCall => now(after(this.outcome(libcCall(name, values))));
    switch (call.name) {
      case 'bind':
        return run('bind', [d.real, sockaddr(sockaddrAddress(args[1]) ?? LOCAL_IP, sockaddrPort(args[1]) ?? 8080), SOCKADDR_IN_LEN]);
      case 'listen':
        return run('listen', [d.real, args[1] ? int(args[1]) : 128]);
      case 'accept': {
        const expected = int(call.result);
        const adopt = (o: SyscallOutcome): SyscallOutcome => {
          if (o.ret < 0) return o;
          const fd = this.scriptFd(expected);
          const child: KernelFd = { real: o.ret, nonblocking: false, connection: true, lingerTimeout: false };
          this.fds.set(fd, child);
          this.underTest = child;
          return { ret: fd };
        };
        const values = [d.real, Buffer.alloc(SOCKADDR_IN_LEN), Buffer.from([SOCKADDR_IN_LEN, 0, 0, 0])];
        if (d.nonblocking) return run('accept', values, adopt);
        return this.mayBlock(() => this.withNonblocking(d, () => libcCall('accept', values)), () => libcCallBlocking('accept', values), adopt);
      }
      case 'connect': {
        d.connection = true;
        this.underTest = d;
        const values = [d.real, sockaddr(sockaddrAddress(args[1]) ?? REMOTE_IP, sockaddrPort(args[1]) ?? 8080), SOCKADDR_IN_LEN];
        if (d.nonblocking) return run('connect', values);
        // The SYN leaves now, from this thread; what blocks is the wait for the handshake,
        // which a thread does as the kernel's blocking connect does: until writable, then the
        // socket's error (inet_wait_for_connect, sock_error).
        const started = this.withNonblocking(d, () => libcCall('connect', values));
        if (started.ret === 0 || errnoName(started.errno) !== 'EINPROGRESS') return now(this.outcome(started));
        const pfd = Buffer.alloc(8);
        pfd.writeInt32LE(d.real, 0);
        pfd.writeInt16LE(CONSTANTS.POLLOUT!, 4);
        return this.onThread(
          libcCallBlocking('poll', [pfd, 1, -1]).then(() => {
            const err = Buffer.alloc(4);
            libcCall('getsockopt', [d.real, CONSTANTS.SOL_SOCKET, CONSTANTS.SO_ERROR, err, Buffer.from([4, 0, 0, 0])]);
            const errno = err.readInt32LE(0);
            return errno === 0 ? { ret: 0 } : { ret: -1, errno: errnoName(errno) };
          }),
        );
      }
      case 'read':
      case 'recv': {
        const n = int(args[2]!);
        const buf = Buffer.alloc(n);
        const values = call.name === 'read' ? [d.real, buf, n] : [d.real, buf, n, 0];
        if (d.nonblocking) return run(call.name, values);
        return this.mayBlock(() => libcCall('recv', [d.real, buf, n, MSG_DONTWAIT]), () => libcCallBlocking(call.name as 'read' | 'recv', values));
      }
      case 'write':
      case 'send': {
        const n = int(args[2]!);
        const values = call.name === 'write' ? [d.real, Buffer.alloc(n), n] : [d.real, Buffer.alloc(n), n, 0];
        if (d.nonblocking) return run(call.name, values);
        // As much as fits now; a blocking write waits on a thread for the rest only.
        const first = libcCall('send', [d.real, Buffer.alloc(n), n, MSG_DONTWAIT]);
        if (first.ret === n || (first.ret < 0 && errnoName(first.errno) !== 'EAGAIN')) return now(this.outcome(first));
        const done = Math.max(0, first.ret);
        return this.onThread(
          libcCallBlocking('write', [d.real, Buffer.alloc(n - done), n - done]).then((rest) => (rest.ret >= 0 ? { ret: done + rest.ret } : done > 0 ? { ret: done } : this.outcome(rest))),
        );
      }
      case 'close': {
        const fd = int(args[0]!);
        this.fds.delete(fd);
        if (this.underTest === d) this.underTest = null;
        // close() blocks only with SO_LINGER and a timeout (sk_lingertime): then on a thread.
        if (d.lingerTimeout && !d.nonblocking) return this.onThread(libcCallBlocking('close', [d.real]).then((r) => this.outcome(r)));
        return now(this.outcome(libcCall('close', [d.real])));
      }
      case 'shutdown':
        return run('shutdown', [d.real, int(args[1]!)]);
      case 'fcntl': {
        const cmd = int(args[1]!);
        const arg = args[2] ? int(args[2]) : 0;
        return run('fcntl', [d.real, cmd, arg], (o) => {
          if (o.ret >= 0 && cmd === CONSTANTS.F_SETFL) d.nonblocking = (arg & CONSTANTS.O_NONBLOCK!) !== 0;
          return o;
        });
      }
      case 'setsockopt': {
        const bytes = optionBytes(args[3]);
        if (int(args[2]!) === CONSTANTS.SO_LINGER && bytes.length === 8) d.lingerTimeout = bytes.readInt32LE(0) !== 0 && bytes.readInt32LE(4) !== 0;
        return run('setsockopt', [d.real, int(args[1]!), int(args[2]!), bytes, bytes.length]);
      }
      case 'getsockopt':
        return now(this.getsockopt(d, args));
      default:
        throw new DrillUnsupported(`system call ${call.name}`);
    }
  }

  /** A call tried without blocking first; only if it would block, the blocking call goes to a thread. */
  private mayBlock(attempt: () => CallResult, blocking: () => Promise<CallResult>, after: (o: SyscallOutcome) => SyscallOutcome = (o) => o): StartedCall {
    const r = attempt();
    if (!(r.ret < 0 && errnoName(r.errno) === 'EAGAIN')) {
      const o = after(this.outcome(r));
      return { poll: () => o };
    }
    return this.onThread(blocking().then((b) => after(this.outcome(b))));
  }

  /** Runs a call with O_NONBLOCK set on the descriptor for its duration. */
  private withNonblocking(d: KernelFd, fn: () => CallResult): CallResult {
    const flags = libcCall('fcntl', [d.real, CONSTANTS.F_GETFL, 0]).ret;
    libcCall('fcntl', [d.real, CONSTANTS.F_SETFL, flags | CONSTANTS.O_NONBLOCK!]);
    try {
      return fn();
    } finally {
      libcCall('fcntl', [d.real, CONSTANTS.F_SETFL, flags]);
    }
  }

  private socket(call: SyscallLine): SyscallOutcome {
    const type = call.args[1] && call.args[1].kind !== 'ellipsis' ? int(call.args[1]) : CONSTANTS.SOCK_STREAM!;
    const protocol = call.args[2] && call.args[2].kind !== 'ellipsis' ? int(call.args[2]) : 0;
    const r = libcCall('socket', [AF_INET, type, protocol]);
    if (r.ret < 0) return this.outcome(r);
    if (this.congestion !== null && type === CONSTANTS.SOCK_STREAM) {
      const name = Buffer.from(`${this.congestion}\0`, 'latin1');
      libcCall('setsockopt', [r.ret, CONSTANTS.IPPROTO_TCP, TCP_CONGESTION, name, name.length]);
    }
    const fd = this.scriptFd(int(call.result));
    this.fds.set(fd, { real: r.ret, nonblocking: false, connection: false, lingerTimeout: false });
    return { ret: fd };
  }

  private getsockopt(d: KernelFd, args: Expr[]): SyscallOutcome {
    const level = int(args[1]!);
    const name = int(args[2]!);
    const buf = Buffer.alloc(64);
    const len = Buffer.alloc(4);
    len.writeInt32LE(args[4] && args[4].kind !== 'ellipsis' ? int(args[4]) : 4, 0);
    const r = libcCall('getsockopt', [d.real, level, name, buf, len]);
    if (r.ret < 0) return this.outcome(r);
    const got = buf.readInt32LE(0);
    const want = args[3];
    if (want && want.kind !== 'ellipsis') {
      const expected = int(want);
      if (expected !== got) {
        // SO_ERROR holds an errno: say its name, as the script does.
        const show = (n: number) => (name === CONSTANTS.SO_ERROR && n !== 0 ? errnoName(n) : String(n));
        return { ret: 0, mismatch: `${args[2]!.kind === 'word' ? args[2]!.name : name} is ${show(got)}, expected ${show(expected)}` };
      }
    }
    return { ret: 0 };
  }

  private poll(call: SyscallLine): StartedCall {
    const entries = pollEntries(call);
    // struct pollfd { int fd; short events; short revents; }
    const pfds = Buffer.alloc(8 * entries.length);
    entries.forEach((e, i) => {
      pfds.writeInt32LE(this.fds.get(e.fd)?.real ?? -1, 8 * i);
      pfds.writeInt16LE(e.events, 8 * i + 4);
    });
    const timeoutMs = call.args[2] ? int(call.args[2]) : -1;
    const check = (r: CallResult): SyscallOutcome => {
      const o = this.outcome(r);
      if (o.ret < 0) return o;
      for (let i = 0; i < entries.length; i++) {
        const want = entries[i]!.revents;
        const got = pfds.readUInt16LE(8 * i + 6);
        if (want && int(want) !== got) return { ret: o.ret, mismatch: `fd ${entries[i]!.fd} revents 0x${got.toString(16)}, expected 0x${int(want).toString(16)}` };
      }
      return o;
    };
    // Ready now (or no wait asked for): answered here; else the wait goes to a thread.
    const first = libcCall('poll', [pfds, entries.length, 0]);
    if (timeoutMs === 0 || first.ret !== 0) {
      const o = check(first);
      return { poll: () => o };
    }
    return this.onThread(libcCallBlocking('poll', [pfds, entries.length, timeoutMs]).then(check));
  }

  /** A call running on its own thread: in flight until it returns, then the runner is woken. */
  private onThread(outcome: Promise<SyscallOutcome>): StartedCall {
    const t = new ThreadCall(outcome, () => {
      this.inFlight.delete(t);
      this.wake();
    });
    this.inFlight.add(t);
    return t;
  }
}
