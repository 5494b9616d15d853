// `--target kernel`: the host's Linux TCP as the local host, in the network namespace this
// process runs in (run-in-namespace.ts makes a fresh one per script). A TAP device named
// tun0, as packetdrill's, carries the kernel's 192.168.0.1; the remote 192.0.2.1 is reached
// through a gateway the runner plays, whose MAC the kernel knows from a permanent
// neighbour entry. Time is real: the script's time 0 is when the device is up.

import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { parseIpv4 } from '../../ipv4/address.ts';
import { parseMac } from '../../link/ethernet.ts';
import { completePartialChecksum } from '../../link/vnet.ts';
import { TapDevice, VNET_HDR_LEN } from '../../tap/tap.ts';
import { SYN } from '../../tcp/tcp-segment.ts';
import type { SyscallLine } from '../parse.ts';
import { DrillUnsupported, KNOWN_SYSCTLS, runCommand } from '../sysctl.ts';
import { GATEWAY_IP, GATEWAY_MAC, LOCAL_IP, LOCAL_MAC, REMOTE_IP, type DrillTarget, type SentFrame } from '../target.ts';
import { buildInboundFrame, decodeOutbound } from '../wire.ts';
import { KernelSyscalls } from './kernel-syscalls.ts';
import { type CallName, libcCall, libcCallBlocking } from './libc.ts';

export const KERNEL_DEVICE = 'tun0';
/** How long the warm-up waits for the kernel's answer. */
const WARM_UP_WAIT_MS = 200;
/** How long settle() gives a call just put on its thread to return before the runner takes it as blocking. */
const THREAD_START_GRACE_MS = 2;
/** Waits longer than this are cut into slices, so that the runner looks again now and then. */
const WAIT_SLICE_MS = 50;

/** Harmless calls (on no descriptor) that load each function the script may call. */
const WARM_UP: [CallName, unknown[]][] = [
  ['fcntl', [-1, 1, 0]],
  ['socket', [-1, 0, 0]],
  ['bind', [-1, Buffer.alloc(16), 16]],
  ['listen', [-1, 0]],
  ['accept', [-1, Buffer.alloc(16), Buffer.alloc(4)]],
  ['connect', [-1, Buffer.alloc(16), 16]],
  ['read', [-1, Buffer.alloc(1), 1]],
  ['write', [-1, Buffer.alloc(1), 1]],
  ['recv', [-1, Buffer.alloc(1), 1, 0]],
  ['send', [-1, Buffer.alloc(1), 1, 0]],
  ['close', [-1]],
  ['shutdown', [-1, 0]],
  ['poll', [Buffer.alloc(8), 0, 0]],
  ['setsockopt', [-1, 1, 2, Buffer.alloc(4), 4]],
  ['getsockopt', [-1, 1, 2, Buffer.alloc(4), Buffer.alloc(4)]],
];

function run(cmd: string, ...args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export class KernelTarget implements DrillTarget {
  readonly kind = 'kernel';
  readonly syscalls = new KernelSyscalls(() => this.wake());
  private tap: TapDevice | null = null;
  private t0 = 0;
  private frames: SentFrame[] = [];
  private wakeUp: (() => void) | null = null;
  /** Device commands from before the device exists, run once it does. */
  private readonly deviceLines: string[] = [];
  /** Settings the kernel refused (`sysctl -q` goes on past them too). */
  readonly refused: string[] = [];

  checkSupported(call: SyscallLine): void {
    KernelSyscalls.checkSupported(call);
  }

  command(text: string, scriptDir: string): void {
    runCommand(text, scriptDir, {
      sysctl: (name, value) => {
        // Only settings known to be per namespace: nothing may reach the machine's own.
        if (!KNOWN_SYSCTLS.includes(name)) throw new DrillUnsupported(`sysctl net.ipv4.${name}`);
        const file = `/proc/sys/net/ipv4/${name}`;
        try {
          writeFileSync(file, value);
          if (name === 'tcp_congestion_control') this.syscalls.congestion = null;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? String(err);
          if (name === 'tcp_congestion_control' && code === 'EPERM') {
            // Outside the machine's own namespace only the algorithms of the (global)
            // tcp_allowed_congestion_control may be the default; with CAP_NET_ADMIN a socket may
            // still choose any (tcp_set_congestion_control), so each socket of the script does.
            this.syscalls.congestion = value;
            this.refused.push(`${name}=${value}: EPERM in a namespace, set on each socket with TCP_CONGESTION instead`);
          } else this.refused.push(`${name}=${value}: ${code}`);
        }
      },
      device: (line) => {
        if (this.tap) this.device(line);
        else this.deviceLines.push(line);
      },
    });
  }

  private device(line: string): void {
    const [cmd, ...args] = line.split(/\s+/);
    try {
      run(cmd!, ...args);
    } catch {
      this.refused.push(line);
    }
  }

  async start(): Promise<void> {
    // With segmentation offload, as packetdrill's tun: the kernel hands over TSO super-frames,
    // which the runner splits along the script's lines (PSH and FIN on the last part, as GSO).
    const tap = TapDevice.open({ name: KERNEL_DEVICE, mtu: 1500, offload: true });
    this.tap = tap;
    run('ip', 'link', 'set', 'dev', KERNEL_DEVICE, 'address', LOCAL_MAC);
    // No IPv6 on the device: its router solicitations and MLD reports are not the script's.
    const v6 = `/proc/sys/net/ipv6/conf/${KERNEL_DEVICE}/disable_ipv6`;
    if (existsSync(v6)) writeFileSync(v6, '1');
    run('ip', 'addr', 'add', `${LOCAL_IP}/24`, 'dev', KERNEL_DEVICE);
    run('ip', 'link', 'set', 'dev', KERNEL_DEVICE, 'up');
    run('ip', 'neigh', 'replace', GATEWAY_IP, 'lladdr', GATEWAY_MAC, 'dev', KERNEL_DEVICE, 'nud', 'permanent');
    run('ip', 'route', 'add', `${REMOTE_IP.split('.').slice(0, 3).join('.')}.0/24`, 'via', GATEWAY_IP, 'dev', KERNEL_DEVICE);
    for (const line of this.deviceLines.splice(0)) this.device(line);
    // The first foreign call loads libc and the first thread call starts ffi-rs's machinery
    // (milliseconds): both before time 0, so that the script's first calls return at once.
    for (const [name, values] of WARM_UP) {
      libcCall(name, values);
      await libcCallBlocking(name, values);
    }
    tap.setReceiver((buf, off, len, info) => {
      const frame = Buffer.from(buf.subarray(off, off + len));
      // A segment from a local socket carries only the pseudo-header sum (the device would
      // finish it): finish it, so that the segment reads as the wire would carry it.
      if (info?.checksumPartial) completePartialChecksum(frame, info.checksumStart - off, info.checksumField - off, frame.length);
      this.frames.push({ at: this.now(), frame });
      this.wake();
    });
    await this.warmUpPath();
    // A full collection now rather than in the script's first milliseconds (start-up leaves
    // garbage: a major GC is milliseconds, more than a tolerance's share); run-in-namespace.ts
    // starts the child with --expose-gc.
    (globalThis as { gc?: () => void }).gc?.();
    this.t0 = performance.now();
  }

  /**
   * One SYN from the remote to a closed port, answered by the kernel's RST, before time 0:
   * the first segment through the device costs milliseconds (the kernel's route and socket
   * lookups, our first frame built and read), and leaves no state behind.
   */
  private async warmUpPath(): Promise<void> {
    const syn = buildInboundFrame(
      parseMac(LOCAL_MAC)!,
      parseMac(GATEWAY_MAC)!,
      { src: parseIpv4(REMOTE_IP)!, dst: parseIpv4(LOCAL_IP)!, srcPort: 9, dstPort: 9, seq: 0, ack: 0, flags: SYN, window: 1024, urgentPointer: 0, options: Buffer.alloc(0), payloadLength: 0 },
      1,
    );
    this.t0 = performance.now();
    for (let round = 0; round < 3; round++) {
      this.inject(syn);
      const until = this.now() + WARM_UP_WAIT_MS;
      while (this.frames.length === 0 && (await this.advance(until)));
      for (const f of this.take()) decodeOutbound(f.frame, f.at);
    }
  }

  now(): number {
    return performance.now() - this.t0;
  }

  private wake(): void {
    this.wakeUp?.();
  }

  /** One turn of the event loop, and a moment for a call just started on a thread to return. */
  async settle(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    for (;;) {
      let young = false;
      for (const t of this.syscalls.inFlight) if (performance.now() - t.startedAt < THREAD_START_GRACE_MS) young = true;
      if (!young) return;
      await new Promise((r) => setImmediate(r));
    }
  }

  async advance(untilMs: number): Promise<boolean> {
    const remaining = untilMs - this.now();
    if (remaining <= 0) return false;
    if (remaining <= 2) {
      // The last moments by turns of the loop: a timer would overshoot by a millisecond.
      await new Promise((r) => setImmediate(r));
      return true;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.min(remaining - 1, WAIT_SLICE_MS));
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
    this.wakeUp = null;
    return true;
  }

  inject(frame: Buffer): void {
    // The device takes its virtio-net header in the room before the frame (all zero: a whole frame, checksums done).
    const withHeader = Buffer.alloc(VNET_HDR_LEN + frame.length);
    frame.copy(withHeader, VNET_HDR_LEN);
    this.tap?.send(withHeader, VNET_HDR_LEN, frame.length);
  }

  take(): SentFrame[] {
    const out = this.frames;
    this.frames = [];
    return out;
  }

  async close(): Promise<void> {
    this.syscalls.closeAll();
    await this.tap?.close();
    this.tap = null;
  }
}
