// tapstack as a fuzz target: the stack as 192.168.0.1 on an in-memory link in virtual time,
// set up exactly as `tapstack drill --target stack` sets it up (same MAC, seed, gateway and
// ARP exchange, the same stepping of time and flushing of stream events), so that a shrunk
// case written as a script replays on the drill runner frame for frame.

import { ARP_LEN, ARP_REPLY, ARP_REQUEST, ArpPacket, emitArp } from '../arp/arp-packet.ts';
import type { PacketLine, SyscallLine } from '../drill/parse.ts';
import { applyCommand } from '../drill/sysctl.ts';
import { SyscallHost, type SyscallOutcome } from '../drill/syscalls.ts';
import { ScriptLink, SteppingClock } from '../drill/virtual-net.ts';
import { decodeOutbound, type WireSegment } from '../drill/wire.ts';
import { parseIpv4 } from '../ipv4/address.ts';
import { BROADCAST_MAC, emitEthernet, ETH_HEADER_LEN, ETHERTYPE_ARP, parseMac } from '../link/ethernet.ts';
import { createStack, type Stack } from '../stack.ts';
import type { TcpConfig } from '../tcp/config.ts';
import type { TcpState } from '../tcp/state.ts';
import { RemoteFlow } from './flow.ts';
import { type FuzzTarget, type OutboundSegment, TARGET_IP, type TargetInfo, targetInfo, type TargetOptions } from './target.ts';

const GATEWAY_IP = '192.168.0.2';
const STACK_MAC = parseMac('02:00:00:00:00:01')!;
const GATEWAY_MAC = parseMac('02:00:00:00:00:02')!;
/** At most this many timers in one advance (a timer loop is a finding, not a hang). */
const MAX_TIMER_STEPS = 100_000;

export interface StackTargetOptions {
  /** The stack's configuration before the sysctls (the drill runner's `tcp` option). */
  tcp?: Partial<TcpConfig>;
  /**
   * Rewrites (or drops, returning null) each segment the stack sends before the fuzzer sees
   * it: a deliberately broken peer for the fuzzer's own tests. The stack's state is untouched.
   */
  alterOutbound?: (segment: WireSegment) => WireSegment | null;
}

/** Lets process.nextTick, promise and setImmediate work (stream events) run, as the drill runner does. */
async function flush(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}

export class StackTarget implements FuzzTarget {
  readonly name: string;
  private readonly clock = new SteppingClock(0);
  private readonly link = new ScriptLink(this.clock);
  private stack: Stack | null = null;
  private host: SyscallHost | null = null;
  private readonly remote = new RemoteFlow();
  private readonly flow = this.remote.flow;
  private readonly outbound: OutboundSegment[] = [];
  /** Connection states by `localPort>remotePort`, from the probe's state changes. */
  private readonly states = new Map<string, TcpState>();
  private listenerFd: number | null = null;
  private readonly localIp = parseIpv4(TARGET_IP)!;

  constructor(
    private readonly options: StackTargetOptions = {},
    name = 'stack',
  ) {
    this.name = name;
  }

  async start(options: TargetOptions): Promise<void> {
    const config: Partial<TcpConfig> = { ...this.options.tcp };
    for (const [name, value] of Object.entries(options.sysctls ?? {})) applyCommand(`sysctl -q net.ipv4.${name}=${value}`, '.', config);
    this.stack = await createStack({ link: this.link, clock: this.clock, ip: `${TARGET_IP}/24`, gateway: GATEWAY_IP, mac: '02:00:00:00:00:01', seed: 1, tcp: config });
    this.stack.setProbe({
      tcpState: (conn, _from, to) => {
        this.states.set(`${conn.localPort}>${conn.remotePort}`, to);
      },
    });
    // The gateway asks for us first, so our cache knows it (as the kernel knows its tun peer).
    this.link.inject(this.arpFrame(ARP_REQUEST, BROADCAST_MAC, Buffer.alloc(6)));
    this.link.take();
    this.host = new SyscallHost(this.stack, this.flow);
  }

  private arpFrame(op: number, ethDst: Uint8Array, targetMac: Uint8Array): Buffer {
    const frame = Buffer.alloc(60);
    emitEthernet(frame, 0, ethDst, GATEWAY_MAC, ETHERTYPE_ARP);
    emitArp(frame, ETH_HEADER_LEN, { op, senderMac: GATEWAY_MAC, senderIp: parseIpv4(GATEWAY_IP)!, targetMac: Buffer.from(targetMac), targetIp: this.localIp });
    return frame;
  }

  now(): number {
    return this.clock.now();
  }

  async syscall(call: SyscallLine): Promise<SyscallOutcome> {
    await this.settle();
    const started = this.host!.start(call);
    await flush();
    const outcome = started.poll() ?? { ret: -1, errno: 'EWOULDBLOCK', detail: 'the call blocked (the fuzzer makes only non-blocking calls)' };
    if (call.name === 'listen' && outcome.ret === 0) this.listenerFd = fdOf(call);
    if (call.name === 'close' && fdOf(call) === this.listenerFd) this.listenerFd = null;
    await this.settle();
    return outcome;
  }

  async inject(p: PacketLine): Promise<void> {
    this.link.inject(this.remote.frameFor(p));
    await this.settle();
  }

  /** Runs virtual time forward by ms, timer by timer, with stream events between (the drill runner's advanceTo). */
  async advance(ms: number): Promise<void> {
    const until = this.clock.now() + ms;
    for (let steps = 0; steps < MAX_TIMER_STEPS; steps++) {
      await this.settle();
      const next = this.clock.nextDue();
      if (next === null || next > until) {
        if (this.clock.now() < until) this.clock.runUntil(until);
        await this.settle();
        return;
      }
      this.clock.runUntil(Math.max(next, this.clock.now()));
    }
    throw new Error('the stack keeps arming timers due at once (a timer loop)');
  }

  async takeOutbound(): Promise<OutboundSegment[]> {
    await this.settle();
    return this.outbound.splice(0);
  }

  async info(): Promise<TargetInfo> {
    await this.settle();
    const state = this.states.get(`${this.flow.localPort}>${this.flow.remotePort}`) ?? null;
    let tcpInfo = null;
    try {
      tcpInfo = this.host!.infoOfSocketUnderTest();
    } catch {
      tcpInfo = null;
    }
    return targetInfo(state, this.listenerFd !== null, tcpInfo);
  }

  async close(): Promise<void> {
    this.host?.closeAll();
    await this.stack?.close();
  }

  /** Stream events run, then what the stack sent is taken: ARP answered, TCP normalised. */
  private async settle(): Promise<void> {
    await flush();
    for (const { at, frame } of this.link.take()) {
      if (frame.length >= ETH_HEADER_LEN + ARP_LEN && frame.readUInt16BE(12) === ETHERTYPE_ARP) {
        const arp = new ArpPacket();
        if (!arp.parse(frame, ETH_HEADER_LEN, frame.length - ETH_HEADER_LEN) && arp.op === ARP_REQUEST) this.link.inject(this.arpFrame(ARP_REPLY, STACK_MAC, STACK_MAC));
        continue;
      }
      const decoded = decodeOutbound(frame, at);
      const seg = decoded && this.options.alterOutbound ? this.options.alterOutbound(decoded) : decoded;
      if (seg) this.outbound.push(this.remote.normalise(seg));
    }
  }
}

function fdOf(call: SyscallLine): number | null {
  const a = call.args[0];
  return a?.kind === 'int' ? a.value : null;
}
