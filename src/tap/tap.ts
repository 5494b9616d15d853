// A Linux TAP device as a Link (Documentation/networking/tuntap.rst).
//
// Set-up uses ffi-rs for the one ioctl Node lacks (TUNSETIFF). Frame I/O then stays in
// Node: the descriptor, made non-blocking, is wrapped in a libuv stream handle, so libuv's
// epoll loop reads it (up to 32 reads a wake-up) straight into our preallocated receive
// buffer (net.Socket's `onread` user-buffer mode: no allocation per frame), and frames are
// written with fs.writeSync, which never blocks on a TAP. Measured alternatives are in
// bench/tap-io.ts.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { FrameReceiver, Link } from '../link/link.ts';
import { ioctlBuffer, ioctlValue } from './ffi.ts';

const TUNSETIFF = 0x400454ca;
const TUNSETOFFLOAD = 0x400454d0;
const TUNSETVNETHDRSZ = 0x400454d8;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const IFNAMSIZ = 16;

/** Size of struct virtio_net_hdr, which precedes each frame when IFF_VNET_HDR is set. */
export const VNET_HDR_LEN = 10;

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
  readonly stats = { rxFrames: 0, txFrames: 0, txErrors: 0, rxErrors: 0 };
  private readonly fd: number;
  private readonly stream: net.Socket;
  private receiver: FrameReceiver = () => {};
  private closed = false;
  private readonly rxBuffer: Buffer;
  private readonly headerSkip: number;

  private constructor(options: TapOptions, fd: number, created: boolean) {
    this.name = options.name;
    this.mtu = options.mtu ?? 1500;
    this.vnetHeader = options.vnetHeader ?? false;
    this.headerSkip = this.vnetHeader ? VNET_HDR_LEN : 0;
    this.created = created;
    this.fd = fd;
    this.rxBuffer = Buffer.alloc(options.receiveBufferSize ?? (this.vnetHeader ? 65536 + 256 : 16384));
    const handle = makeStreamHandle(fd);
    this.stream = new net.Socket({
      handle,
      readable: true,
      writable: false,
      onread: {
        buffer: this.rxBuffer,
        callback: (nread: number, buf: Buffer) => {
          this.stats.rxFrames++;
          if (nread > this.headerSkip) this.receiver(buf, this.headerSkip, nread - this.headerSkip);
          return true;
        },
      },
    } as net.SocketConstructorOpts);
    this.stream.on('error', () => {
      this.stats.rxErrors++;
    });
  }

  /** Opens /dev/net/tun and attaches to (or creates) the TAP device `name`. */
  static open(options: TapOptions): TapDevice {
    const name = options.name;
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new TapError(`invalid TAP device name: ${name}`, 'EINVAL');
    const existed = deviceExists(name);
    let fd: number;
    try {
      fd = fs.openSync('/dev/net/tun', fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'ENOENT') throw new TapError('/dev/net/tun does not exist: this kernel or container has no TUN/TAP support', code);
      if (code === 'EACCES' || code === 'EPERM')
        throw new TapError('cannot open /dev/net/tun: permission denied (run as root or with CAP_NET_ADMIN)', code);
      throw new TapError(`cannot open /dev/net/tun: ${(err as Error).message}`, code);
    }
    const ifr = Buffer.alloc(40);
    ifr.write(name, 0, IFNAMSIZ - 1, 'latin1');
    ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI | (options.vnetHeader ? IFF_VNET_HDR : 0), IFNAMSIZ);
    const r = ioctlBuffer(fd, TUNSETIFF, ifr);
    if (r.value < 0) {
      fs.closeSync(fd);
      const why = r.errno === 1 ? 'permission denied (need CAP_NET_ADMIN)' : r.errno === 16 ? 'device busy (another process has it open)' : r.message;
      throw new TapError(`TUNSETIFF ${name} failed: ${why}`, r.errno === 1 ? 'EPERM' : 'EIO');
    }
    if (options.vnetHeader) {
      const size = Buffer.alloc(4);
      size.writeInt32LE(VNET_HDR_LEN, 0);
      ioctlBuffer(fd, TUNSETVNETHDRSZ, size);
      const off = ioctlValue(fd, TUNSETOFFLOAD, options.offloadFlags ?? 0);
      if (off.value < 0) {
        fs.closeSync(fd);
        throw new TapError(`TUNSETOFFLOAD failed: ${off.message}`, 'EIO');
      }
    }
    return new TapDevice(options, fd, !existed);
  }

  send(buf: Buffer, off: number, len: number): void {
    if (this.closed) return;
    let start = off;
    if (this.vnetHeader) {
      // No offload requested for this frame: an all-zero virtio-net header.
      start = off - VNET_HDR_LEN;
      buf.fill(0, start, off);
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
    this.stream.unref();
  }

  ref(): void {
    this.stream.ref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Destroying the stream closes the descriptor; a device we created goes away with it.
    await new Promise<void>((resolve) => {
      this.stream.once('close', () => resolve());
      this.stream.destroy();
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
