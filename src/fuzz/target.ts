// What the fuzzer drives: a TCP under test that it talks to as the remote host 192.0.2.1,
// the target being the local host 192.168.0.1 (packetdrill's defaults, as `tapstack drill`).
// Two kinds implement it: tapstack on an in-memory link in virtual time (stack-target.ts)
// and the host's Linux through a TAP in a namespace in real time (kernel-target.ts).
//
// The vocabulary is the drill runner's: system calls are parsed packetdrill SyscallLine
// values, inbound segments are PacketLine values ('<' lines), so that every step of a fuzz
// case is also a line of the packetdrill script it shrinks to.

import type { PacketLine, SyscallLine, TcpOption } from '../drill/parse.ts';
import type { SyscallOutcome } from '../drill/syscalls.ts';
import type { TcpState } from '../tcp/state.ts';

export type { PacketLine, SyscallLine, SyscallOutcome, TcpOption };

/** The remote's address and the target's, and the ports the script's flows use. */
export const TARGET_IP = '192.168.0.1';
export const REMOTE_IP = '192.0.2.1';
export const SERVER_PORT = 8080;
export const PASSIVE_REMOTE_PORT = 48879;

export interface TargetOptions {
  /**
   * Linux sysctl settings by their /proc/sys/net/ipv4 name (tcp_timestamps, tcp_sack,
   * tcp_window_scaling, tcp_challenge_ack_limit, ...), as a drill script's
   * `sysctl -q net.ipv4.NAME=VALUE` lines set them. A target applies each one or throws.
   */
  sysctls?: Record<string, number>;
}

/**
 * One segment the target sent, normalised so that two targets' replies to the same case
 * compare equal when they behave alike:
 * - `seq` is relative to the target's ISN of the connection it belongs to: the ISN is learned
 *   from the target's latest SYN (or SYN-ACK); before any SYN, seq is absolute. A RST to a
 *   closed port (whose seq is the ack we sent) is thus relative to the last ISN as well, as
 *   the drill runner reads it.
 * - `ack` and SACK blocks are as sent: they count the remote's (the fuzzer's) sequence
 *   space, whose ISNs the fuzzer chooses (0 for the first connection, as in packetdrill).
 * - TS val and ecr are raw: the differential oracle ignores TS values (two hosts' clocks
 *   differ); the RFC oracle checks only that a target's own TS vals never go back.
 * - `at` is the time it was sent in ms since start(); the differential oracle allows a
 *   timing tolerance (FUZZ_TIMING_TOLERANCE_MS) as packetdrill allows tolerance_usecs.
 */
export interface OutboundSegment {
  at: number;
  srcPort: number;
  dstPort: number;
  /** TCP flag bits (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, ...). */
  flags: number;
  seq: number;
  ack: number;
  /** The window field as sent (unscaled). */
  window: number;
  payloadLength: number;
  options: TcpOption[];
}

/** What the fuzzer may ask of the target about the connection under test. */
export interface TargetInfo {
  /** The state of the connection under test (the latest one), null before there is one. */
  state: TcpState | null;
  /** Whether a socket listens on SERVER_PORT. */
  listening: boolean;
  /** tcp_info's tcpi_bytes_received of the connection under test (in-order data bytes), 0 without one. */
  bytesReceived: number;
  /** tcp_info's tcpi_snd_wscale and tcpi_rcv_wscale (0 when scaling is off). */
  sndWscale: number;
  rcvWscale: number;
}

/** TargetInfo from a state and tcp_info's fields by their Linux names (either target's). */
export function targetInfo(state: TcpState | null, listening: boolean, tcpInfo: { tcpi_bytes_received?: number; tcpi_snd_wscale?: number; tcpi_rcv_wscale?: number } | null): TargetInfo {
  return {
    state,
    listening,
    bytesReceived: tcpInfo?.tcpi_bytes_received ?? 0,
    sndWscale: tcpInfo?.tcpi_snd_wscale ?? 0,
    rcvWscale: tcpInfo?.tcpi_rcv_wscale ?? 0,
  };
}

/**
 * The contract every target keeps (the fuzzer relies on each point):
 * - Every method is async; the fuzzer awaits each before the next.
 * - start() brings up a fresh host with no sockets; time 0 is then.
 * - syscall() makes one call as a drill script's line says (`fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK)`,
 *   `read(4, ..., 1000)`), on descriptors numbered from 3 as packetdrill numbers them, and resolves
 *   to its return value and errno name. The fuzzer sets O_NONBLOCK on every socket, so no call
 *   blocks: a target resolves at once (a real-time target within a few ms).
 * - inject() sends one segment from the remote. `ack` and SACK blocks in it are relative to
 *   the target's ISN (the target adds its ISN, as the drill runner does); seq is absolute
 *   (the fuzzer's own numbers); TS val is the fuzzer's; TS ecr is absolute (the fuzzer echoes a
 *   raw TS val it saw). Without `ports`, the segment goes on the flow of the latest segment the
 *   target sent (its source and destination ports swapped), or 48879 > 8080 before any.
 * - advance(ms) lets the target run that long: virtual time steps timer by timer, a kernel
 *   target sleeps. Segments the target sends meanwhile are kept with their times.
 * - takeOutbound() returns the segments sent since the last call, oldest first, normalised as
 *   OutboundSegment says; ARP and anything not TCP is answered or dropped by the target itself.
 * - info() describes the connection under test (the last one connect() or accept() returned).
 * - now() is the time since start() in ms.
 * - close() ends every socket and the host (a kernel target deletes its namespace).
 */
export interface FuzzTarget {
  readonly name: string;
  start(options: TargetOptions): Promise<void>;
  syscall(call: SyscallLine): Promise<SyscallOutcome>;
  inject(segment: PacketLine): Promise<void>;
  advance(ms: number): Promise<void>;
  takeOutbound(): Promise<OutboundSegment[]>;
  info(): Promise<TargetInfo>;
  now(): number;
  close(): Promise<void>;
}

/** How far apart in time two targets' matching segments may be for the differential oracle. */
export const FUZZ_TIMING_TOLERANCE_MS = 25;
