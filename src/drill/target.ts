// What a drill runs a script against. The runner (runner.ts) reads the script, builds the
// remote's packets, checks the local host's and keeps the script's time; a target is the
// local host: tapstack on an in-memory link in virtual time (stack-target.ts), or the host's
// Linux TCP behind a TAP in a namespace, in real time (kernel/kernel-target.ts).

import type { SyscallLine } from './parse.ts';
import type { SentFrame } from './virtual-net.ts';

export type { SentFrame };

/** packetdrill's default addresses: the local host under test and the remote the script plays. */
export const LOCAL_IP = '192.168.0.1';
export const REMOTE_IP = '192.0.2.1';
/** The next hop to the remote (a different subnet): the runner answers for it, as packetdrill's tun does for the remote. */
export const GATEWAY_IP = '192.168.0.2';
export const LOCAL_MAC = '02:00:00:00:00:01';
export const GATEWAY_MAC = '02:00:00:00:00:02';

/** A system call's result as the script sees it. */
export interface SyscallOutcome {
  ret: number;
  errno?: string;
  /** An output argument that differs from the script's (getsockopt's value, poll's revents). */
  mismatch?: string;
  detail?: string;
}

/** A call under way: poll() gives its outcome once it has returned (null while it blocks). */
export interface StartedCall {
  poll(): SyscallOutcome | null;
}

/** The script's system calls, made on the local host's sockets. */
export interface SyscallTarget {
  /** Starts a call; throws DrillUnsupported for an argument the target cannot express. */
  start(call: SyscallLine): StartedCall;
  /** The return value the script expects, as a number (null: any). */
  expectedReturn(call: SyscallLine): number | null;
  /** tcp_info of the socket of the last call on a connection, by tcpi_* name (for %{ }% asserts). */
  infoOfSocketUnderTest(): object | null;
  closeAll(): void;
}

export interface DrillTarget {
  readonly kind: 'stack' | 'kernel';
  /** Throws DrillUnsupported for a call the target cannot make (checked before the run). */
  checkSupported(call: SyscallLine): void;
  /**
   * A shell line of the script (sysctls, defaults.sh, device set-up): configures the target,
   * or throws DrillUnsupported. Lines before start() configure the host it starts with.
   */
  command(text: string, scriptDir: string): void;
  /** Brings the local host up; the script's time 0 is now. */
  start(): Promise<void>;
  /** Script time in ms. */
  now(): number;
  /** Lets work that is due without time passing run (stream events, finished calls). */
  settle(): Promise<void>;
  /**
   * Lets time pass toward untilMs (never beyond), returning early when something may have
   * happened (a timer fired, a frame arrived, a call returned): true. False when time is at
   * untilMs and nothing more is due by then.
   */
  advance(untilMs: number): Promise<boolean>;
  /** Hands a frame from the remote to the local host. */
  inject(frame: Buffer): void;
  /** The frames the local host sent since the last call, with their times. */
  take(): SentFrame[];
  readonly syscalls: SyscallTarget;
  close(): Promise<void>;
}
