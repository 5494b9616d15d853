// The C library's socket calls, through ffi-rs, for `tapstack drill --target kernel`: a
// script's system calls are made on the kernel exactly as packetdrill makes them, with every
// option, blocking mode and errno (Node's net cannot set SO_LINGER or SO_RCVBUF, or block).
// A call that may block runs on a thread of its own (ffi-rs runInNewThread), so the event
// loop goes on reading the TAP and keeping the script's time while it waits, as packetdrill's
// syscall thread does. These calls are per script line, never per frame.

import { constants } from 'node:os';
import { DataType, load, open } from 'ffi-rs';

let opened = false;

/** A call's return value and errno (0 when it succeeded). */
export interface CallResult {
  ret: number;
  errno: number;
}

type Param = DataType.I32 | DataType.I64 | DataType.U8Array;

interface RawResult {
  value: number;
  errnoCode: number;
}

function describe(funcName: string, retType: DataType.I32 | DataType.I64, paramsType: Param[], paramsValue: unknown[], runInNewThread: boolean) {
  if (!opened) {
    open({ library: 'libc', path: '' });
    opened = true;
  }
  return { library: 'libc', funcName, retType, paramsType, paramsValue, errno: true as const, runInNewThread };
}

function toResult(r: RawResult): CallResult {
  return { ret: Number(r.value), errno: r.value < 0 ? r.errnoCode : 0 };
}

/** Calls a libc function on this thread. */
function call(funcName: string, paramsType: Param[], paramsValue: unknown[], retType: DataType.I32 | DataType.I64 = DataType.I32): CallResult {
  return toResult(load(describe(funcName, retType, paramsType, paramsValue, false)) as unknown as RawResult);
}

/** Calls a libc function on a new thread: the promise settles when it returns. */
async function callBlocking(funcName: string, paramsType: Param[], paramsValue: unknown[], retType: DataType.I32 | DataType.I64 = DataType.I32): Promise<CallResult> {
  return toResult((await (load(describe(funcName, retType, paramsType, paramsValue, true)) as unknown as Promise<RawResult>)) as RawResult);
}

const I32 = DataType.I32;
const I64 = DataType.I64;
const PTR = DataType.U8Array;

/** The argument types of each call the drill makes (x86-64 and arm64 Linux: int, size_t, pointers). */
export const SIGNATURES = {
  socket: { params: [I32, I32, I32] as Param[], ret: I32 },
  bind: { params: [I32, PTR, I32] as Param[], ret: I32 },
  listen: { params: [I32, I32] as Param[], ret: I32 },
  accept: { params: [I32, PTR, PTR] as Param[], ret: I32 },
  connect: { params: [I32, PTR, I32] as Param[], ret: I32 },
  read: { params: [I32, PTR, I64] as Param[], ret: I64 },
  write: { params: [I32, PTR, I64] as Param[], ret: I64 },
  recv: { params: [I32, PTR, I64, I32] as Param[], ret: I64 },
  send: { params: [I32, PTR, I64, I32] as Param[], ret: I64 },
  close: { params: [I32] as Param[], ret: I32 },
  shutdown: { params: [I32, I32] as Param[], ret: I32 },
  fcntl: { params: [I32, I32, I64] as Param[], ret: I32 },
  poll: { params: [PTR, I64, I32] as Param[], ret: I32 },
  setsockopt: { params: [I32, I32, I32, PTR, I32] as Param[], ret: I32 },
  getsockopt: { params: [I32, I32, I32, PTR, PTR] as Param[], ret: I32 },
} as const;

export type CallName = keyof typeof SIGNATURES;

export function libcCall(name: CallName, values: unknown[]): CallResult {
  const s = SIGNATURES[name];
  return call(name, s.params, values, s.ret);
}

export function libcCallBlocking(name: CallName, values: unknown[]): Promise<CallResult> {
  const s = SIGNATURES[name];
  return callBlocking(name, s.params, values, s.ret);
}

/** Linux's errno names by number, from Node's own table (os.constants.errno). */
const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
// Node lists EWOULDBLOCK and EAGAIN with one number; scripts write EAGAIN (as does strace).
ERRNO_NAMES.set(constants.errno.EAGAIN, 'EAGAIN');

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

export function errnoNumber(name: string): number | undefined {
  return (constants.errno as Record<string, number>)[name];
}
