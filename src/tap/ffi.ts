// The stack's only foreign calls: ioctl(2) on /dev/net/tun, at set-up time, and the command
// line's mallopt(3) at start. Everything per frame uses Node's own read/write paths (see
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
