// The host's Linux TCP as a fuzz target: not available yet. The lead implements it with
// libc's socket calls (through ffi-rs) on a socket in a network namespace the target creates
// and deletes itself, the fuzzer's segments going in and the kernel's coming out through a
// TAP in that namespace (addresses 192.168.0.1 for the kernel, 192.0.2.1 for the fuzzer, as
// `tapstack drill --target kernel`). The contract to keep is FuzzTarget's in target.ts:
// non-blocking calls only, ISN-relative seq in takeOutbound(), ack and SACK in inject()
// relative to the kernel's ISN, raw TS values, times in ms since start().

import type { FuzzTarget } from './target.ts';

/** Thrown by createKernelTarget until the kernel target exists; the CLI exits 2 with its message. */
export class KernelTargetUnavailable extends Error {
  constructor() {
    super('the kernel target is not available yet (fuzz --target kernel|both needs a Linux target over a TAP in a namespace; use --target stack)');
  }
}

/**
 * Makes a target that drives the host's Linux TCP. To be filled in: return an object whose
 * start() creates the namespace and TAP (test/helpers/netns.ts shows how, and needs root),
 * whose syscall() maps SyscallLine values onto libc calls, and whose close() deletes the
 * namespace. Until then it throws KernelTargetUnavailable.
 */
export function createKernelTarget(): FuzzTarget {
  throw new KernelTargetUnavailable();
}
