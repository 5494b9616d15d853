// The far side of a link, played by a test or a script: it sends crafted frames to whatever is
// on the other end (a tapstack Stack over an in-memory link, or the Linux kernel through a TAP)
// and waits for what comes back. It has an address of its own and answers ARP for it (RFC 826),
// so a crafted TCP exchange needs no hand-made ARP; nothing else is answered by itself (no RST
// for an unexpected segment, as a kernel would send): the script decides every frame.

import { ARP_REPLY, ARP_REQUEST } from '../arp/arp-packet.ts';
import type { Link } from '../link/link.ts';
import { createLinkPair, MemoryLink } from '../link/memory.ts';
import type { Stack } from '../stack.ts';
import { formatMac } from '../link/ethernet.ts';
import { formatIpv4 } from '../ipv4/address.ts';
import { type Clock, RealClock, type Timer, VirtualClock } from '../util/clock.ts';
import { type Dissected, dissect } from './dissect.ts';
import { arp, type BuildDefaults, ether, type Ipv4Input, type MacInput, Packet, stack, toIpv4, toMac } from './layers.ts';

export interface WireOptions {
  /** The far side's own address and MAC (default 10.0.0.1, 02:00:00:00:00:01). */
  ip?: Ipv4Input;
  mac?: MacInput;
  /** The other end's address and MAC: the defaults of what is sent (the MAC is learned too). */
  peerIp?: Ipv4Input;
  peerMac?: MacInput;
  /** Answer ARP requests for `ip` (default true). */
  answerArp?: boolean;
  /** Where time comes from: a VirtualClock makes expect() advance it (see Wire.expect). */
  clock?: Clock;
}

export interface ExpectOptions {
  /** Default 1000 ms, in the clock's time. */
  timeoutMs?: number;
}

interface Waiter {
  predicate: (f: Dissected) => boolean;
  resolve: (f: Dissected) => void;
}

export class Wire {
  /** Every frame that came from the other end, in order. */
  readonly frames: Dissected[] = [];
  /** Every frame this side sent, in order (ARP answers included). */
  readonly sent: Buffer[] = [];
  readonly ip: number;
  readonly mac: Buffer;
  peerIp: number | null;
  peerMac: Buffer | null;
  private readonly answerArp: boolean;
  private readonly clock: Clock;
  /** Frames already handed to an expect(): each matches one expectation at most. */
  private readonly taken = new Set<Dissected>();
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly link: Link,
    options: WireOptions = {},
  ) {
    this.ip = toIpv4(options.ip ?? '10.0.0.1', 'wire ip');
    this.mac = toMac(options.mac ?? '02:00:00:00:00:01', 'wire mac');
    this.peerIp = options.peerIp === undefined ? null : toIpv4(options.peerIp, 'wire peerIp');
    this.peerMac = options.peerMac === undefined ? null : toMac(options.peerMac, 'wire peerMac');
    this.answerArp = options.answerArp ?? true;
    this.clock = options.clock ?? new RealClock();
    link.setReceiver((buf, off, len) => this.receive(buf.subarray(off, off + len)));
  }

  /** The addresses a packet leaves out: ours as source, the peer's as destination. */
  get defaults(): BuildDefaults {
    const d: BuildDefaults = { etherSrc: this.mac, ipSrc: this.ip };
    if (this.peerMac !== null) d.etherDst = this.peerMac;
    if (this.peerIp !== null) d.ipDst = this.peerIp;
    return d;
  }

  /** The frame a packet makes with this side's defaults. */
  build(p: Packet): Buffer {
    const ether = p.get('ether');
    if (ether !== undefined && ether.dst === undefined && this.peerMac === null)
      throw new Error("wire: the peer's MAC is not known yet: give peerMac, or let a frame from the peer come first (a stack's gratuitous ARP)");
    return p.build(this.defaults);
  }

  /** Sends frames (built packets or raw bytes) to the other end, in order. */
  send(...frames: (Packet | Uint8Array | (Packet | Uint8Array)[])[]): void {
    for (const f of frames.flat()) {
      const bytes = f instanceof Packet ? this.build(f) : Buffer.from(f);
      this.sent.push(bytes);
      this.link.send(bytes, 0, bytes.length);
    }
  }

  /**
   * The first frame from the other end that matches and no earlier expect() took, including
   * frames that came before the call. Rejects after timeoutMs of the clock's time.
   *
   * On a VirtualClock nothing runs by itself, so expect() runs it: timer after timer (which
   * delivers frames and runs the stack's timers), with a turn of Node's event loop between
   * timers, until a frame matches or timeoutMs of virtual time has passed (the clock then
   * stands at the deadline). On a real clock it waits.
   */
  expect(predicate: (f: Dissected) => boolean, options: ExpectOptions = {}): Promise<Dissected> {
    const timeoutMs = options.timeoutMs ?? 1000;
    const early = this.frames.find((f) => !this.taken.has(f) && predicate(f));
    if (early !== undefined) {
      this.taken.add(early);
      return Promise.resolve(early);
    }
    const clock = this.clock;
    return new Promise((resolve, reject) => {
      let timer: Timer | null = null;
      const waiter: Waiter = {
        predicate,
        resolve: (f) => {
          timer?.cancel();
          resolve(f);
        },
      };
      this.waiters.push(waiter);
      const fail = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        reject(new Error(`wire.expect: nothing matched within ${timeoutMs} ms (${this.frames.length} frames came: ${this.frames.map((f) => f.summary).join(' | ')})`));
      };
      if (clock instanceof VirtualClock) void this.runVirtual(clock, clock.now() + timeoutMs, () => !this.waiters.includes(waiter), fail);
      else timer = clock.setTimer(timeoutMs, fail);
    });
  }

  /**
   * Runs a VirtualClock one timer deadline at a time up to `deadline`, letting Node's event loop turn
   * between timers (a socket's 'data' and 'connection' events, and what the application does
   * on them, come on process.nextTick and promise callbacks), until done() or the deadline,
   * where time is set to the deadline (as a real wait would have lasted that long).
   */
  private async runVirtual(clock: VirtualClock, deadline: number, done: () => boolean, fail: () => void): Promise<void> {
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (done()) return;
      const next = clock.nextTimerAt();
      if (next === null || next > deadline) {
        clock.runUntil(deadline);
        await new Promise((resolve) => setImmediate(resolve));
        if (!done()) fail();
        return;
      }
      clock.runUntil(next);
    }
  }

  /** Frames of the other end still not taken by an expect(). */
  unmatched(): Dissected[] {
    return this.frames.filter((f) => !this.taken.has(f));
  }

  close(): Promise<void> | void {
    return this.link.close();
  }

  private receive(frame: Buffer): void {
    const f = dissect(frame, this.clock.now());
    this.frames.push(f);
    this.learn(f);
    if (this.answerArp && f.arp !== undefined && f.arp.op === ARP_REQUEST && f.arp.pdst === formatIpv4(this.ip)) {
      const reply = stack(ether({ dst: f.arp.hwsrc }), arp({ op: ARP_REPLY, hwsrc: this.mac, psrc: this.ip, hwdst: f.arp.hwsrc, pdst: f.arp.psrc }));
      this.send(reply);
    }
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i]!;
      if (!w.predicate(f)) continue;
      this.taken.add(f);
      this.waiters.splice(i, 1);
      w.resolve(f);
      return;
    }
  }

  /** The peer's MAC from what it sends from its address (its ARP, its IP packets). */
  private learn(f: Dissected): void {
    const peer = this.peerIp === null ? null : formatIpv4(this.peerIp);
    const from = f.arp?.psrc ?? f.ipv4?.src;
    if (f.ether !== undefined && from !== undefined && from === peer) this.peerMac = toMac(f.ether.src, 'peer mac');
  }
}

/**
 * A wire and the link to give a Stack: `const { link, wire } = wirePair(clock)`, then
 * `createStack({ link, clock, ... })`. The wire uses the same clock. It learns the stack's MAC
 * from the stack's first frame from peerIp (its gratuitous ARP) unless peerMac is given;
 * farSide(stack), after createStack, knows both at once.
 */
export function wirePair(clock: Clock, options: Omit<WireOptions, 'clock'> & { mtu?: number } = {}): { link: Link; wire: Wire } {
  const [stackSide, wireSide] = createLinkPair(clock, { mtu: options.mtu ?? 1500 });
  return { link: stackSide, wire: new Wire(wireSide, { ...options, clock }) };
}

/**
 * The far side of a stack created over one end of createLinkPair (or wirePair's link): the wire
 * takes the other end, knows the stack's address and MAC, and runs on the stack's clock.
 */
export function farSide(s: Stack, options: Omit<WireOptions, 'clock' | 'peerIp' | 'peerMac'> = {}): Wire {
  const link = s.link;
  if (!(link instanceof MemoryLink) || link.peer === null) throw new Error('farSide: the stack is not on an in-memory link pair (createLinkPair)');
  const clock = s.clock.inner;
  return new Wire(link.peer, { ...options, clock, peerIp: s.ip, peerMac: formatMac(s.mac) });
}
