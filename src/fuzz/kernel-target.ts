// The host's Linux TCP as a fuzz target: a namespace made for each case, with a child inside
// it serving a drill KernelTarget (src/drill/kernel/kernel-client.ts): the fuzzer's segments
// go in and the kernel's come out through a TAP named tun0 (192.168.0.1 for the kernel,
// 192.0.2.1 for the fuzzer, as `tapstack drill --target kernel`), and the calls are libc's.
// Time is real: the kernel's replies carry the times they were read at.

import type { SyscallLine } from '../drill/parse.ts';
import { KernelHostClient } from '../drill/kernel/kernel-client.ts';
import { decodeOutbound } from '../drill/wire.ts';
import type { TcpState } from '../tcp/state.ts';
import { RemoteFlow } from './flow.ts';
import { type FuzzTarget, type OutboundSegment, type PacketLine, type SyscallOutcome, type TargetInfo, targetInfo, type TargetOptions } from './target.ts';

/** Kept for the CLI's message when the target cannot be made (not root, no TUN). */
export class KernelTargetUnavailable extends Error {}

/** The longest time step in cases run on the kernel: real time (a 60 s step would make a case a minute long). */
export const KERNEL_MAX_ADVANCE_MS = 3000;

export class KernelFuzzTarget implements FuzzTarget {
  readonly name = 'kernel';
  private host: KernelHostClient | null = null;
  private readonly remote = new RemoteFlow();
  private listenerFd: number | null = null;

  async start(options: TargetOptions): Promise<void> {
    if (process.getuid?.() !== 0) throw new KernelTargetUnavailable('the kernel target needs root (a network namespace and a TAP device)');
    this.host = KernelHostClient.open();
    const commands = Object.entries(options.sysctls ?? {}).map(([name, value]) => `sysctl -q net.ipv4.${name}=${value}`);
    await this.host.start(commands);
  }

  private get kernel(): KernelHostClient {
    if (!this.host) throw new Error('the kernel target has not started');
    return this.host;
  }

  now(): number {
    return this.host?.now() ?? 0;
  }

  async syscall(call: SyscallLine): Promise<SyscallOutcome> {
    const outcome = await this.kernel.syscall(call);
    const fd = call.args[0]?.kind === 'int' ? call.args[0].value : null;
    if (call.name === 'listen' && outcome.ret === 0) this.listenerFd = fd;
    if (call.name === 'close' && fd === this.listenerFd) this.listenerFd = null;
    // A connect names the ports the kernel chose only in its SYN: takeOutbound() learns them.
    return outcome;
  }

  async inject(segment: PacketLine): Promise<void> {
    await this.kernel.inject(this.remote.frameFor(segment));
  }

  async advance(ms: number): Promise<void> {
    await this.kernel.wait(ms);
  }

  async takeOutbound(): Promise<OutboundSegment[]> {
    const out: OutboundSegment[] = [];
    for (const f of await this.kernel.take()) {
      const seg = decodeOutbound(f.frame, f.at);
      if (seg) out.push(this.remote.normalise(seg));
    }
    return out;
  }

  async info(): Promise<TargetInfo> {
    const flow = this.remote.flow;
    const state = (await this.kernel.state(flow.localPort, flow.remotePort)) as TcpState | null;
    const tcpInfo = state !== null ? await this.kernel.info() : null;
    return targetInfo(state, this.listenerFd !== null, tcpInfo);
  }

  async close(): Promise<void> {
    await this.host?.close();
    this.host = null;
  }
}

/** A kernel target; it needs root (checked here, before any case runs). */
export function createKernelTarget(): FuzzTarget {
  if (process.getuid?.() !== 0) throw new KernelTargetUnavailable('the kernel target needs root (a network namespace and a TAP device)');
  return new KernelFuzzTarget();
}
