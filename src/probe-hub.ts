// Fans the stack's observation points out to every probe that wants them: the one set by
// Stack.setProbe and each active trace (Stack.trace). With none, every point is unset and
// the stack pays one null check per site; with some, each frame is decoded once and handed
// to each probe in turn. A probe that throws is counted (`probe-error` drops on the Ethernet
// counters) and the others still hear the event.

import type { ArpLayer } from './arp/arp.ts';
import type { IcmpLayer } from './ipv4/icmp.ts';
import type { EthernetLayer } from './link/ethernet-layer.ts';
import type { Probe } from './probe.ts';
import { DecodedFrame } from './probe-decode.ts';
import type { Clock } from './util/clock.ts';
import type { LayerCounters } from './util/counters.ts';
import type { TcpProbe } from './tcp/tcb.ts';

/** What the hub sets observers on. */
export interface ProbePoints {
  readonly clock: Clock;
  readonly ethernet: EthernetLayer;
  readonly arp: ArpLayer;
  readonly icmp: IcmpLayer;
  readonly tcp: { probe: TcpProbe | null };
  /** Every layer's counters by name (drops are reported with the name). */
  layerCounters(): Record<string, LayerCounters>;
}

type Method<K extends keyof Probe> = NonNullable<Probe[K]>;

/** One function calling `name` on every probe that has it, each guarded; null when none has. */
function fanOut<K extends keyof Probe>(probes: readonly Probe[], name: K, guard: (err: unknown) => void): Method<K> | null {
  const takers = probes.filter((p) => typeof p[name] === 'function');
  if (takers.length === 0) return null;
  return ((...args: unknown[]): void => {
    for (const p of takers) {
      try {
        (p[name] as (...a: unknown[]) => void).apply(p, args);
      } catch (err) {
        guard(err);
      }
    }
  }) as Method<K>;
}

const noop = (): void => {};

export class ProbeHub {
  /** The probe of Stack.setProbe, kept apart so that setting it again replaces only it. */
  private user: Probe | null = null;
  private readonly others: Probe[] = [];
  /** Made when a probe first watches frames: most stacks never have one. */
  private decoded: DecodedFrame | null = null;

  constructor(private readonly points: ProbePoints) {}

  /** Whether any probe is set (the stack's points are observed). */
  get active(): boolean {
    return this.user !== null || this.others.length > 0;
  }

  setUser(probe: Probe | null): void {
    this.user = probe;
    this.install();
  }

  /** Adds a probe (a trace); the returned function removes it (once). */
  add(probe: Probe): () => void {
    this.others.push(probe);
    this.install();
    return () => {
      const i = this.others.indexOf(probe);
      if (i < 0) return;
      this.others.splice(i, 1);
      this.install();
    };
  }

  /** Sets every observation point from the probes there are now, or unsets them all. */
  private install(): void {
    const p = this.points;
    const layers = p.layerCounters();
    p.ethernet.observer = null;
    p.tcp.probe = null;
    p.arp.probe = null;
    p.icmp.probe = null;
    for (const name in layers) layers[name]!.observer = null;
    const probes = this.user !== null ? [this.user, ...this.others] : [...this.others];
    if (probes.length === 0) return;
    const counters = p.ethernet.counters;
    // A probe's own bug must not break the layer that sends or receives.
    const guard = (err: unknown): void => counters.drop(`probe-error: ${(err as Error).message}`);
    const frame = fanOut(probes, 'frame', guard);
    if (frame !== null) {
      const decoded = (this.decoded ??= new DecodedFrame());
      const clock = p.clock;
      p.ethernet.observer = (direction, buf, off, len) => frame(direction, decoded.decode(buf, off, len, clock.now()));
    }
    const drop = fanOut(probes, 'drop', guard);
    if (drop !== null) {
      for (const name in layers) {
        layers[name]!.observer = (reason) => {
          // A probe's own error is counted but not reported back to it (no loop).
          if (!reason.startsWith('probe-error')) drop(name, reason);
        };
      }
    }
    const tcp = {
      tcpSegment: fanOut(probes, 'tcpSegment', guard),
      tcpState: fanOut(probes, 'tcpState', guard),
      tcpCongestion: fanOut(probes, 'tcpCongestion', guard),
      tcpRtt: fanOut(probes, 'tcpRtt', guard),
      tcpRetransmit: fanOut(probes, 'tcpRetransmit', guard),
      tcpProbeSent: fanOut(probes, 'tcpProbeSent', guard),
    };
    if (Object.values(tcp).some((m) => m !== null)) {
      p.tcp.probe = {
        tcpSegment: tcp.tcpSegment ?? noop,
        tcpState: tcp.tcpState ?? noop,
        tcpCongestion: tcp.tcpCongestion ?? noop,
        tcpRtt: tcp.tcpRtt ?? noop,
        tcpRetransmit: tcp.tcpRetransmit ?? noop,
        tcpProbeSent: tcp.tcpProbeSent ?? noop,
      };
    }
    const arp = fanOut(probes, 'arp', guard);
    if (arp !== null) p.arp.probe = { arp };
    const icmpError = fanOut(probes, 'icmpError', guard);
    if (icmpError !== null) p.icmp.probe = { icmpError };
  }
}
