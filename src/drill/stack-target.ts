// `--target stack`: tapstack as the local host on an in-memory link in virtual time. Time
// moves only when the runner lets it, from timer to timer, so a whole corpus runs in seconds
// and the same script gives the same frames.

import { ARP_REQUEST } from '../arp/arp-packet.ts';
import { BROADCAST_MAC } from '../link/ethernet.ts';
import { createStack, type Stack } from '../stack.ts';
import type { TcpConfig } from '../tcp/config.ts';
import type { SyscallLine } from './parse.ts';
import { checkSupported, SyscallHost } from './syscalls.ts';
import { applyCommand } from './sysctl.ts';
import { GATEWAY_IP, LOCAL_IP, LOCAL_MAC, type DrillTarget, type SentFrame } from './target.ts';
import { ScriptLink, SteppingClock } from './virtual-net.ts';

/** Lets process.nextTick, promise and setImmediate work (stream events) run. */
async function flush(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}

/** The connection the script's packets belong to, shared with the runner (ports learned as they go). */
export interface FlowPorts {
  localPort: number;
  remotePort: number;
}

export class StackTarget implements DrillTarget {
  readonly kind = 'stack';
  readonly clock = new SteppingClock(0);
  readonly link = new ScriptLink(this.clock);
  stack: Stack | null = null;
  private host: SyscallHost | null = null;
  private readonly config: Partial<TcpConfig>;

  /**
   * @param config the configuration before the script's own settings
   * @param gatewayArp an ARP request from the gateway, injected at start so the stack knows it
   */
  constructor(
    config: Partial<TcpConfig>,
    private readonly flow: FlowPorts,
    private readonly gatewayArp: (op: number, ethDst: Uint8Array) => Buffer,
  ) {
    this.config = { ...config };
  }

  get syscalls(): SyscallHost {
    if (!this.host) throw new Error('the stack target has not started');
    return this.host;
  }

  checkSupported(call: SyscallLine): void {
    checkSupported(call);
  }

  command(text: string, scriptDir: string): void {
    applyCommand(text, scriptDir, this.config);
    // A setting made once the stack runs reaches it through the layer's config, which
    // connections read when they need a value (as Linux reads its sysctls).
    if (this.stack) Object.assign(this.stack.tcp.config, this.config);
  }

  async start(): Promise<void> {
    this.stack = await createStack({ link: this.link, clock: this.clock, ip: `${LOCAL_IP}/24`, gateway: GATEWAY_IP, mac: LOCAL_MAC, seed: 1, tcp: this.config });
    // The gateway asks for us first, so our cache knows it (as the kernel knows its tun peer).
    this.link.inject(this.gatewayArp(ARP_REQUEST, BROADCAST_MAC));
    this.link.take();
    this.host = new SyscallHost(this.stack, this.flow);
  }

  now(): number {
    return this.clock.now();
  }

  settle(): Promise<void> {
    return flush();
  }

  /** Timer by timer: to the next one due, or to untilMs when none is due by then. */
  async advance(untilMs: number): Promise<boolean> {
    const next = this.clock.nextDue();
    if (next === null || next > untilMs) {
      if (this.clock.now() < untilMs) this.clock.runUntil(untilMs);
      return false;
    }
    this.clock.runUntil(Math.max(next, this.clock.now()));
    return true;
  }

  inject(frame: Buffer): void {
    this.link.inject(frame);
  }

  take(): SentFrame[] {
    return this.link.take();
  }

  async close(): Promise<void> {
    this.host?.closeAll();
    await this.stack?.close();
  }
}
