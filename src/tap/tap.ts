// A Linux TAP device as a Link (Documentation/networking/tuntap.rst).
//
// Set-up uses ffi-rs for the one ioctl Node lacks (TUNSETIFF). Frame I/O then stays in
// Node: the descriptor, made non-blocking, is wrapped in a libuv stream handle, so libuv's
// epoll loop reads it (up to 32 reads a wake-up) straight into our preallocated receive
// buffer (net.Socket's `onread` user-buffer mode: no allocation per frame), and frames are
// written with fs.writeSync, which never blocks on a TAP. Other ways to read (TapOptions.io):
// 'busy-poll', the stream plus a bounded poll after each wake-up, and the worker reader of
// ring.ts. Measured side by side in bench/tap-io.ts.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { FrameReceiver, Link } from '../link/link.ts';
import {
  emitVnetHeader,
  emptyRxFrameInfo,
  emptyTxOffload,
  parseVnetHeader,
  type RxFrameInfo,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  type TxOffload,
  VNET_HDR_LEN,
} from '../link/vnet.ts';
import { ioctlBuffer, ioctlValue } from './ffi.ts';
import { RingReader, type RingWake } from './ring.ts';

const TUNSETIFF = 0x400454ca;
const TUNSETOFFLOAD = 0x400454d0;
const TUNSETVNETHDRSZ = 0x400454d8;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const IFNAMSIZ = 16;

export { VNET_HDR_LEN };

/** Offloads asked for with `offload: true`: partial checksums and TCP super-frames. */
export const OFFLOAD_FLAGS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;

/** Largest IPv4 packet in a super-frame: the IPv4 total length is 16 bits. */
export const GSO_MAX_SIZE = 65535;

/** Frames read per wake-up at most (the first by libuv, the rest drained with readSync). */
const RX_BATCH = 64;
/** After a wake-up that found little more to drain, skip draining for up to this many. */
const MAX_DRAIN_BACKOFF = 64;
/** Frames a drain must find to be worth its cost (see drain()). */
const DRAIN_WORTHWHILE = 4;
/** busy-poll: how long a wake-up keeps reading the empty queue for a next frame. */
const BUSY_POLL_US = 50;
/**
 * busy-poll polls only after frames up to this size (with any virtio-net header): requests,
 * replies, ACKs, handshakes. Bulk data comes in large frames and in bursts, which a wake-up
 * drains anyway; polling between them measured 35% more CPU per GiB received.
 */
const BUSY_POLL_MAX_FRAME = 512;
/** Ring slots for the worker reader (a power of two): about 4 MiB of ring either way. */
const RING_SLOTS = 256;
const RING_SLOTS_VNET = 64;

/**
 * How frames are read (see bench/tap-io.ts for the figures):
 *   stream        libuv's epoll on the non-blocking descriptor, then readSync until EAGAIN (default)
 *   busy-poll     the same, then readSync on the empty queue for up to BUSY_POLL_US for one
 *                 more frame before going back to libuv (costs CPU while traffic flows)
 *   worker-ring, worker-loop, worker-yield, worker-spin
 *                 a worker thread blocked in read(2), frames through a shared ring (ring.ts)
 */
export type TapIo = 'stream' | 'busy-poll' | RingWake;

/** The modes read by a worker thread (ring.ts), on a blocking descriptor. */
function readsInWorker(io: TapIo | undefined): io is RingWake {
  return io !== undefined && io !== 'stream' && io !== 'busy-poll';
}
export const TAP_IO_MODES: readonly TapIo[] = ['stream', 'busy-poll', 'worker-ring', 'worker-loop', 'worker-yield', 'worker-spin'];

/** A --tap-io value, or the error made by `usage` (each command line has its own kind). */
export function parseTapIo(value: string, usage: (message: string) => Error): TapIo {
  if (!(TAP_IO_MODES as readonly string[]).includes(value)) throw usage(`--tap-io: expected one of ${TAP_IO_MODES.join(', ')}, not '${value}'`);
  return value as TapIo;
}

export class TapError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface TapOptions {
  name: string;
  mtu?: number;
  /** Prepend a virtio-net header to every frame (for offloads; see VNET_HDR_LEN). */
  vnetHeader?: boolean;
  /** TUNSETOFFLOAD flags (TUN_F_CSUM = 1, TUN_F_TSO4 = 2, ...), only with vnetHeader. */
  offloadFlags?: number;
  /** Size of the receive buffer; must hold the largest frame the kernel can hand over. */
  receiveBufferSize?: number;
  /**
   * Checksum and segmentation offloads (IFF_VNET_HDR + TUNSETOFFLOAD with OFFLOAD_FLAGS).
   * When the kernel refuses them the device still opens, with offloads off (`offload` false).
   */
  offload?: boolean;
  /** Frames handled per wake-up at most (default 64; 1 reads only what libuv hands over). */
  rxBatch?: number;
  /** How frames are read (default 'stream'; see TapIo). */
  io?: TapIo;
}

export function deviceExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

export class TapDevice implements Link {
  readonly name: string;
  readonly mtu: number;
  readonly vnetHeader: boolean;
  /** True when this process created the device (it then disappears when we close it). */
  readonly created: boolean;
  readonly stats = {
    rxFrames: 0,
    txFrames: 0,
    txErrors: 0,
    rxErrors: 0,
    rxBatches: 0,
    rxBadVnetHeader: 0,
    /** Frames the kernel handed over with a partial checksum, and TCP super-frames among them. */
    rxPartialChecksum: 0,
    rxSuperFrames: 0,
    /** Frames sent with a partial checksum, and super-frames the kernel segments. */
    txPartialChecksum: 0,
    txSuperFrames: 0,
  };
  /** True when the kernel accepted OFFLOAD_FLAGS: partial checksums and super-frames both ways. */
  readonly offload: boolean;
  /** GSO_MAX_SIZE with offloads, else the mtu (see Link.gsoMaxSize). */
  readonly gsoMaxSize: number;
  /** Offload request for the next send (only with offloads; see Link.txOffload). */
  readonly txOffload: TxOffload | undefined;
  readonly io: TapIo;
  private readonly fd: number;
  private readonly stream: net.Socket | null = null;
  private readonly ring: RingReader | null = null;
  private readonly busyPoll: boolean;
  /** busy-poll: the largest frame read since the last wake-up (see BUSY_POLL_MAX_FRAME). */
  private largestInWakeUp = 0;
  private pollUntil = 0;
  /** A poll is under way (an immediate pending). */
  private pollPending = false;
  /** The poll under way has caught a frame. */
  private pollCaught = false;
  private pollSkip = 0;
  private pollBackoff = 1;
  private readonly onPoll = (): void => this.poll();
  private receiver: FrameReceiver = () => {};
  /** Per-frame offload facts (only with a virtio-net header), handed to the receiver. */
  private readonly rxInfo: RxFrameInfo | null;
  private batchEnd: (() => void) | null = null;
  private closed = false;
  private readonly rxBuffer: Buffer;
  private readonly headerSkip: number;
  private readonly rxBatch: number;
  private drainSkip = 0;
  private drainBackoff = 1;

  private constructor(options: TapOptions, fd: number, created: boolean, offload: boolean) {
    this.name = options.name;
    this.mtu = options.mtu ?? 1500;
    this.vnetHeader = (options.vnetHeader ?? false) || (options.offload ?? false);
    this.offload = offload;
    this.gsoMaxSize = offload ? GSO_MAX_SIZE : this.mtu;
    this.rxInfo = this.vnetHeader ? emptyRxFrameInfo() : null;
    this.txOffload = offload ? emptyTxOffload() : undefined;
    this.headerSkip = this.vnetHeader ? VNET_HDR_LEN : 0;
    this.rxBatch = Math.max(1, options.rxBatch ?? RX_BATCH);
    this.created = created;
    this.fd = fd;
    // A read must hold the largest frame, or the kernel cuts it short: the MTU's worth plus the
    // Ethernet header, an 802.1Q tag and the virtio-net header (super-frames: up to 64 KB).
    const largestFrame = this.headerSkip + 18 + this.mtu;
    this.rxBuffer = Buffer.alloc(options.receiveBufferSize ?? Math.max(largestFrame, this.vnetHeader ? 65536 + 256 : 16384));
    this.io = options.io ?? 'stream';
    this.busyPoll = this.io === 'busy-poll';
    if (readsInWorker(this.io)) {
      const vnetSlot = this.rxBuffer.length;
      this.ring = new RingReader({
        fd,
        slotSize: vnetSlot,
        slots: this.vnetHeader ? RING_SLOTS_VNET : RING_SLOTS,
        wake: this.io,
        rxBatch: this.rxBatch,
        deliver: (buf, n) => this.deliver(buf, n),
        batchEnd: () => {
          this.stats.rxBatches++;
          if (this.batchEnd !== null) this.batchEnd();
        },
        onReadError: () => {
          this.stats.rxErrors++;
        },
      });
      return;
    }
    const handle = makeStreamHandle(fd);
    this.stream = new net.Socket({
      handle,
      readable: true,
      writable: false,
      onread: {
        buffer: this.rxBuffer,
        callback: (nread: number) => {
          this.deliver(this.rxBuffer, nread);
          if (this.rxBatch > 1) this.drain();
          if (this.busyPoll) {
            if (this.largestInWakeUp <= BUSY_POLL_MAX_FRAME) this.startPoll();
            this.largestInWakeUp = 0;
          }
          this.stats.rxBatches++;
          if (this.batchEnd !== null) this.batchEnd();
          return true;
        },
      },
    } as net.SocketConstructorOpts);
    this.stream.on('error', () => {
      this.stats.rxErrors++;
    });
  }

  /** Hands one frame (nread bytes at the start of buf) to the receiver. */
  private deliver(buf: Buffer, nread: number): void {
    this.stats.rxFrames++;
    if (nread > this.largestInWakeUp) this.largestInWakeUp = nread;
    const skip = this.headerSkip;
    if (nread <= skip) return;
    const info = this.rxInfo;
    if (info !== null) {
      if (parseVnetHeader(buf, 0, nread - skip, info) !== null) {
        this.stats.rxBadVnetHeader++;
        return;
      }
      if (info.checksumPartial) this.stats.rxPartialChecksum++;
      if (info.segmentSize !== 0) this.stats.rxSuperFrames++;
    }
    this.receiver(buf, skip, nread - skip, info);
  }

  /** One non-blocking read into buf: the frame's length, or -1 when the queue is empty (or on an error, counted). */
  private readNow(buf: Buffer): number {
    const traceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0; // the expected EAGAIN error needs no stack trace
    try {
      return fs.readSync(this.fd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.stats.rxErrors++;
      return -1;
    } finally {
      Error.stackTraceLimit = traceLimit;
    }
  }

  /**
   * libuv reads one frame per wake-up (a read shorter than its buffer ends its loop), so
   * after it we read on with readSync until the queue is empty or the batch is full. The
   * empty queue shows as an EAGAIN exception, which costs a few microseconds, so when a
   * wake-up finds little more (ping-pong traffic), the next ones skip the attempt, backing
   * off exponentially. Measured: a saturated 64-byte flood is read about 20% faster with
   * draining, and flood ping loses nothing to it.
   */
  private drain(): void {
    if (this.drainSkip > 0) {
      this.drainSkip--;
      return;
    }
    let got = 0;
    const buf = this.rxBuffer;
    while (got < this.rxBatch - 1 && !this.closed) {
      const n = this.readNow(buf);
      if (n < 0) break;
      got++;
      this.deliver(buf, n);
    }
    // A drain pays for its final EAGAIN (~2.5 µs) only when it saves several wake-ups
    // (~0.5 µs each): below DRAIN_WORTHWHILE frames, back off.
    if (got < DRAIN_WORTHWHILE) {
      this.drainSkip = this.drainBackoff;
      this.drainBackoff = Math.min(this.drainBackoff * 2, MAX_DRAIN_BACKOFF);
    } else {
      this.drainBackoff = 1;
    }
  }

  /**
   * busy-poll: after a wake-up, reads the empty queue again for up to BUSY_POLL_US, for the
   * next frame of a ping-pong exchange (it comes some 20-60 µs after our reply): caught so, it
   * costs no epoll sleep and wake-up. Each try is a turn of the event loop (setImmediate), so
   * that the application's ticks and promises, which often write the reply, run in between
   * (a poll inside the read callback held them back: 9,000 TCP round trips/s instead of
   * 55,000). Every miss is an EAGAIN exception and an epoll_wait(0) (~3 µs of CPU).
   * A poll that caught nothing (light traffic; or the peer on this very CPU, which cannot run
   * while we poll) makes the next wake-ups skip it, backing off exponentially as drain() does.
   */
  private startPoll(): void {
    if (this.pollPending) {
      this.pollCaught = true; // a frame came through libuv while we polled
    } else if (this.pollSkip > 0) {
      this.pollSkip--;
      return;
    }
    this.pollUntil = performance.now() + BUSY_POLL_US / 1000;
    if (!this.pollPending) {
      this.pollPending = true;
      setImmediate(this.onPoll);
    }
  }

  /** The end of a poll: worth it when it caught a frame; else poll less often. */
  private endPoll(): void {
    this.pollPending = false;
    if (this.pollCaught) {
      this.pollBackoff = 1;
    } else {
      this.pollSkip = this.pollBackoff;
      this.pollBackoff = Math.min(this.pollBackoff * 2, MAX_DRAIN_BACKOFF);
    }
    this.pollCaught = false;
  }

  private poll(): void {
    if (this.closed || performance.now() > this.pollUntil) return this.endPoll();
    const buf = this.rxBuffer;
    const n = this.readNow(buf);
    if (n >= 0) {
      this.pollCaught = true;
      this.deliver(buf, n);
      this.stats.rxBatches++;
      if (this.batchEnd !== null) this.batchEnd();
      this.pollUntil = performance.now() + BUSY_POLL_US / 1000;
      this.largestInWakeUp = 0;
      if (n > BUSY_POLL_MAX_FRAME) return this.endPoll(); // bulk begins: back to libuv's wake-ups
    }
    setImmediate(this.onPoll);
  }

  /** Opens /dev/net/tun and attaches to (or creates) the TAP device `name`. */
  static open(options: TapOptions): TapDevice {
    const name = options.name;
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new TapError(`invalid TAP device name: ${name}`, 'EINVAL');
    const existed = deviceExists(name);
    let fd: number;
    try {
      // The worker reader sleeps in read(2): its descriptor blocks (ring.ts; writes never do).
      fd = fs.openSync('/dev/net/tun', fs.constants.O_RDWR | (readsInWorker(options.io) ? 0 : fs.constants.O_NONBLOCK));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'ENOENT') throw new TapError('/dev/net/tun does not exist: this kernel or container has no TUN/TAP support', code);
      if (code === 'EACCES' || code === 'EPERM')
        throw new TapError('cannot open /dev/net/tun: permission denied (run as root or with CAP_NET_ADMIN)', code);
      throw new TapError(`cannot open /dev/net/tun: ${(err as Error).message}`, code);
    }
    const ifr = Buffer.alloc(40);
    ifr.write(name, 0, IFNAMSIZ - 1, 'latin1');
    const vnetHeader = (options.vnetHeader ?? false) || (options.offload ?? false);
    ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI | (vnetHeader ? IFF_VNET_HDR : 0), IFNAMSIZ);
    const r = ioctlBuffer(fd, TUNSETIFF, ifr);
    if (r.value < 0) {
      fs.closeSync(fd);
      const why = r.errno === 1 ? 'permission denied (need CAP_NET_ADMIN)' : r.errno === 16 ? 'device busy (another process has it open)' : r.message;
      throw new TapError(`TUNSETIFF ${name} failed: ${why}`, r.errno === 1 ? 'EPERM' : 'EIO');
    }
    let offload = false;
    if (vnetHeader) {
      const size = Buffer.alloc(4);
      size.writeInt32LE(VNET_HDR_LEN, 0);
      ioctlBuffer(fd, TUNSETVNETHDRSZ, size);
      const flags = options.offload ? OFFLOAD_FLAGS : (options.offloadFlags ?? 0);
      let off = ioctlValue(fd, TUNSETOFFLOAD, flags);
      // A kernel without these offloads: go on with none (the header stays, all zero).
      if (off.value < 0 && options.offload) off = ioctlValue(fd, TUNSETOFFLOAD, 0);
      else offload = options.offload === true;
      if (off.value < 0) {
        fs.closeSync(fd);
        throw new TapError(`TUNSETOFFLOAD failed: ${off.message}`, 'EIO');
      }
    }
    try {
      return new TapDevice(options, fd, !existed, offload);
    } catch (err) {
      fs.closeSync(fd); // the worker reader could not start (no free signal, no thread)
      throw err;
    }
  }

  send(buf: Buffer, off: number, len: number): void {
    if (this.closed) return;
    let start = off;
    if (this.vnetHeader) {
      // The header goes into the LINK_HEADROOM before the frame: what IPv4 asked for in
      // txOffload (partial checksum, segmentation), or all zero.
      start = off - VNET_HDR_LEN;
      const t = this.txOffload;
      if (t !== undefined) {
        emitVnetHeader(buf, start, t);
        if (t.checksumStart !== 0) this.stats.txPartialChecksum++;
        if (t.segmentSize !== 0) this.stats.txSuperFrames++;
      } else {
        buf.fill(0, start, off);
      }
      len += VNET_HDR_LEN;
    }
    try {
      fs.writeSync(this.fd, buf, start, len);
      this.stats.txFrames++;
    } catch {
      // The kernel refused the frame (device down, queue full): count it, never throw.
      this.stats.txErrors++;
    }
  }

  setReceiver(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  setBatchEndHandler(handler: () => void): void {
    this.batchEnd = handler;
  }

  /** Writes a frame that already starts with its virtio-net header (for offload users). */
  sendRaw(buf: Buffer, off: number, len: number): void {
    try {
      fs.writeSync(this.fd, buf, off, len);
      this.stats.txFrames++;
    } catch {
      this.stats.txErrors++;
    }
  }

  /** Lets the process exit while the device is open (the stream otherwise keeps it alive). */
  unref(): void {
    this.stream?.unref();
    this.ring?.unref();
  }

  ref(): void {
    this.stream?.ref();
    this.ring?.ref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ring !== null) {
      // The reader first (it reads the descriptor), then the descriptor.
      await this.ring.close();
      fs.closeSync(this.fd);
      return;
    }
    const stream = this.stream!;
    // Destroying the stream closes the descriptor; a device we created goes away with it.
    await new Promise<void>((resolve) => {
      stream.once('close', () => resolve());
      stream.destroy();
    });
  }
}

/**
 * Wraps a descriptor in libuv's stream handle. Node's net.Socket refuses a character device
 * given by `fd` (it only takes sockets and pipes), but libuv's uv_pipe_open accepts any
 * descriptor that can be polled, which a TAP can.
 */
function makeStreamHandle(fd: number): unknown {
  const binding = (process as unknown as { binding(name: string): { Pipe: new (type: number) => { open(fd: number): number }; constants: { SOCKET: number } } }).binding('pipe_wrap');
  const handle = new binding.Pipe(binding.constants.SOCKET);
  const err = handle.open(fd);
  if (err !== 0) throw new TapError(`cannot watch the TAP descriptor (libuv error ${err})`, 'EIO');
  return handle;
}

/** Configures the kernel's end of the TAP with iproute2: an address, the MTU, and up. */
export function configureHostSide(name: string, cidr: string | null, mtu: number): void {
  const ip = (...args: string[]): void => {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  if (mtu !== 1500) ip('link', 'set', 'dev', name, 'mtu', String(mtu));
  if (cidr) {
    try {
      ip('addr', 'replace', cidr, 'dev', name);
    } catch (err) {
      throw new TapError(`cannot set ${cidr} on ${name}: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`, 'EIO');
    }
  }
  ip('link', 'set', 'dev', name, 'up');
}

/**
 * Makes the TAP a port of a Linux bridge (ip link set master): its MTU set, no address on it
 * (the kernel's end is a switch port, not a host), and up. Linux keeps a bridge's MTU at its
 * smallest port's (br_mtu_auto_adjust), and a bridge drops a frame larger than the port it
 * leaves by (is_skb_forwardable): a bridge below the TAP's MTU (a VXLAN port: 50 bytes less)
 * gets a warning, since the larger frames would vanish without a trace.
 */
export function joinBridge(name: string, bridge: string, mtu: number, onWarning: (message: string) => void = (m) => process.emitWarning(m, 'TapstackWarning')): void {
  if (!fs.existsSync(`/sys/class/net/${bridge}/bridge`)) throw new TapError(`no bridge ${bridge} (ip link add ${bridge} type bridge)`, 'ENODEV');
  try {
    execFileSync('ip', ['link', 'set', 'dev', name, 'mtu', String(mtu), 'master', bridge, 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new TapError(`cannot put ${name} on bridge ${bridge}: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`, 'EIO');
  }
  const bridgeMtu = Number(fs.readFileSync(`/sys/class/net/${bridge}/mtu`, 'utf8'));
  if (bridgeMtu < mtu) onWarning(`bridge ${bridge} has MTU ${bridgeMtu}, below the fleet's ${mtu}: larger frames are dropped (give --mtu ${bridgeMtu})`);
}
