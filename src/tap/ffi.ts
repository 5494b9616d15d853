// The stack's only foreign calls: ioctl(2) on /dev/net/tun at set-up time, the command
// line's mallopt(3) at start, and for the worker reader (ring.ts) a signal handler at set-up
// and a tgkill(2) at close. Everything per frame uses Node's own read/write paths (see
// tap.ts). (The drill's kernel target makes a script's socket calls through libc on its own:
// src/drill/kernel/libc.ts, one call per script line, never per frame.)

import { DataType, load, open } from 'ffi-rs';

let libcOpened = false;

function libc(): void {
  if (!libcOpened) {
    open({ library: 'libc', path: '' });
    libcOpened = true;
  }
}

export interface IoctlResult {
  value: number;
  errno: number;
  message: string;
}

/** ioctl(fd, request, arg) where arg points to a buffer the kernel reads (and may write). */
export function ioctlBuffer(fd: number, request: number, arg: Buffer): IoctlResult {
  libc();
  const r = load({
    library: 'libc',
    funcName: 'ioctl',
    retType: DataType.I32,
    paramsType: [DataType.I32, DataType.I64, DataType.U8Array],
    paramsValue: [fd, request, arg],
    errno: true,
  }) as unknown as { value: number; errnoCode: number; errnoMessage: string };
  return { value: r.value, errno: r.errnoCode, message: r.errnoMessage };
}

/** ioctl(fd, request, value) where the argument is an integer passed by value. */
export function ioctlValue(fd: number, request: number, value: number): IoctlResult {
  libc();
  const r = load({
    library: 'libc',
    funcName: 'ioctl',
    retType: DataType.I32,
    paramsType: [DataType.I32, DataType.I64, DataType.I64],
    paramsValue: [fd, request, value],
    errno: true,
  }) as unknown as { value: number; errnoCode: number; errnoMessage: string };
  return { value: r.value, errno: r.errnoCode, message: r.errnoMessage };
}

/** mallopt(param, value) (glibc's malloc tuning): false where the C library refuses or lacks it. */
export function mallopt(param: number, value: number): boolean {
  try {
    libc();
    const r = load({
      library: 'libc',
      funcName: 'mallopt',
      retType: DataType.I32,
      paramsType: [DataType.I32, DataType.I32],
      paramsValue: [param, value],
    }) as unknown as number;
    return r === 1;
  } catch {
    return false;
  }
}

// struct sigaction as glibc lays it out on 64-bit Linux (x86_64, aarch64): sa_handler (8
// bytes), sa_mask (128), sa_flags (4, then 4 of padding), sa_restorer (8).
const SIGACTION_SIZE = 152;
const SA_FLAGS_OFFSET = 136;

function libcPointer(symbol: string): number {
  libc();
  return load({ library: 'libc', funcName: 'dlsym', retType: DataType.I64, paramsType: [DataType.I64, DataType.String], paramsValue: [0, symbol] }) as unknown as number;
}

/**
 * Picks a real-time signal nobody handles (SIG_DFL, from SIGRTMAX down) and gives it a handler
 * that does nothing (libc's abs(3), a pure function of its int argument) without SA_RESTART:
 * sent to a thread blocked in read(2), it makes the read fail with EINTR (signal(7), "Interruption
 * of system calls"). That is the only way to wake a thread blocked on a non-multi-queue TAP
 * (tun_ring_recv wakes for a frame, a signal or the device's removal). -1 when none is free.
 */
export function installWakeSignal(): number {
  libc();
  const sigrtmax = load({ library: 'libc', funcName: '__libc_current_sigrtmax', retType: DataType.I32, paramsType: [], paramsValue: [] }) as unknown as number;
  const sigrtmin = load({ library: 'libc', funcName: '__libc_current_sigrtmin', retType: DataType.I32, paramsType: [], paramsValue: [] }) as unknown as number;
  const handler = libcPointer('abs');
  if (!handler) return -1;
  const none = Buffer.alloc(SIGACTION_SIZE);
  for (let sig = sigrtmax; sig > sigrtmin; sig--) {
    const old = Buffer.alloc(SIGACTION_SIZE);
    const r = load({ library: 'libc', funcName: 'sigaction', retType: DataType.I32, paramsType: [DataType.I32, DataType.I64, DataType.U8Array], paramsValue: [sig, 0, old] }) as unknown as number;
    if (r !== 0) continue;
    const oldHandler = old.readBigUInt64LE(0);
    if (oldHandler === BigInt(handler)) return sig; // installed by an earlier device of this process
    if (oldHandler !== 0n) continue;
    const act = Buffer.from(none);
    act.writeBigUInt64LE(BigInt(handler), 0);
    act.writeInt32LE(0, SA_FLAGS_OFFSET);
    const set = load({ library: 'libc', funcName: 'sigaction', retType: DataType.I32, paramsType: [DataType.I32, DataType.U8Array, DataType.I64], paramsValue: [sig, act, 0] }) as unknown as number;
    if (set === 0) return sig;
  }
  return -1;
}

/** tgkill(2): sends sig to one thread of this process. */
export function signalThread(tid: number, sig: number): boolean {
  libc();
  const r = load({ library: 'libc', funcName: 'tgkill', retType: DataType.I32, paramsType: [DataType.I32, DataType.I32, DataType.I32], paramsValue: [process.pid, tid, sig] }) as unknown as number;
  return r === 0;
}
